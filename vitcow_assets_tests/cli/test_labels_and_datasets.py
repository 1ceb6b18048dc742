"""From footage to a VideoMAE-ready folder with the commands the README gives: `vitcow run`
on synthetic footage of three farms (`FARM/D01/<stamp>_D01.mp4`), `vitcow labels import`
(a Delete, a segment label), `vitcow dataset build --test-farm`; then what the lists say is
checked against the files, the rebuild against the first build, and the frozen test split
against new footage."""

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._core.instance.ref import InstanceRef
from dagster._utils.test.data_versions import get_stale_status_resolver

from vitcow_assets.core.taxonomy import parse_taxonomy
from vitcow_assets.datasets.build import DatasetSettings, build_dataset
from vitcow_assets.definitions import defs
from vitcow_assets.datasets.staged import read_label_snapshot, read_trimmed
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.labelling.taxonomy_file import default_taxonomy_text
from vitcow_assets.lineage.builds import builds_of
from vitcow_assets.media.video import iter_frames, probe_video
from vitcow_assets_tests.helpers import age, run_cli
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, write_video

FARMS = ("FARM_A", "FARM_B", "FARM_C")
LABELS = ("Standing", "Lying", "Walking", "Feeding")


def _video(landing: Path, farm: str, day: int, shift: int) -> Path:
    path = landing / farm / "D01" / f"202502{day:02d}0600_D01.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    objects = tuple(dataclasses.replace(o, start=(o.start[0] + shift, o.start[1])) for o in DEFAULT_OBJECTS)
    return age(write_video(path, frames=160, objects=objects))


def _crops(home: Path) -> list[dict]:
    return [r for m in sorted((home / "videos").glob("*/crops/crops.parquet")) for r in pq.read_table(m).to_pylist()]


