"""The embeddings table's rules: the centre frames (short crops clamped), the file each crop
is embedded from, which earlier rows are kept, and when an earlier table's recipe matches."""

import json

import pyarrow as pa
import pytest

from vitcow_assets.core.embeddings import (
    EMBEDDING_COLUMNS, RECIPE_KEYS, EmbeddingInputError, centre_frames, embedding_targets, embeddings_schema, kept_mask, recipe_metadata, same_recipe,
)


def test_the_centre_window_of_a_crop_and_a_short_crop_repeats_its_edges():
    assert centre_frames(20, 16) == list(range(2, 18))
    assert centre_frames(16, 16) == list(range(16))
    assert centre_frames(21, 16) == list(range(2, 18))  # an odd surplus: the extra frame at the end
    assert centre_frames(10, 16) == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9]
    assert centre_frames(1, 4) == [0, 0, 0, 0]
    with pytest.raises(EmbeddingInputError):
        centre_frames(0, 16)


def test_trimmed_crops_are_embedded_from_their_trimmed_file_and_rows_come_sorted_by_crop_id():
    catalog = pa.table({"crop_id": ["c", "a", "b"], "crop_path": ["/v/c.mp4", "/v/a.mp4", "/v/b.mp4"], "farm": ["F", "F", "F"]})
    trimmed = pa.table({"crop_id": ["b"], "trimmed_path": ["/labels/trimmed/b_f00002-00009.mp4"], "frames": [8]})
    targets = embedding_targets(catalog, trimmed)
    assert targets.to_pylist() == [{"crop_id": "a", "crop_path": "/v/a.mp4"}, {"crop_id": "b", "crop_path": "/labels/trimmed/b_f00002-00009.mp4"},
                                   {"crop_id": "c", "crop_path": "/v/c.mp4"}]
    two = pa.table({"crop_id": ["b", "b"], "trimmed_path": ["/t/b_1.mp4", "/t/b_2.mp4"]})
    with pytest.raises(EmbeddingInputError, match="crop b has two trimmed copies"):
        embedding_targets(catalog, two)


def test_earlier_rows_are_kept_only_for_the_same_file():
    targets = pa.table({"crop_id": ["a", "b", "c"], "crop_path": ["/v/a.mp4", "/t/b_trim.mp4", "/v/c.mp4"]})
    previous = pa.table({"crop_id": ["a", "b", "gone"], "crop_path": ["/v/a.mp4", "/v/b.mp4", "/v/gone.mp4"]})
    assert kept_mask(previous, targets).to_pylist() == [True, False, False]


def test_the_recipe_must_match_on_every_key():
    recipe = recipe_metadata({"depth": 3}, {"rule": "centre"}, {"device": "cpu", "batch_size": 8}, {"sha256": "ab"}, "v1")
    assert set(recipe) == set(RECIPE_KEYS)
    schema = embeddings_schema(4, recipe)
    assert schema.names == list(EMBEDDING_COLUMNS) and schema.field("embedding").type == pa.list_(pa.float32(), 4)
    assert same_recipe(schema.metadata, recipe)
    for key in RECIPE_KEYS:
        other = dict(recipe, **{key: json.dumps("something else")})
        assert not same_recipe(schema.metadata, other)
    assert not same_recipe(None, recipe)
