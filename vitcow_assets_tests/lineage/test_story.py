"""A crop's records and story (``lineage.records``, ``lineage.story``) over the outputs of a
real pipeline run (motion backend, synthetic footage): every row that names a column shows
that column's value from the crops manifest, the links name the crop's run and partitions,
the checkpoint hash has its placeholder until it is recorded, a changed prompt file is
flagged, missing files are listed, and crops are found by id, prefix and path."""

import dataclasses
import json
import shutil

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.lineage.links import Links
from vitcow_assets.lineage.records import context_source, crop_records, find_by_id, find_by_path
from vitcow_assets.lineage.story import NOT_RECORDED, crop_story, value_text
from vitcow_assets.media.parquet import write_table
from vitcow_assets_tests.labelling.crops import pipeline_catalog
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, MovingBox, write_video

LINKS = Links("http://pages:8765", "http://dagster:3000")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    video = tmp_path_factory.mktemp("in") / "FARM_A" / "D01" / "202502052200_D01.mp4"
    video.parent.mkdir(parents=True)
    write_video(video, frames=60, width=160, height=120, objects=tuple(MovingBox(o.start, o.velocity, (20, 16), o.colour) for o in DEFAULT_OBJECTS))
    with dg.instance_for_test() as instance:
        key, catalog = pipeline_catalog(video, home, instance)
    manifest = pq.read_table(home / "videos" / key / "crops" / "crops.parquet").to_pylist()
    return {"home": home, "root": StorageRoot(home), "key": key, "catalog": catalog.to_pylist(), "manifest": manifest}


def _manifest_row(made, catalog_row):
    return next(m for m in made["manifest"] if (m["clip_id"], m["object_id"], m["part"]) == (catalog_row["clip_id"], catalog_row["object_id"], catalog_row["part"]))


def _story(records, made, **extra):
    row = records.catalog
    track = [r for r in made["catalog"] if (r["video_id"], r["track_id"]) == (row["video_id"], row["track_id"])]
    return crop_story(records, track, extra.get("current", []), extra.get("history", []), extra.get("builds", []), LINKS)


def test_records_hold_the_manifest_row_clip_masks_and_prompt_of_the_crop(made):
    row = made["catalog"][1]
    records = crop_records(made["root"], row)
    assert records.manifest == _manifest_row(made, row) and records.missing == []
    assert records.raw_video["sha256"] == row["source_sha256"] and records.clip["clip_id"] == row["clip_id"]
    assert records.masks["segmenter"] == row["segmenter"] and records.masks["run_id"] == row["run_id"]
    assert records.prompt_plan["source"] == "run config"
    assert context_source(records, 3) == (records.clip["clip_path"], 3)