def _listed(path: Path) -> list[tuple[str, int]]:
    """A VideoMAE list as its users read it: space-separated `path label` (or frames), no header."""
    with open(path, newline="") as handle:
        return [(row[0], int(row[1])) for row in csv.reader(handle, delimiter=" ")]


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_labels(path: Path, crops: list[dict], deleted: str, segment_crop: str) -> None:
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["crop_path", "label", "start_frame", "end_frame"])
        for i, crop in enumerate(crops):
            if crop["crop_path"] == deleted:
                out.writerow([crop["crop_path"], "Delete", "", ""])
            elif crop["crop_path"] == segment_crop:
                out.writerow([crop["crop_path"], "Standing_up", 2, 9])
            else:
                out.writerow([crop["crop_path"], LABELS[(crop["track_id"] + i // 7) % len(LABELS)], "", ""])


@pytest.fixture(scope="module")
def farms(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    landing = tmp_path_factory.mktemp("landing")
    for day, farm in enumerate(FARMS, start=1):
        _video(landing, farm, day, 12 * day)
    done = run_cli(["run", str(landing) + "/", "--backend", "motion", "--json", "--no-progress"], home)
    assert done.returncode == 0, done.stderr[-2000:]
    crops = _crops(home)
    assert {c["farm"] for c in crops} == set(FARMS)
    deleted, segment_crop = crops[0]["crop_path"], crops[3]["crop_path"]
    labels = home / "labels.csv"
    _write_labels(labels, crops, deleted, segment_crop)
    done = run_cli(["labels", "import", str(labels), "--annotator", "alice"], home)
    assert done.returncode == 0, done.stderr[-2000:]
    out = home / "datasets" / "v1"
    done = run_cli(["dataset", "build", str(out), "--test-farm", "FARM_C", "--val-fraction", "0.3", "--seed", "42", "--min-present", "0.2"], home)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"home": home, "landing": landing, "out": out, "crops": crops, "deleted": deleted, "segment": segment_crop}


def test_the_test_split_is_the_held_out_farm_and_no_track_is_on_both_sides(farms):
    splits = pq.read_table(farms["out"] / "splits.parquet").to_pylist()
    assert {r["farm"] for r in splits if r["split"] == "test"} == {"FARM_C"}
    assert "FARM_C" not in {r["farm"] for r in splits if r["split"] != "test"}
    sides: dict[tuple, set] = {}
    for r in splits:
        sides.setdefault((r["video_id"], r["track_id"]), set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert {r["split"] for r in splits} == {"train", "val", "test"}


def test_lists_name_real_files_with_their_frame_counts_delete_left_out_and_the_segment_trimmed(farms):
    out = farms["out"]
    classes = (out / "class_mapping.txt").read_text().splitlines()
    assert classes == sorted(classes) and len(classes) == 8
    listed = [p for name in ("train.csv", "val.csv", "test.csv") for p, _ in _listed(out / name)]
    assert farms["deleted"] not in listed and farms["segment"] not in listed
    trimmed = [p for p in listed if "/labels/trimmed/" in p]
    assert len(trimmed) == 1 and probe_video(trimmed[0]).frame_count == 8  # frames 2..9
    for path, frames in _listed(out / "pretrain_train.csv")[:4] + _listed(out / "pretrain_test.csv")[:2]:
        assert probe_video(path).frame_count == frames
        first = next(iter_frames(path))[1]
        assert first.shape == (224, 224, 3)
    for path, label in _listed(out / "train.csv")[:3]:
        assert 0 <= label < len(classes) and Path(path).is_file()


def test_dataset_json_names_the_catalog_labels_taxonomy_and_code(farms):
    manifest = json.loads((farms["out"] / "dataset.json").read_text())
    catalog = farms["home"] / "catalog" / "crops.parquet"
    assert manifest["catalog"]["path"] == str(catalog) and manifest["catalog"]["sha256"] == hashlib.sha256(catalog.read_bytes()).hexdigest()
    assert manifest["taxonomy"]["fingerprint"] and manifest["labels"]["rows"] == len(farms["crops"])
    assert manifest["code_version"].startswith("0.1.0")
    assert {s["video_id"] for s in manifest["sources"]} == {c["video_id"] for c in farms["crops"]}


def test_every_list_row_leads_to_its_crop_page_and_the_build_that_holds_it(farms):
    """From a row of test.csv (or a trimmed copy in any list) `vitcow provenance PATH` gives
    the crop id and page; the id (or its start) gives the same crop back; the build is in
    the index under the sha256 of its dataset.json, with the crop in the split its list says."""
    out, home = farms["out"], farms["home"]
    fingerprint = hashlib.sha256((out / "dataset.json").read_bytes()).hexdigest()[:16]
    assert (home / "datasets" / "builds" / f"{fingerprint}.parquet").is_file()
    ids = {r["crop_path"]: r["crop_id"] for r in pq.read_table(out / "splits.parquet").to_pylist()}
    env = {"VITCOW_PAGES_URL": "http://pages.test:9000/"}
    listed = {name: [p for p, _ in _listed(out / f"{name}.csv")] for name in ("train", "val", "test")}
    trimmed = next((name, p) for name, paths in listed.items() for p in paths if "/labels/trimmed/" in p)
    for split, path in [("test", listed["test"][0]), trimmed]:
        done = run_cli(["provenance", path], home, env)
        assert done.returncode == 0, done.stderr
        row = json.loads(done.stdout)
        assert row["crop_id"] == ids[path] and row["crop_page"] == f"http://pages.test:9000/crops/{ids[path]}"
        assert (row["crop_path"] == path) != (row.get("trimmed_path") == path)  # the crop itself, or its trimmed copy
        (build,) = builds_of(home / "datasets" / "builds", row["crop_id"])
        assert (build["fingerprint"], build["current"], build["split"], build["out_dir"]) == (fingerprint, True, split, str(out))
        assert f"{split}.csv" in build["lists"]
    again = run_cli(["provenance", ids[trimmed[1]][:8]], home, env)
    assert again.returncode == 0 and json.loads(again.stdout)["crop_id"] == ids[trimmed[1]]
    assert "/labels/trimmed/" not in json.loads(again.stdout)["crop_path"]  # by id: the whole crop
    missing = run_cli(["provenance", "0123456789abcdef0123"], home)
    assert missing.returncode == 2 and missing.stderr.startswith("vitcow: no crop id starts with 0123456789abcdef0123") and missing.stderr.count("\n") == 1


def test_a_build_with_an_empty_validation_split_says_why(farms, tmp_path):
    """One training farm whose two animals each show one class (the newcomer's few labels):
    validation is empty, and the command says why, in its JSON and on stderr."""
    out = tmp_path / "one_farm"
    extra = {"VITCOW_DATASET_FARMS": "FARM_A,FARM_C", "VITCOW_DATASET_FILTER_LABELLED": "1"}
    done = run_cli(["dataset", "build", str(out), "--test-farm", "FARM_C", "--min-present", "0"], farms["home"], extra)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)
    assert printed["rows"]["val"] == 0 and printed["rows"]["train"] > 0
    assert "one track: none in validation" in printed["empty"]["val"] and "label crops of more animals" in printed["empty"]["val"]
    assert f"vitcow: val is empty: {printed['empty']['val']}" in done.stderr.splitlines()


def test_the_instance_finds_nothing_stale_after_the_commands_ran_in_other_processes(farms):
    """The code versions the `vitcow` processes recorded are the ones this process computes
    (another hash seed, another process): Dagster's stale-status resolver, as the UI uses
    it, finds every materialized asset and partition up to date."""
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(farms["home"] / "dagster_home"))) as instance:
        resolver = get_stale_status_resolver(instance, defs.assets)
        checked = []
        for assets_def in defs.assets:
            partitions = assets_def.partitions_def.get_partition_keys(dynamic_partitions_store=instance) if assets_def.partitions_def else [None]
            for partition in partitions:
                event = instance.get_latest_materialization_event(assets_def.key) if partition is None else next(iter(
                    instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=assets_def.key, asset_partitions=[partition]), limit=1).records), None)
                if event is None:
                    continue
                tags = event.asset_materialization.tags
                assert tags["dagster/code_version"] == assets_def.code_versions_by_key[assets_def.key], (assets_def.key, partition)
                assert resolver.get_status(assets_def.key, partition) == StaleStatus.FRESH, (assets_def.key, partition, resolver.get_stale_causes(assets_def.key, partition))
                checked.append(assets_def.key.to_user_string())
        # and the resolver does see a changed code version: clips turns stale, raw_video does not
        changed = [a.map_asset_specs(lambda spec: spec.replace_attributes(code_version="changed")) if a.key == dg.AssetKey("clips") else a for a in defs.assets]
        partition = instance.get_dynamic_partitions("videos")[0]
        resolver = get_stale_status_resolver(instance, changed)
        assert resolver.get_status(dg.AssetKey("clips"), partition) == StaleStatus.STALE
        assert resolver.get_status(dg.AssetKey("raw_video"), partition) == StaleStatus.FRESH
    assert {"clips", "object_crops", "crop_catalog", "behaviour_labels", "behaviour_splits", "dataset_export"} <= set(checked)
    assert checked.count("object_crops") == len(FARMS)


