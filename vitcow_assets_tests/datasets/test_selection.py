"""Filters over the catalog and labels resolved to one training class per crop."""

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from vitcow_assets.datasets.inputs import DatasetInputError
from vitcow_assets.datasets.selection import CropFilter, filter_crops, resolve_labels
from vitcow_assets_tests.datasets.synthetic_labels import shuffled


def test_presence_farm_camera_and_segmenter_filters(catalog):
    rows = catalog.to_pylist()
    kept = filter_crops(catalog, CropFilter(min_presence=0.5)).table
    assert sorted(kept["crop_id"].to_pylist()) == sorted(r["crop_id"] for r in rows if r["presence_ratio"] >= 0.5)
    narrow = filter_crops(catalog, CropFilter(min_presence=0.0, farms=["FarmB", "FarmC"], cameras="D02"))
    assert {(r["farm"], r["camera"]) for r in narrow.table.to_pylist()} == {("FarmB", "D02"), ("FarmC", "D02")}
    assert narrow.dropped["farms"] == sum(r["farm"] == "FarmA" for r in rows)
    assert narrow.dropped["cameras"] == sum(r["farm"] != "FarmA" and r["camera"] != "D02" for r in rows)
    assert filter_crops(catalog, CropFilter(min_presence=0.0, segmenters=["sam3/0.1.4"])).table.num_rows == 0


def _start(row) -> dt.datetime:
    return row["recorded_at"] + dt.timedelta(seconds=row["source_frame_start"] / (row["fps"] * row["frame_step"]))


@pytest.mark.parametrize("window", [("06:00", "06:30"), ("13:00", "20:00"), ("20:00", "06:15")])
def test_time_of_day_window_on_the_crop_start(catalog, window):
    """recorded_at + the clip's offset in the source decides; a window may cross midnight."""
    lo, hi = (dt.time.fromisoformat(t) for t in window)
    inside = (lambda t: lo <= t < hi) if lo <= hi else (lambda t: t >= lo or t < hi)
    kept = filter_crops(catalog, CropFilter(min_presence=0.0, day_start=window[0], day_end=window[1])).table
    expected = sorted(r["crop_id"] for r in catalog.to_pylist() if inside(_start(r).time()))
    assert sorted(kept["crop_id"].to_pylist()) == expected and 0 < len(expected) < catalog.num_rows


def test_time_window_drops_crops_without_recording_time(catalog):
    blank = catalog.set_column(catalog.schema.get_field_index("recorded_at"), catalog.schema.field("recorded_at"), pa.nulls(catalog.num_rows, pa.timestamp("s")))
    result = filter_crops(blank, CropFilter(min_presence=0.0, day_start="00:00", day_end="23:59"))
    assert result.table.num_rows == 0 and result.dropped["time_of_day"] == catalog.num_rows


def test_bad_filter_settings_and_missing_columns_are_one_line_errors(catalog):
    with pytest.raises(DatasetInputError, match="min_presence"):
        CropFilter(min_presence=1.5)
    with pytest.raises(DatasetInputError, match="together"):
        CropFilter(day_start="06:00")
    with pytest.raises(DatasetInputError, match="HH:MM"):
        CropFilter(day_start="6am", day_end="07:00")
    with pytest.raises(DatasetInputError, match=r"^catalog: missing column\(s\) presence_ratio"):
        filter_crops(catalog.drop_columns(["presence_ratio"]))


def _labels_by_crop(labels):
    out = {}
    for r in labels.to_pylist():
        out.setdefault(r["crop_id"], []).append(r)
    return out


def test_every_labelled_crop_is_resolved_excluded_conflicting_or_awaiting(labels, catalog, taxonomy, trims):
    res = resolve_labels(labels, catalog, taxonomy, trims)
    by_crop = _labels_by_crop(labels)
    classes = {c: {taxonomy.class_of(r["label"]) for r in rows} for c, rows in by_crop.items()}
    deleted = {c for c, k in classes.items() if k == {None}}
    conflicts = {c for c, k in classes.items() if len(k) > 1}
    resolved = res.crops["crop_id"].to_pylist()
    assert deleted and conflicts and res.awaiting_trim  # the scene has all of them
    assert res.excluded == len(deleted) and set(res.conflicts) == conflicts
    assert not (set(resolved) & (deleted | conflicts | set(res.awaiting_trim)))
    assert len(resolved) + len(deleted) + len(conflicts) + len(res.awaiting_trim) == len(by_crop)
    for row in res.crops.to_pylist():
        assert classes[row["crop_id"]] == {row["class_name"]}
        assert row["class_index"] == taxonomy.classes.index(row["class_name"])
        assert row["annotators"] == len(by_crop[row["crop_id"]])
    assert resolved == sorted(resolved)


