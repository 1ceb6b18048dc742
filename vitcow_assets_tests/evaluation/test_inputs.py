"""What an evaluation reads is checked first, each problem one line: a folder that is not a
complete export (no dataset.json, no class_mapping.txt: the seed's scorer needed one its
split script never wrote), a file changed after the export, an embeddings table that lacks
crops, mixes checkpoints or is not float32."""

import shutil

import numpy as np
import pyarrow as pa
import pytest

from vitcow_assets.evaluation.inputs import EvaluationInputError, read_dataset, read_embeddings
from vitcow_assets.media.parquet import write_table
from vitcow_assets_tests.evaluation.synthetic_site import embeddings_table


@pytest.fixture
def copy(site, tmp_path):
    out = tmp_path / "export"
    shutil.copytree(site["export"], out)
    return out


def test_a_complete_export_is_read_with_its_fingerprint_classes_and_subsets(site):
    export = read_dataset(site["export"])
    assert export.fingerprint == __import__("vitcow_assets.lineage.builds", fromlist=["x"]).dataset_fingerprint(site["export"])
    assert export.classes == tuple((site["export"] / "class_mapping.txt").read_text().split())
    assert export.splits["crop_id"].to_pylist() == sorted(export.splits["crop_id"].to_pylist())
    assert export.subsets is not None and set(export.subsets["size"].to_pylist()) == {30, 90, 100000}


@pytest.mark.parametrize("name, message", [
    ("dataset.json", "dataset.json is missing: .* is not a dataset export"),
    ("class_mapping.txt", "class_mapping.txt is missing: not a complete dataset export"),
    ("splits.parquet", "splits.parquet is missing"),
])
def test_a_missing_file_is_one_line(copy, name, message):
    (copy / name).unlink()
    with pytest.raises(EvaluationInputError, match=message) as caught:
        read_dataset(copy)
    assert "\n" not in str(caught.value)


def test_a_file_changed_after_the_export_is_refused(copy):
    (copy / "class_mapping.txt").write_text("Lying\nStanding\n")
    with pytest.raises(EvaluationInputError, match="changed after the export"):
        read_dataset(copy)


def test_embeddings_lacking_a_dataset_crop_are_refused_naming_it(site, tmp_path):
    export = read_dataset(site["export"])
    ids = export.splits["crop_id"].to_pylist()
    path = tmp_path / "e.parquet"
    write_table(path, embeddings_table(ids[1:], ids[1:], np.ones((len(ids) - 1, 4), np.float32), "a" * 64))
    with pytest.raises(EvaluationInputError, match=f"no embedding of 1 of the dataset's {len(ids)} crops \\({ids[0]}\\)"):
        read_embeddings(path, ids)


def test_embeddings_are_read_in_the_order_asked_and_checked(tmp_path):
    path = tmp_path / "e.parquet"
    write_table(path, embeddings_table(["b", "a", "c"], ["p"] * 3, np.arange(12, dtype=np.float32).reshape(3, 4), "a" * 64))
    found = read_embeddings(path, ["c", "b"])
    assert found.vectors.tolist() == [[8, 9, 10, 11], [0, 1, 2, 3]] and found.checkpoint_sha256 == "a" * 64
    assert "vitcow.encoder" in found.metadata
    mixed = embeddings_table(["a", "b"], ["p"] * 2, np.zeros((2, 4), np.float32), "a" * 64)
    mixed = mixed.set_column(2, "checkpoint_sha256", pa.array(["a" * 64, "b" * 64]))
    write_table(path, mixed)
    with pytest.raises(EvaluationInputError, match="holds 2 checkpoints"):
        read_embeddings(path, ["a"])
    write_table(path, pa.table({"crop_id": ["a"], "checkpoint_sha256": ["a" * 64], "embedding": [[1.0, 2.0]]}))
    with pytest.raises(EvaluationInputError, match="not a fixed-size list of float32"):
        read_embeddings(path, ["a"])
    with pytest.raises(EvaluationInputError, match="vitcow eval embed"):
        read_embeddings(tmp_path / "absent.parquet", ["a"])