def test_the_assets_write_what_build_dataset_writes_from_the_same_inputs(farms, tmp_path):
    """One pipeline: `vitcow dataset build` (the assets, step by step, through the staged
    tables) and `build_dataset` (the same steps in one call) give the same bytes."""
    home, out = farms["home"], farms["home"] / "datasets" / "with_subsets"
    flags = ["--test-farm", "FARM_C", "--val-fraction", "0.3", "--seed", "42", "--min-present", "0.2"]
    extra = {"VITCOW_DATASET_SUBSET_SIZES": "2,4", "VITCOW_DATASET_SUBSET_CAP": "1", "VITCOW_DATASET_LABEL_FOLDERS": "1"}
    done = run_cli(["dataset", "build", str(out), *flags], home, extra)
    assert done.returncode == 0, done.stderr[-2000:]
    root = StorageRoot(home)
    manifest = json.loads((out / "dataset.json").read_text())
    settings = DatasetSettings(test_farms=("FARM_C",), val_fraction=0.3, seed=42, min_presence=0.2, subset_sizes=(2, 4), subset_cap=True, label_folders=True)
    built = build_dataset(
        tmp_path, pq.read_table(root.catalog_table), read_label_snapshot(root), parse_taxonomy(default_taxonomy_text(), "default"), settings,
        catalog_path=str(root.catalog_table), catalog_sha256=manifest["catalog"]["sha256"], code_version=manifest["code_version"], trimmed=read_trimmed(root),
    )
    assert built.subsets is not None and (out / "subsets" / "subsets.parquet").is_file() and (out / "folders").is_dir()
    assert _tree(tmp_path) == _tree(out)