def test_two_fine_labels_of_one_class_agree(labels, catalog, taxonomy):
    crop = catalog.to_pylist()[0]
    pair = pa.Table.from_pylist([
        {"crop_id": crop["crop_id"], "label": "Grooming-standing", "annotator": "a", "start_frame": None, "end_frame": None},
        {"crop_id": crop["crop_id"], "label": "Mounting", "annotator": "b", "start_frame": None, "end_frame": None},
    ])
    (row,) = resolve_labels(pair, catalog, taxonomy).crops.to_pylist()
    assert (row["class_name"], row["fine_labels"], row["annotators"]) == ("Other", "Grooming-standing,Mounting", 2)


def test_trimmed_copies_replace_path_frames_and_duration(labels, catalog, taxonomy, trims):
    res = resolve_labels(labels, catalog, taxonomy, trims)
    by_trim = {r["crop_id"]: r for r in trims.to_pylist()}
    used = [r for r in res.crops.to_pylist() if r["trimmed"]]
    assert used
    for row in used:
        trim = by_trim[row["crop_id"]]
        assert (row["crop_path"], row["frames"]) == (trim["trimmed_path"], trim["frames"])
        assert row["source_crop_path"].endswith(".mp4") and row["source_crop_path"] != row["crop_path"]
        assert row["duration_s"] == pytest.approx(trim["frames"] / row["fps"])
    untrimmed = [r for r in res.crops.to_pylist() if not r["trimmed"]]
    assert all(r["crop_path"] == r["source_crop_path"] and r["frames"] == 20 for r in untrimmed)
    # without the trimmed table every crop with a marked segment waits for its trim
    bare = resolve_labels(labels, catalog, taxonomy)
    assert set(bare.awaiting_trim) == set(res.awaiting_trim) | {r["crop_id"] for r in used}


def test_a_trim_for_another_segment_is_stale(labels, catalog, taxonomy, trims):
    res = resolve_labels(labels, catalog, taxonomy, trims)
    moved = trims.set_column(1, "start_frame", pc.add(trims["start_frame"], 1))
    stale = resolve_labels(labels, catalog, taxonomy, moved)
    assert set(stale.awaiting_trim) == set(res.awaiting_trim) | set(res.crops.filter(res.crops["trimmed"])["crop_id"].to_pylist())


def test_resolution_ignores_row_order(labels, catalog, taxonomy, trims):
    a = resolve_labels(labels, catalog, taxonomy, trims).crops
    b = resolve_labels(shuffled(labels), shuffled(catalog, 3), taxonomy, shuffled(trims, 5)).crops
    assert a.equals(b)


def test_labels_outside_the_catalog_are_counted(labels, catalog, taxonomy, trims):
    only_b = filter_crops(catalog, CropFilter(min_presence=0.0, farms=["FarmB"])).table
    res = resolve_labels(labels, only_b, taxonomy, trims)
    assert set(res.crops["farm"].to_pylist()) == {"FarmB"}
    labelled_b = {r["crop_id"] for r in labels.to_pylist() if r["farm"] == "FarmB"}
    assert res.not_in_catalog == len(set(labels["crop_id"].to_pylist()) - labelled_b)


def test_bad_labels_are_one_line_errors(labels, catalog, taxonomy):
    unknown = labels.set_column(1, "label", pa.array(["Sleeping"] + labels["label"].to_pylist()[1:]))
    with pytest.raises(DatasetInputError, match=r"label 'Sleeping' \(crop \w+\) is not in taxonomy cattle-behaviour v1"):
        resolve_labels(unknown, catalog, taxonomy)
    twice = pa.concat_tables([labels, labels.slice(0, 1)])
    with pytest.raises(DatasetInputError, match=r"\(crop_id, role, annotator\) .* appears more than once"):
        resolve_labels(twice, catalog, taxonomy)
    with pytest.raises(DatasetInputError, match=r"^labels snapshot: missing column\(s\) annotator"):
        resolve_labels(labels.drop_columns(["annotator"]), catalog, taxonomy)


def _with_rows(labels: pa.Table, rows: list[dict]) -> pa.Table:
    """``labels`` (an annotators-only snapshot) with role/unsure columns and ``rows`` added."""
    base = labels.select(["crop_id", "label", "annotator", "start_frame", "end_frame"])
    base = base.append_column("role", pa.array(["annotator"] * base.num_rows)).append_column("unsure", pa.array([False] * base.num_rows))
    extra = pa.Table.from_pylist([{"start_frame": None, "end_frame": None, "unsure": False, **r} for r in rows], schema=base.schema)
    return pa.concat_tables([base, extra])


