"""Importing and exporting labels as CSV: both input forms (crop_path or crop_id headers,
the unsure column), refusals that leave the database unchanged (one line per bad row, with
its row number and, for a row with a field too many, that field), the export's columns,
and gold crops imported from the same forms."""

import csv

import pytest

from vitcow_assets.labelling.csv_labels import EXPORT_COLUMNS, LabelImportError, export_labels, import_gold, import_labels
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets.labelling.taxonomy_file import load_taxonomy
from vitcow_testbed.synthetic_catalog import synthetic_catalog

TAXONOMY = load_taxonomy()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    synthetic_catalog(home)
    return home


@pytest.fixture(scope="module")
def catalog(home):
    import pyarrow.parquet as pq

    return pq.read_table(home / "catalog" / "crops.parquet")


@pytest.fixture()
def store(tmp_path):
    with LabelStore(default_url(tmp_path)) as s:
        s.add_label("existing", "someone", "Lying")
        yield s


def crop(catalog, video, clip, obj) -> dict:
    return next(r for r in catalog.to_pylist() if (r["video_id"], r["clip_id"], r["object_id"]) == (video, clip, obj))


def write(path, text: str):
    path.write_text(text)
    return path


def state(store):
    return store.history().to_pylist()


def test_header_form_with_absolute_and_relative_paths_and_a_segment(store, catalog, home, tmp_path):
    a, b = crop(catalog, "va", "c00000", 0), crop(catalog, "vb", "c00002", 1)
    relative = b["crop_path"].removeprefix(str(home) + "/")
    f = write(tmp_path / "l.csv", f"crop_path,label,start_frame,end_frame\n{a['crop_path']},Standing,,\n{relative},Lying_down,3,8\n")
    events = import_labels(store, f, catalog, TAXONOMY, "ann", home)
    assert [(e.crop_id, e.label, e.start_frame, e.end_frame, e.source) for e in events] == [
        (a["crop_id"], "Standing", None, None, "import"), (b["crop_id"], "Lying_down", 3, 8, "import"),
    ]
    assert {r["annotator"] for r in store.current_labels().to_pylist()} == {"someone", "ann"}


def test_headerless_names_from_the_old_scripts(store, catalog, home, tmp_path):
    a = crop(catalog, "va", "c00001", 1)
    rel = "va/crops/c00001/obj0001"
    f = write(tmp_path / "old.csv", f"{rel}.mp4,Feeding\nvb/crops/c00000/obj0000,Walking\n{a['crop_id']},Drinking\n")
    events = import_labels(store, f, catalog, TAXONOMY, "ann", home)
    assert [(e.crop_id, e.label) for e in events] == [
        (a["crop_id"], "Feeding"), (crop(catalog, "vb", "c00000", 0)["crop_id"], "Walking"), (a["crop_id"], "Drinking"),
    ]
    # the later row of the same crop is its current label; the earlier one stays in the history
    assert [r["label"] for r in store.current_labels("ann").to_pylist() if r["crop_id"] == a["crop_id"]] == ["Drinking"]


@pytest.mark.parametrize(
    "text, problems",
    [
        ("crop_path,label\n{a},Standing\n{a},Sleeping\n", ["row 3: unknown label 'Sleeping'"]),
        ("crop_path,label\n{a},Standing\n/nowhere/obj0000.mp4,Lying\n", ["row 3: unknown crop '/nowhere/obj0000.mp4'"]),
        ("crop_path,label\n/x.mp4,Standing\n{a},Lying\n{a},Nope\n{a},Lying\n", ["row 2: unknown crop", "row 4: unknown label 'Nope'"]),
        ("crop_path,label,start_frame,end_frame\n{a},Walking,4,12\n{a},Walking,2,x\n", ["row 2: segment 4..12: the crop has frames 0..11", "row 3: frame 'x'"]),
        ("obj0000.mp4,Standing\n", ["row 1: 'obj0000.mp4' names 6 crops"]),
        ("{a},Standing,extra\n", ["row 1: expected name,label (2 columns), found 3: extra field 'extra'"]),
        ("crop_path,label\n{a},Standing\n{a},Lying,Feeding\n", ["row 3: 3 fields where the header names 2: extra field 'Feeding'"]),
        ("crop_path,label,start_frame,end_frame\n{a},Walking,2\n", ["row 2: 3 fields where the header names 4: no 'end_frame'"]),
        ("crop_path,label,unsure\n{a},Walking,maybe\n", ["row 2: unsure 'maybe' is not true or false"]),
        ("crop_id,label\nnope,Walking\n", ["row 2: unknown crop_id 'nope'"]),
        ("\n\n", ["no labels in the file"]),
    ],
)
def test_a_file_with_any_bad_row_imports_nothing(store, catalog, home, tmp_path, text, problems):
    a = crop(catalog, "va", "c00000", 0)["crop_path"]
    f = write(tmp_path / "bad.csv", text.format(a=a))
    before = state(store)
    with pytest.raises(LabelImportError) as info:
        import_labels(store, f, catalog, TAXONOMY, "ann", home)
    assert state(store) == before
    assert len(info.value.problems) == len(problems)
    for line, expected in zip(info.value.problems, problems):
        assert line.startswith(f"{f}: ") and expected in line and "\n" not in line