def test_a_rebuild_is_byte_identical_and_new_footage_keeps_the_frozen_test_split(farms):
    out, home = farms["out"], farms["home"]
    before = _tree(out)
    done = run_cli(["dataset", "build", str(out), "--test-farm", "FARM_C", "--val-fraction", "0.3", "--seed", "42", "--min-present", "0.2"], home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _tree(out) == before
    test_before = (out / "test.csv").read_bytes()
    kept = {r["crop_id"]: r["split"] for r in pq.read_table(out / "splits.parquet").to_pylist()}
    new = _video(farms["landing"], "FARM_A", 9, 60)  # more footage of a training farm
    assert run_cli(["run", str(new), "--backend", "motion", "--json", "--no-progress"], home).returncode == 0
    old = {c["crop_path"] for c in farms["crops"]}
    fresh = [c for c in _crops(home) if c["crop_path"] not in old]
    labels = home / "more.csv"
    _write_labels(labels, fresh, "", "")
    assert run_cli(["labels", "import", str(labels), "--annotator", "bob"], home).returncode == 0
    done = run_cli(["dataset", "build", str(out), "--test-farm", "FARM_C", "--val-fraction", "0.3", "--seed", "42", "--min-present", "0.2"], home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "test.csv").read_bytes() == test_before
    now = {r["crop_id"]: r["split"] for r in pq.read_table(out / "splits.parquet").to_pylist()}
    assert all(now[c] == s for c, s in kept.items())  # nothing moved
    assert len(now) > len(kept) and {now[c] for c in set(now) - set(kept)} <= {"train", "val"}


def test_an_import_with_a_bad_row_stores_nothing(farms, tmp_path):
    home = farms["home"]
    bad = tmp_path / "bad.csv"
    crop = farms["crops"][1]["crop_path"]
    bad.write_text(f"crop_path,label\n{crop},Standing\n{crop},Sleeping\n/nowhere/obj0001.mp4,Lying\n")
    export_before = tmp_path / "before.csv"
    assert run_cli(["labels", "export", str(export_before)], home).returncode == 0
    done = run_cli(["labels", "import", str(bad), "--annotator", "carol"], home)
    assert done.returncode == 2
    problems = [line for line in done.stderr.splitlines() if line.startswith("vitcow:")]
    assert any("row 3" in p and "Sleeping" in p for p in problems) and any("row 4" in p for p in problems)
    export_after = tmp_path / "after.csv"
    assert run_cli(["labels", "export", str(export_after)], home).returncode == 0
    assert export_after.read_bytes() == export_before.read_bytes()


def test_a_reviewers_decision_puts_a_conflicting_crop_into_the_dataset(farms, tmp_path):
    """bob disagrees with alice on one crop: the build leaves it out; a reviewer (token made
    by `vitcow labels token`) decides it with `vitcow labels decide`: the next build lists
    it with the decided class. Gold crops and `vitcow labels agreement` on the same labels."""
    home, crops = farms["home"], farms["crops"]
    crop = next(c for c in crops[5:] if c["farm"] != "FARM_C")
    alice = _alice(home)
    crop_id, mine = alice[crop["crop_path"]]
    other = "Walking" if mine != "Walking" else "Standing"
    (tmp_path / "bob.csv").write_text(f"crop_path,label\n{crop['crop_path']},{other}\n")
    assert run_cli(["labels", "import", str(tmp_path / "bob.csv"), "--annotator", "bob"], home).returncode == 0
    done = run_cli(["labels", "conflicts"], home)
    listed = json.loads(done.stdout)
    assert done.returncode == 0 and listed["open"] == 1 and listed["conflicts"][0]["crop_path"] == crop["crop_path"]
    assert listed["conflicts"][0]["labels"]["bob"]["label"] == other
    out = home / "datasets" / "decided"
    build = ["dataset", "build", str(out), "--test-farm", "FARM_C", "--val-fraction", "0.3", "--seed", "42", "--min-present", "0.2"]
    assert run_cli(build, home).returncode == 0
    assert crop["crop_path"] not in {p for name in ("train.csv", "val.csv", "test.csv") for p, _ in _listed(out / name)}

    made = run_cli(["labels", "token", "rev", "--role", "reviewer"], home)
    lines = made.stdout.strip().splitlines()
    assert made.returncode == 0 and len(lines) == 2 and lines[-1].startswith("vct_") and lines[-1] not in lines[0]
    assert lines[-1].encode() not in b"".join(p.read_bytes() for p in (home / "labels").glob("labels.db*"))
    refused = run_cli(["labels", "decide", crop_id, "Feeding", "--reviewer", "alice"], home)
    assert refused.returncode == 2 and "alice is not a reviewer" in refused.stderr
    assert run_cli(["labels", "decide", crop_id, "Feeding", "--reviewer", "rev"], home).returncode == 0
    assert run_cli(build, home).returncode == 0
    classes = (out / "class_mapping.txt").read_text().splitlines()
    listed = {p: label for name in ("train.csv", "val.csv", "test.csv") for p, label in _listed(out / name)}
    assert listed[crop["crop_path"]] == classes.index("Feeding")
    report = json.loads((out / "dataset.json").read_text())["report"]
    assert report["labels"]["decided"] == 1 and report["labels"]["conflicts"] == 0
    assert {r["annotator"]: r["decisions"] for r in report["stats"]["per_annotator"]}["rev"] == 1

    (right, right_label), (wrong, wrong_label) = alice[crops[6]["crop_path"]], alice[crops[7]["crop_path"]]
    other_label = "Lying" if wrong_label != "Lying" else "Standing"
    (tmp_path / "gold.csv").write_text(f"crop_id,label\n{right},{right_label}\n{wrong},{other_label}\n")
    assert run_cli(["labels", "gold", "import", str(tmp_path / "gold.csv")], home).returncode == 0
    agreement = json.loads(run_cli(["labels", "agreement"], home).stdout)
    gold = {g["annotator"]: g for g in agreement["gold"]}
    assert (gold["alice"]["items"], gold["alice"]["correct"], gold["alice"]["accuracy"]) == (2, 1, 0.5)
    assert [(p["annotator_a"], p["annotator_b"], p["crops"]) for p in agreement["pairs"]] == [("alice", "bob", 1)]
    assert agreement["fleiss"]["items"] == 1


def _alice(home: Path) -> dict[str, tuple[str, str]]:
    """crop_path -> (crop_id, alice's current label), read from the label database."""
    from vitcow_assets.labelling.store import LabelStore, default_url

    catalog = pq.read_table(home / "catalog" / "crops.parquet").select(["crop_id", "crop_path"]).to_pylist()
    with LabelStore(default_url(home)) as store:
        labels = {r["crop_id"]: r["label"] for r in store.current_labels("alice").to_pylist()}
    return {c["crop_path"]: (c["crop_id"], labels.get(c["crop_id"])) for c in catalog}