def test_a_decision_settles_a_conflict_gold_wins_and_undecided_conflicts_stay_out(labels, catalog, taxonomy, trims):
    base = resolve_labels(labels, catalog, taxonomy, trims)
    assert len(base.conflicts) >= 3 and not base.decided and not base.gold
    decided, deleted, left = base.conflicts[:3]
    agreed = next(c for c in base.crops.to_pylist() if c["annotators"] == 2)
    rows = [
        {"crop_id": decided, "label": "Feeding", "annotator": "rev", "role": "reviewer"},
        {"crop_id": deleted, "label": "Delete", "annotator": "rev", "role": "reviewer"},
        {"crop_id": agreed["crop_id"], "label": "Drinking", "annotator": "(gold)", "role": "gold"},
    ]
    res = resolve_labels(_with_rows(labels, rows), catalog, taxonomy, trims)
    got = {r["crop_id"]: r for r in res.crops.to_pylist()}
    assert (got[decided]["class_name"], got[decided]["label_basis"], got[decided]["fine_labels"]) == ("Feeding", "decided", "Feeding")
    assert deleted not in got and res.excluded == base.excluded + 1
    assert left in res.conflicts and decided not in res.conflicts and len(res.conflicts) == len(base.conflicts) - 2
    gold = got[agreed["crop_id"]]
    assert (gold["class_name"], gold["label_basis"], gold["annotators"]) == ("Drinking", "gold", 2)  # the gold label is nobody's label
    assert res.crops["crop_id"].to_pylist().count(agreed["crop_id"]) == 1
    assert res.summary()["decided"] == 2 and res.summary()["gold"] == 1 and res.crops.num_rows == base.crops.num_rows + 1


def test_a_decided_segment_uses_its_own_trimmed_copy(labels, catalog, taxonomy, trims):
    conflict = resolve_labels(labels, catalog, taxonomy, trims).conflicts[0]
    decision = {"crop_id": conflict, "label": "Walking", "annotator": "rev", "role": "reviewer", "start_frame": 3, "end_frame": 9}
    waiting = resolve_labels(_with_rows(labels, [decision]), catalog, taxonomy, trims)
    assert conflict in waiting.awaiting_trim  # no copy cut for the decided segment yet
    cut = pa.Table.from_pylist([{"crop_id": conflict, "start_frame": 3, "end_frame": 9, "trimmed_path": "/t/cut.mp4", "frames": 7}])
    trimmed = pa.concat_tables([trims.select(cut.column_names).filter(pc.invert(pc.equal(trims["crop_id"], conflict))), cut.cast(trims.select(cut.column_names).schema)])
    row = next(r for r in resolve_labels(_with_rows(labels, [decision]), catalog, taxonomy, trimmed).crops.to_pylist() if r["crop_id"] == conflict)
    assert (row["crop_path"], row["frames"], row["trim_start_frame"], row["class_name"]) == ("/t/cut.mp4", 7, 3, "Walking")


def test_unsure_labels_count_unless_dropped(labels, catalog, taxonomy, trims):
    base = resolve_labels(labels, catalog, taxonomy, trims)
    single = next(c["crop_id"] for c in base.crops.to_pylist() if c["annotators"] == 1 and not c["trimmed"])
    conflict = base.conflicts[0]
    unsure_of = {(single, r["annotator"]) for r in labels.to_pylist() if r["crop_id"] == single}
    unsure_of.add(next((conflict, r["annotator"]) for r in labels.to_pylist() if r["crop_id"] == conflict))
    marked = _with_rows(labels, [])
    flags = [(c, a) in unsure_of for c, a in zip(marked["crop_id"].to_pylist(), marked["annotator"].to_pylist())]
    marked = marked.set_column(marked.schema.get_field_index("unsure"), "unsure", pa.array(flags))
    kept = resolve_labels(marked, catalog, taxonomy, trims)
    assert kept.crops.equals(base.crops) and kept.unsure_dropped == 0  # used unless dropped
    dropped = resolve_labels(marked, catalog, taxonomy, trims, drop_unsure=True)
    assert dropped.unsure_dropped == 2 and single not in dropped.crops["crop_id"].to_pylist()
    assert conflict not in dropped.conflicts  # the other annotator's label alone decides it now
    assert next(r for r in dropped.crops.to_pylist() if r["crop_id"] == conflict)["annotators"] == 1
