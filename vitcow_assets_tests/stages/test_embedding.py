"""crop_embeddings' stage on real crop files: one row per catalog crop with the encoder's
embedding of its centre frames, the same bytes on every run, earlier rows kept (and only new
crops embedded) when the catalog grows, trimmed copies embedded instead of their crop, and a
crop that cannot be read leaving the earlier table as it was."""

import math
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.embeddings import CHECKPOINT_KEY, ENCODER_KEY, EMBEDDING_COLUMNS, RUNTIME_KEY, SAMPLING_KEY, EmbeddingInputError
from vitcow_assets.encoders import EncoderSettings, load_encoder
from vitcow_assets.encoders.frames import sampled_clip
from vitcow_assets.encoders.registry import CheckpointRegistry
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.parquet import write_table
from vitcow_assets.stages import embedding
from vitcow_assets.stages.embedding import embed_crops
from vitcow_assets_tests.encoders.crop_site import crop_rows, crop_site
from vitcow_testbed.videomae_inputs import write_crop

SETTINGS = EncoderSettings(device="cpu", batch_size=4, threads=2)


@pytest.fixture()
def site(tmp_path, tiny_checkpoints):
    home = tmp_path / "home"
    catalog = crop_site(home, tracks=4)
    root = StorageRoot(home)
    entry = CheckpointRegistry(root).register(tiny_checkpoints["original_model"])
    return root, catalog, entry


def _embed(root, entry, settings=SETTINGS, version="v1"):
    return embed_crops(root, entry, load_encoder(entry.path, settings, entry.sha256), version, "0.1.0+gtest")


def test_one_row_per_catalog_crop_with_the_encoder_s_embedding_of_its_centre_frames(site):
    root, catalog, entry = site
    result = _embed(root, entry)
    table = pq.read_table(result.path)
    assert result.path == root.embeddings_table(entry.key) and (result.rows, result.embedded, result.kept) == (catalog.num_rows, catalog.num_rows, 0)
    assert table.column_names == list(EMBEDDING_COLUMNS) and table["crop_id"].to_pylist() == sorted(catalog["crop_id"].to_pylist())
    assert table.schema.field("embedding").type.list_size == 128 and set(table["checkpoint_sha256"].to_pylist()) == {entry.sha256}
    encoder = load_encoder(entry.path, SETTINGS)
    paths = dict(zip(catalog["crop_id"].to_pylist(), catalog["crop_path"].to_pylist()))
    for row in table.to_pylist():
        indices, clip = sampled_clip(row["crop_path"], 4, 32)
        assert row["crop_path"] == paths[row["crop_id"]] and row["frame_indices"] == indices
        assert np.array_equal(np.array(row["embedding"], np.float32), encoder.embed(clip[None])[0])
    assert {tuple(r) for r in table["frame_indices"].to_pylist()} == {(8, 9, 10, 11), (0, 0, 1, 2)}  # 20- and 3-frame crops
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert '"pooling": "mean"' in meta[ENCODER_KEY] and '"rule": "centre"' in meta[SAMPLING_KEY] and '"threads": 2' in meta[RUNTIME_KEY]
    assert entry.sha256 in meta[CHECKPOINT_KEY]


def test_the_evaluation_reads_the_table_as_written(site):
    """The contract the evaluation package codes against (``evaluation.inputs``) holds for
    the table this stage writes: its columns, one checkpoint, every crop, the metadata."""
    from vitcow_assets.evaluation.inputs import read_embeddings

    root, catalog, entry = site
    path = _embed(root, entry).path
    wanted = list(reversed(catalog["crop_id"].to_pylist()))
    read = read_embeddings(path, wanted)
    assert tuple(pq.read_schema(path).names) == EMBEDDING_COLUMNS and read.checkpoint_sha256 == entry.sha256 and read.vectors.shape == (catalog.num_rows, 128)
    rows = {r["crop_id"]: r["embedding"] for r in pq.read_table(path).to_pylist()}
    assert np.array_equal(read.vectors, np.array([rows[c] for c in wanted], np.float32))
    assert {ENCODER_KEY, SAMPLING_KEY, RUNTIME_KEY, CHECKPOINT_KEY} <= set(read.metadata)


