"""The Dagster assets with a transformers SAM3 model folder as the checkpoint (test size, CPU):
backend auto picks sam3-transformers, a prompt file of two texts is answered by one session
per clip, the masks and crops say which text found each animal and which implementation and
model folder (its sha256) made them, and ``model_checkpoint`` observes the folder's sha256."""

import importlib.util

import dagster as dg
import pyarrow.parquet as pq
import pytest

if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("transformers is not installed", allow_module_level=True)

import torch  # noqa: E402

from vitcow_assets.definitions import build_resources, defs  # noqa: E402
from vitcow_assets.defs.resources import forget_cached_models  # noqa: E402
from vitcow_assets.footage.layout import StorageRoot  # noqa: E402
from vitcow_assets.media.hash_cache import cached_folder_sha256  # noqa: E402
from vitcow_assets.segmenters.sam3_transformers import Sam3TransformersSession  # noqa: E402
from vitcow_assets_tests.helpers import register  # noqa: E402
from vitcow_testbed.sam3_hf_tiny import write_tiny_folder  # noqa: E402
from vitcow_testbed.synthetic import write_video  # noqa: E402


@pytest.fixture()
def folder_env(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path / "facebook-sam3"
    write_tiny_folder(folder)
    for name, value in {"VITCOW_HOME": str(tmp_path / "home"), "VITCOW_SAM3_CHECKPOINT": str(folder), "VITCOW_SAM3_DEVICE": "cpu",
                        "VITCOW_SAM3_SCORE_THRESHOLD": "0", "VITCOW_SAM3_NEW_OBJECT_THRESHOLD": "0"}.items():
        monkeypatch.setenv(name, value)
    forget_cached_models()
    yield folder
    forget_cached_models()
    torch.set_num_threads(threads)


def test_the_assets_run_a_transformers_folder_with_two_texts_in_one_session_per_clip(folder_env, tmp_path, monkeypatch):
    home = tmp_path / "home"
    opened = []
    start = Sam3TransformersSession.__init__
    monkeypatch.setattr(Sam3TransformersSession, "__init__", lambda self, *a, **k: opened.append(1) or start(self, *a, **k))
    video = write_video(tmp_path / "pen.mp4", frames=16, width=160, height=120)
    (tmp_path / "pen.prompts.yaml").write_text("prompts:\n  - text: cow\n  - text: calf\n")
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        resources = build_resources(home=str(home))  # backend auto
        assert resources["segmenter"].resolved_backend == "sam3-transformers"
        run = defs.resolve_job_def("process_video").execute_in_process(
            instance=instance, partition_key=key, resources=resources,
            run_config={"ops": {"clips": {"config": {"frames_per_clip": 2, "max_clips": 2, "write_clip_files": False}}}},
        )
        assert run.success
        sha = cached_folder_sha256(folder_env, StorageRoot(home).checksums)
        observed = instance.get_latest_data_version_record(dg.AssetKey("model_checkpoint"))
        assert observed.asset_observation.data_version == sha
    layout = StorageRoot(home).video(key)
    clips = pq.read_table(layout.clips_table).num_rows
    assert clips == 2 and len(opened) == clips  # both texts answered by one session per clip
    masks = pq.read_table(layout.masks_table)
    meta = {k.decode(): v.decode() for k, v in masks.schema.metadata.items()}
    assert meta["vitcow.segmenter"] == "sam3-transformers/5.24.0" and meta["vitcow.checkpoint_sha256"] == sha
    rows = masks.to_pylist()
    assert {r["prompt"] for r in rows} == {"cow", "calf"}
    assert all(r["prompt"] == ("cow", "calf")[r["object_id"] % 2] for r in rows)
    crops = pq.read_table(layout.crops_table).to_pylist()
    assert crops and {c["segmenter"] for c in crops} == {"sam3-transformers/5.24.0"}
    assert {c["model_checkpoint_sha256"] for c in crops} == {sha} and {c["prompt"] for c in crops} <= {"cow", "calf"}