def test_every_row_naming_a_column_shows_the_manifest_value(made):
    row = made["catalog"][0]
    records = crop_records(made["root"], row)
    story = _story(records, made)
    fields = {r["field"]: r["value"] for s in story["sections"] for r in s["rows"] if r["field"]}
    manifest = _manifest_row(made, row)
    for name in ("source_path", "source_uri", "source_sha256", "farm", "camera", "recorded_at", "clip_id", "object_id", "track_id",
                 "source_frame_start", "source_frame_end", "frame_step", "frames", "frames_present", "segmenter", "prompt", "code_version", "run_id",
                 "crop_path", "crop_size", "margin", "mask_background", "part"):
        assert fields[name] == value_text(manifest[name]), name
    assert fields["crop_id"] == row["crop_id"] and fields["video_id"] == made["key"]
    assert fields["model_checkpoint_sha256"] == ""  # motion: no weights, no hash
    dagster = {d["label"]: d["href"] for d in story["dagster"]}
    assert dagster["run that wrote the crop"] == f"http://dagster:3000/runs/{row['run_id']}"
    for asset in ("raw_video", "clips", "object_masks", "object_crops"):
        assert dagster[f"{asset} partition"] == f"http://dagster:3000/assets/{asset}?view=partitions&partition={made['key']}"
    assert [t["current"] for t in story["track"]].count(True) == 1 and all(t["href"] == f"/crops/{t['crop_id']}" for t in story["track"])
    present = [i for i, p in enumerate(manifest["present"]) if p]
    assert story["video"]["context_frame"] == present[len(present) // 2]


def test_checkpoint_hash_placeholder_until_recorded_and_prompt_origin(made):
    row = made["catalog"][0]
    records = crop_records(made["root"], row)
    with_weights = dataclasses.replace(records, catalog={**row, "model_checkpoint": "/models/sam3.pt"})
    rows = {r["label"]: r for s in _story(with_weights, made)["sections"] for r in s["rows"]}
    assert rows["checkpoint sha256"]["value"] == "" and rows["checkpoint sha256"]["note"] == NOT_RECORDED
    hashed = dataclasses.replace(with_weights, manifest={**records.manifest, "model_checkpoint_sha256": "ab" * 32})
    rows = {r["label"]: r for s in _story(hashed, made)["sections"] for r in s["rows"]}
    assert rows["checkpoint sha256"]["value"] == "ab" * 32 and rows["checkpoint sha256"]["field"] == "model_checkpoint_sha256"
    from_masks = dataclasses.replace(with_weights, masks={**(records.masks or {}), "checkpoint_sha256": "cd" * 32})
    rows = {r["label"]: r for s in _story(from_masks, made)["sections"] for r in s["rows"]}
    assert rows["checkpoint sha256"]["value"] == "cd" * 32 and rows["checkpoint sha256"]["note"] == "from the masks table's metadata"
    assert rows["prompt from"]["value"].startswith("the run's config") and "stale" not in rows["prompt from"]["note"]
    edited = dataclasses.replace(records, prompt_plan={**records.prompt_plan, "source": "/in/x.prompts.yaml", "queries": [{"kind": "TextQuery", "text": "calf"}]})
    rows = {r["label"]: r for s in _story(edited, made)["sections"] for r in s["rows"]}
    assert rows["prompt from"]["value"] == "the prompt file /in/x.prompts.yaml" and "stale" in rows["prompt from"]["note"]


def test_labels_history_and_builds_are_in_the_story(made):
    row = made["catalog"][0]
    current = [{"annotator": "alice", "label": "Lying", "start_frame": 2, "end_frame": 5, "labelled_at": "2025-03-01T10:00:00Z", "source": "page"}]
    history = [{"event_id": 1, "kind": "label", "undoes": None, "annotator": "alice", "label": "Standing", "start_frame": None, "end_frame": None,
                "labelled_at": "2025-03-01T09:59:00Z", "source": "page"},
               {"event_id": 2, "kind": "undo", "undoes": 1, "annotator": "alice", "label": None, "start_frame": None, "end_frame": None,
                "labelled_at": "2025-03-01T09:59:30Z", "source": "page"}]
    builds = [{"fingerprint": "0123456789abcdef", "out_dir": "/d/v1", "current": True, "lists": ["test.csv"], "split": "test", "class_name": "Lying"}]
    story = _story(crop_records(made["root"], row), made, current=current, history=history, builds=builds)
    assert story["labels"]["current"] == [{"annotator": "alice", "label": "Lying", "labelled_at": "2025-03-01T10:00:00Z", "source": "page", "segment": "2–5"}]
    assert [(e["event_id"], e["kind"], e["undoes"]) for e in story["labels"]["history"]] == [("1", "label", ""), ("2", "undo", "1")]
    assert story["datasets"][0]["href"] == "/crops?dataset=0123456789abcdef" and story["datasets"][0]["split"] == "test"
    json.dumps(story)  # served as JSON as it is


def test_missing_files_are_listed_not_fatal(made, tmp_path):
    row = made["catalog"][0]
    root = StorageRoot(tmp_path / "copy")
    shutil.copytree(made["home"], root.home)
    (root.video(row["video_id"]).clips_table).unlink()
    (root.video(row["video_id"]).prompts_json).unlink()
    records = crop_records(root, row)
    assert records.clip is None and records.prompt_plan is None and records.manifest is not None
    assert records.missing == [str(root.video(row["video_id"]).clips_table), str(root.video(row["video_id"]).prompts_json)]
    assert _story(records, made)["missing"] == records.missing


def test_crops_are_found_by_id_prefix_and_path_with_or_without_the_catalog(made, tmp_path):
    rows, root = made["catalog"], made["root"]
    assert find_by_id(root, rows[2]["crop_id"]) == (rows[2], 1)
    assert find_by_id(root, rows[2]["crop_id"][:8]) == (rows[2], 1)
    assert find_by_id(root, "") == (None, len(rows)) and find_by_id(root, "zzzzzz") == (None, 0)
    assert find_by_path(root, rows[3]["crop_path"])["crop_id"] == rows[3]["crop_id"]
    assert find_by_path(root, tmp_path / "elsewhere.mp4") is None
    assert find_by_path(root, rows[3]["crop_path"], search_above=False)["crop_id"] == rows[3]["crop_id"]  # from the catalog
    assert find_by_path(StorageRoot(tmp_path / "empty"), rows[3]["crop_path"], search_above=False) is None  # another root's crop
    trimmed = str(root.labels_dir / "trimmed" / f"{rows[1]['crop_id']}_f00002-00005.mp4")
    write_table(root.labels_dir / "trimmed_crops.parquet", pa.table({"crop_id": [rows[1]["crop_id"]], "trimmed_path": [trimmed]}))
    try:
        assert find_by_path(root, trimmed)["crop_id"] == rows[1]["crop_id"]
        no_catalog = StorageRoot(tmp_path / "copy")
        shutil.copytree(made["home"] / "videos", no_catalog.videos)
        assert find_by_id(no_catalog, rows[2]["crop_id"][:10])[0]["crop_id"] == rows[2]["crop_id"]  # from the manifests
    finally:
        (root.labels_dir / "trimmed_crops.parquet").unlink()