def test_export_writes_current_labels_and_round_trips(store, catalog, home, tmp_path):
    a, b = crop(catalog, "va", "c00000", 0), crop(catalog, "vb", "c00001", 0)
    store.add_label(a["crop_id"], "ann", "Standing")
    store.add_label(a["crop_id"], "ann", "Standing_up", 1, 4)  # supersedes
    store.add_label(b["crop_id"], "bob", "Delete")
    store.add_label(a["crop_id"], "bob", "Lying")
    out = tmp_path / "export.csv"
    result = export_labels(store.current_labels(), catalog, out)
    assert (result.rows, result.orphans) == (3, 1)  # the label of "existing" (no such crop) is an orphan
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == EXPORT_COLUMNS
    got = [(r["crop_path"], r["label"], r["annotator"], r["start_frame"], r["end_frame"]) for r in rows]
    expected = [(a["crop_path"], "Standing_up", "ann", "1", "4"), (a["crop_path"], "Lying", "bob", "", ""), (b["crop_path"], "Delete", "bob", "", "")]
    assert got == sorted(expected, key=lambda r: (r[0], r[2]))  # by crop path, then annotator
    assert all(r["labelled_at"].endswith("Z") for r in rows)
    # the export is a valid import (header form); bob's rows come back under the importing annotator
    imported = import_labels(store, out, catalog, TAXONOMY, "copy", home)
    assert sorted((e.crop_id, e.label, e.start_frame) for e in imported) == sorted(
        [(a["crop_id"], "Standing_up", 1), (a["crop_id"], "Lying", None), (b["crop_id"], "Delete", None)]
    )


def test_crop_id_header_and_the_unsure_column(store, catalog, home, tmp_path):
    a, b = crop(catalog, "va", "c00000", 1), crop(catalog, "vb", "c00001", 1)
    f = write(tmp_path / "ids.csv", f"crop_id,label,unsure\n{a['crop_id']},Feeding,true\n{b['crop_id']},Lying,\n")
    events = import_labels(store, f, catalog, TAXONOMY, "ann", home)
    assert [(e.crop_id, e.label, e.unsure) for e in events] == [(a["crop_id"], "Feeding", True), (b["crop_id"], "Lying", False)]
    out = tmp_path / "export.csv"
    export_labels(store.current_labels("ann"), catalog, out)
    rows = {r["crop_path"]: r["unsure"] for r in csv.DictReader(out.open())}
    assert rows == {a["crop_path"]: "true", b["crop_path"]: "false"}
    again = import_labels(store, out, catalog, TAXONOMY, "copy", home)  # the unsure flag round-trips
    assert sorted((e.crop_id, e.unsure) for e in again) == sorted([(a["crop_id"], True), (b["crop_id"], False)])


def test_gold_import_marks_crops_and_refuses_a_bad_file_whole(store, catalog, home, tmp_path):
    a, b = crop(catalog, "va", "c00002", 0), crop(catalog, "vb", "c00002", 0)
    good = write(tmp_path / "gold.csv", f"crop_id,label\n{a['crop_id']},Lying\n{b['crop_id']},Walking\n")
    assert import_gold(store, good, catalog, TAXONOMY, home) == 2
    assert {r["crop_id"]: (r["label"], r["source"]) for r in store.gold_labels().to_pylist()} == {
        a["crop_id"]: ("Lying", "gold.csv"), b["crop_id"]: ("Walking", "gold.csv")}
    bad = write(tmp_path / "bad-gold.csv", f"crop_path,label\n{a['crop_path']},Standing\n{a['crop_path']},Sleeping\n")
    with pytest.raises(LabelImportError, match="row 3: unknown label 'Sleeping'"):
        import_gold(store, bad, catalog, TAXONOMY, home)
    assert {r["crop_id"]: r["label"] for r in store.gold_labels().to_pylist()} == {a["crop_id"]: "Lying", b["crop_id"]: "Walking"}
    assert state(store) == [e for e in state(store) if e["crop_id"] == "existing"]  # no label events
