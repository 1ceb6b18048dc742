"""The behaviour_labels snapshot: current labels, reviewers' decisions and gold labels (each
its role) with their crops' provenance, orphans apart, the taxonomy's fingerprint in the
metadata, and the plan of trimmed copies."""

import json

import pyarrow as pa
import pytest

from vitcow_assets.core.taxonomy import parse_taxonomy
from vitcow_assets.labelling.snapshot import LABELS_SCHEMA, TAXONOMY_FINGERPRINT, UNKNOWN_LABELS, label_snapshot, trim_plan
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets.labelling.taxonomy_file import default_taxonomy_text, load_taxonomy
from vitcow_testbed.synthetic_catalog import synthetic_catalog

TAXONOMY = load_taxonomy()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return synthetic_catalog(tmp_path_factory.mktemp("home"), clips=2, objects=2, frames=10)


@pytest.fixture()
def store(tmp_path):
    with LabelStore(default_url(tmp_path)) as s:
        yield s


def test_labels_carry_their_crops_lineage_and_orphans_stay_apart(store, catalog):
    rows = catalog.to_pylist()
    first, second = rows[0], rows[3]
    store.add_label(first["crop_id"], "ann", "Standing")
    store.add_label(first["crop_id"], "bob", "Lying")
    store.add_label(second["crop_id"], "ann", "Walking", 2, 6)
    store.add_label("0123456789abcdef0123", "ann", "Feeding")  # a crop of bytes no longer in the catalog
    snap = label_snapshot(store.current_labels(), catalog, TAXONOMY, "/h/labels/trimmed")
    assert snap.labels.schema.equals(LABELS_SCHEMA, check_metadata=False)
    got = snap.labels.to_pylist()
    assert [(r["crop_id"], r["annotator"], r["label"]) for r in got] == [
        (first["crop_id"], "ann", "Standing"), (first["crop_id"], "bob", "Lying"), (second["crop_id"], "ann", "Walking"),
    ]
    for row in got:
        crop = next(r for r in rows if r["crop_id"] == row["crop_id"])
        for column in ("crop_path", "source_sha256", "source_frame_start", "frames", "segmenter", "prompt", "code_version", "farm", "track_id"):
            assert row[column] == crop[column]
    assert got[2]["trimmed_path"] == f"/h/labels/trimmed/{second['crop_id']}_f00002-00006.mp4" and got[0]["trimmed_path"] is None
    assert snap.orphans.to_pylist()[0]["crop_id"] == "0123456789abcdef0123" and snap.orphans.num_rows == 1
    meta = snap.labels.schema.metadata
    assert meta[TAXONOMY_FINGERPRINT.encode()].decode() == TAXONOMY.fingerprint
    assert json.loads(meta[UNKNOWN_LABELS.encode()]) == []


def test_a_new_mapping_changes_the_fingerprint_not_the_labels(store, catalog):
    for row in catalog.to_pylist()[:3]:
        store.add_label(row["crop_id"], "ann", "Standing_up")
    remapped = parse_taxonomy(default_taxonomy_text().replace("{label: Standing_up, key: u, class: Other", "{label: Standing_up, key: u, class: Standing"))
    before = label_snapshot(store.current_labels(), catalog, TAXONOMY, "/t").labels
    after = label_snapshot(store.current_labels(), catalog, remapped, "/t").labels
    assert remapped.fingerprint != TAXONOMY.fingerprint
    assert after.equals(before) and after.schema.metadata != before.schema.metadata
    # the same inputs give the same table, row for row
    assert label_snapshot(store.current_labels(), catalog, TAXONOMY, "/t").labels.equals(before)


def test_labels_the_taxonomy_does_not_know_are_named_in_the_metadata(store, catalog):
    store.add_label(catalog["crop_id"][0].as_py(), "ann", "Ruminating")
    meta = label_snapshot(store.current_labels(), catalog, TAXONOMY, "/t").labels.schema.metadata
    assert json.loads(meta[UNKNOWN_LABELS.encode()]) == ["Ruminating"]


def test_trim_plan_has_one_copy_per_crop_and_segment(store, catalog):
    a, b = catalog["crop_id"][0].as_py(), catalog["crop_id"][1].as_py()
    store.add_label(a, "ann", "Walking", 1, 5)
    store.add_label(a, "bob", "Walking", 1, 5)  # the same segment: one copy
    store.add_label(b, "ann", "Walking", 0, 3)
    store.add_label(b, "bob", "Standing")
    plan = trim_plan(label_snapshot(store.current_labels(), catalog, TAXONOMY, "/t").labels)
    assert [(r["crop_id"], r["start_frame"], r["end_frame"]) for r in plan.to_pylist()] == sorted([(a, 1, 5), (b, 0, 3)])
    assert plan.num_rows == len(set(plan["trimmed_path"].to_pylist()))
    empty = trim_plan(label_snapshot(store.current_labels().slice(0, 0), catalog, TAXONOMY, "/t").labels)
    assert empty.num_rows == 0 and isinstance(empty, pa.Table)


def test_decisions_and_gold_labels_are_rows_of_their_own_role_and_their_segments_are_trimmed(store, catalog):
    a, b, c = (catalog["crop_id"][i].as_py() for i in range(3))
    store.add_label(a, "ann", "Lying", unsure=True)
    store.add_label(a, "bob", "Standing")
    store.create_token("rev", "reviewer")
    store.decide(a, "rev", "Standing_up", 1, 4)
    store.add_label(b, "ann", "Feeding")
    store.add_gold([{"crop_id": b, "label": "Drinking"}, {"crop_id": "gone0123456789abcdef", "label": "Lying"}], "gold.csv")
    snap = label_snapshot(store.current_labels(), catalog, TAXONOMY, "/t", store.current_decisions(), store.gold_labels())
    got = [(r["crop_id"], r["role"], r["annotator"], r["label"], r["unsure"], r["trimmed_path"]) for r in snap.labels.to_pylist()]
    assert sorted(got) == sorted([
        (a, "annotator", "ann", "Lying", True, None), (a, "annotator", "bob", "Standing", False, None),
        (a, "reviewer", "rev", "Standing_up", False, f"/t/{a}_f00001-00004.mp4"),
        (b, "annotator", "ann", "Feeding", False, None), (b, "gold", "(gold)", "Drinking", False, None),
    ])
    assert c not in {g[0] for g in got}
    assert [(r["crop_id"], r["role"]) for r in snap.orphans.to_pylist()] == [("gone0123456789abcdef", "gold")]
    assert [(r["crop_id"], r["start_frame"], r["end_frame"]) for r in trim_plan(snap.labels).to_pylist()] == [(a, 1, 4)]
    store.undo_decision("rev", a)  # undone: the decision row goes, and with it the trim
    snap = label_snapshot(store.current_labels(), catalog, TAXONOMY, "/t", store.current_decisions(), store.gold_labels())
    assert "reviewer" not in snap.labels["role"].to_pylist() and trim_plan(snap.labels).num_rows == 0
