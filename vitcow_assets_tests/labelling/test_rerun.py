"""Labels across re-runs of the real pipeline: the same bytes keep every crop_id (and so
every label); new bytes under the same file name give new crop ids, and the old labels are
reported as orphans instead of moving to the new crops."""

import dagster as dg
import pytest

from vitcow_assets.labelling.snapshot import label_snapshot
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets.labelling.taxonomy_file import load_taxonomy
from vitcow_assets_tests.labelling.crops import pipeline_catalog
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, MovingBox, write_video


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The catalog of one video after a first run, a re-run on the same bytes, and a run on
    new bytes written under the same name; labels given after the first run."""
    home = tmp_path_factory.mktemp("home")
    video = tmp_path_factory.mktemp("in") / "FARM_A" / "D01" / "202502052200_D01.mp4"
    video.parent.mkdir(parents=True)
    write_video(video, frames=60, width=160, height=120, objects=tuple(MovingBox(o.start, o.velocity, (20, 16), o.colour) for o in DEFAULT_OBJECTS))
    with dg.instance_for_test() as instance, LabelStore(default_url(home)) as store:
        key, first = pipeline_catalog(video, home, instance)
        labelled = first["crop_id"].to_pylist()[:2]
        store.add_label(labelled[0], "ann", "Standing")
        store.add_label(labelled[1], "ann", "Walking", 1, 4)
        _, same = pipeline_catalog(video, home, instance)
        snap_same = label_snapshot(store.current_labels(), same, load_taxonomy(), str(home / "labels" / "trimmed"))
        write_video(video, frames=60, width=160, height=120, objects=tuple(MovingBox((o.start[0] + 7, o.start[1]), o.velocity, (20, 16), o.colour) for o in DEFAULT_OBJECTS))
        _, new = pipeline_catalog(video, home, instance)
        snap_new = label_snapshot(store.current_labels(), new, load_taxonomy(), str(home / "labels" / "trimmed"))
        yield {"key": key, "first": first, "same": same, "new": new, "labelled": labelled, "snap_same": snap_same, "snap_new": snap_new}


def test_same_bytes_keep_every_crop_id_and_label(runs):
    first, same = runs["first"], runs["same"]
    assert first.num_rows >= 2
    assert same["crop_id"].to_pylist() == first["crop_id"].to_pylist()
    assert same["run_id"].to_pylist() != first["run_id"].to_pylist()  # it really ran again
    snap = runs["snap_same"]
    assert sorted(snap.labels["crop_id"].to_pylist()) == sorted(runs["labelled"]) and snap.orphans.num_rows == 0
    row = next(r for r in snap.labels.to_pylist() if r["label"] == "Walking")
    assert (row["farm"], row["camera"], row["video_id"]) == ("FARM_A", "D01", runs["key"])


def test_new_bytes_give_new_ids_and_orphan_the_old_labels(runs):
    assert set(runs["new"]["crop_id"].to_pylist()).isdisjoint(runs["first"]["crop_id"].to_pylist())
    assert set(runs["new"]["source_sha256"].to_pylist()) != set(runs["first"]["source_sha256"].to_pylist())
    snap = runs["snap_new"]
    assert snap.labels.num_rows == 0
    assert sorted(snap.orphans["crop_id"].to_pylist()) == sorted(runs["labelled"])
    assert sorted(snap.orphans["label"].to_pylist()) == ["Standing", "Walking"]