def test_the_same_bytes_on_every_run_and_only_new_crops_embedded_when_the_catalog_grows(site, monkeypatch):
    monkeypatch.setattr(embedding, "ROW_GROUP_ROWS", 4)  # several row groups, read back through the window
    root, catalog, entry = site
    first = _embed(root, entry)
    first_bytes = first.path.read_bytes()
    again = _embed(root, entry)
    assert (again.embedded, again.kept) == (0, catalog.num_rows) and again.path.read_bytes() == first_bytes
    grown = pa.concat_tables([catalog, crop_rows(root.home, tracks=5, day=1, frames=lambda i: 20)])
    write_table(root.catalog_table, grown)
    incremental = _embed(root, entry)
    assert (incremental.rows, incremental.embedded, incremental.kept) == (grown.num_rows, grown.num_rows - catalog.num_rows, catalog.num_rows)
    table = pq.read_table(incremental.path)
    assert pq.ParquetFile(incremental.path).num_row_groups == math.ceil(grown.num_rows / 4)
    old = pq.read_table(pa.BufferReader(first_bytes))
    kept = table.filter(pa.compute.is_in(table["crop_id"], value_set=old["crop_id"]))
    assert kept.equals(old)  # every earlier row exactly as it was
    incremental_bytes = incremental.path.read_bytes()
    incremental.path.unlink()
    from_scratch = _embed(root, entry)
    assert from_scratch.embedded == grown.num_rows and from_scratch.path.read_bytes() == incremental_bytes


def test_another_recipe_embeds_everything_again(site):
    root, catalog, entry = site
    _embed(root, entry)
    other_batch = _embed(root, entry, EncoderSettings(device="cpu", batch_size=3, threads=2))
    assert (other_batch.embedded, other_batch.kept) == (catalog.num_rows, 0)
    other_code = _embed(root, entry, EncoderSettings(device="cpu", batch_size=3, threads=2), version="v2")
    assert (other_code.embedded, other_code.kept) == (catalog.num_rows, 0)


def test_a_trimmed_copy_is_embedded_instead_of_its_crop(site):
    root, catalog, entry = site
    first = pq.read_table(_embed(root, entry).path)
    crop_id = sorted(catalog["crop_id"].to_pylist())[1]
    trimmed = write_crop(root.trimmed_dir / f"{crop_id}_f00002-00007.mp4", frames=6, seed=99)
    write_table(root.trimmed_table, pa.table({"crop_id": [crop_id], "crop_path": ["x"], "start_frame": [2], "end_frame": [7], "trimmed_path": [str(trimmed)], "frames": [6]}))
    result = _embed(root, entry)
    assert (result.embedded, result.kept) == (1, catalog.num_rows - 1)
    row = pq.read_table(result.path).filter(pa.compute.equal(pa.compute.field("crop_id"), crop_id)).to_pylist()[0]
    before = first.filter(pa.compute.equal(pa.compute.field("crop_id"), crop_id)).to_pylist()[0]
    assert row["crop_path"] == str(trimmed) and row["frame_indices"] == [1, 2, 3, 4] and row["embedding"] != before["embedding"]


def test_a_crop_that_cannot_be_read_leaves_the_earlier_table_as_it_was(site):
    root, catalog, entry = site
    path = _embed(root, entry).path
    before = path.read_bytes()
    grown = pa.concat_tables([catalog, crop_rows(root.home, tracks=1, day=2, frames=lambda i: 20)])
    write_table(root.catalog_table, grown)
    broken = grown["crop_path"][-1].as_py()
    shutil.copy(__file__, broken)  # not a video
    with pytest.raises(EmbeddingInputError, match=f"crop file {broken}:"):
        _embed(root, entry)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]
