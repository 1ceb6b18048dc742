"""`vitcow eval embed CHECKPOINT` as a user runs it, after `vitcow run` on synthetic footage
and a segment label made a trimmed copy: one row per crop (the trimmed copy embedded for the
labelled segment), a table and a JSON document, the same bytes when run again, a second
layout of the same weights giving the same embeddings, and a checkpoint that cannot load
failing in one line without registering anything."""

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.helpers import age, run_cli
from vitcow_testbed.synthetic import write_video

ENCODER_FLAGS = ["--encoder-device", "cpu", "--encoder-threads", "2", "--encoder-batch-size", "4"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    video = age(write_video(tmp_path_factory.mktemp("landing") / "pen.mp4", frames=160))
    done = run_cli(["run", str(video), "--backend", "motion", "--json", "--no-progress"], home)
    assert done.returncode == 0, done.stderr[-2000:]
    crops = [r for m in sorted((home / "videos").glob("*/crops/crops.parquet")) for r in pq.read_table(m).to_pylist()]
    assert len(crops) >= 3
    labels = home / "labels.csv"
    with open(labels, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["crop_path", "label", "start_frame", "end_frame"])
        out.writerow([crops[0]["crop_path"], "Standing_up", 2, 9])
        for crop in crops[1:]:
            out.writerow([crop["crop_path"], "Lying", "", ""])
    for args in (["labels", "import", str(labels), "--annotator", "alice"], ["labels", "snapshot"]):
        done = run_cli(args, home)
        assert done.returncode == 0, done.stderr[-2000:]
    return home, crops


def test_embed_writes_one_row_per_crop_embedding_the_trimmed_copy_and_the_same_bytes_again(site, tiny_checkpoints):
    home, crops = site
    done = run_cli(["eval", "embed", str(tiny_checkpoints["transformers_pretraining"]), "--json", *ENCODER_FLAGS], home)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    table = pq.read_table(report["table"])
    assert report["rows"] == report["embedded"] == len(crops) == table.num_rows and report["layout"] == "transformers"
    assert report["table"] == str(StorageRoot(home).embeddings_table(report["partition_key"]))
    trimmed = pq.read_table(home / "labels" / "trimmed_crops.parquet").to_pylist()
    assert len(trimmed) == 1
    by_crop = dict(zip(table["crop_id"].to_pylist(), table["crop_path"].to_pylist()))
    assert by_crop[trimmed[0]["crop_id"]] == trimmed[0]["trimmed_path"] and "/labels/trimmed/" in trimmed[0]["trimmed_path"]
    before = (home / "embeddings" / report["partition_key"] / "crop_embeddings.parquet").read_bytes()
    again = run_cli(["eval", "embed", str(tiny_checkpoints["transformers_pretraining"]), *ENCODER_FLAGS], home)
    assert again.returncode == 0, again.stderr[-2000:]
    lines = dict(line.split(None, 1) for line in again.stdout.strip().splitlines())
    assert lines["partition_key"] == report["partition_key"] and lines["kept"] == str(len(crops)) and lines["embedded"] == "0"
    assert (home / "embeddings" / report["partition_key"] / "crop_embeddings.parquet").read_bytes() == before
    original = run_cli(["eval", "embed", str(tiny_checkpoints["original_module"]), "--json", *ENCODER_FLAGS], home)
    assert original.returncode == 0, original.stderr[-2000:]
    other = json.loads(original.stdout)
    assert other["partition_key"] != report["partition_key"] and other["layout"] == "original"
    same = pq.read_table(other["table"])
    assert same["crop_id"].equals(table["crop_id"])
    np.testing.assert_allclose(np.stack(same["embedding"].to_numpy(zero_copy_only=False)), np.stack(table["embedding"].to_numpy(zero_copy_only=False)), atol=1e-5)


def test_a_checkpoint_that_cannot_load_fails_in_one_line_and_registers_nothing(site, tmp_path):
    home, _ = site
    from vitcow_testbed.videomae_inputs import original_pretraining, pretraining_model, save_original

    state = original_pretraining(pretraining_model(0))
    del state["encoder.blocks.1.mlp.fc2.bias"]
    broken = save_original(state, tmp_path / "broken.pth")
    done = run_cli(["eval", "embed", str(broken), *ENCODER_FLAGS], home)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("vitcow: ") and len(done.stderr.strip().splitlines()) == 1
    assert "missing encoder key(s) encoder.blocks.1.mlp.fc2.bias" in done.stderr
    assert not any("broken" in p.name for p in (home / "checkpoints").glob("*.json"))
    bad_flag = run_cli(["eval", "embed", str(broken), "--encoder-threads", "0"], home)
    assert bad_flag.returncode == 2 and "--encoder-threads" in bad_flag.stderr and len(bad_flag.stderr.strip().splitlines()) == 1
