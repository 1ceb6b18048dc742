"""The landing sensor: settled videos become one partition and one run; nothing else does.

Notes on the harness:

* ``evaluate_tick`` resolves partitioned run requests against the job, which needs the code
  location (``definitions=defs``) and an ``instance_ref`` (for the dynamic-partitions loader).
* ``evaluate_tick`` does NOT apply ``dynamic_partitions_requests`` to the instance (the sensor
  daemon does that). Tests assert on the requests the sensor returns, and ``tick`` then applies
  them itself the way the daemon would, so that later ticks see the partitions.
"""

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from vitcow_assets.definitions import defs
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.metadata import SOURCE_SHA_TAG
from vitcow_assets.core.settle import WAITING
from vitcow_assets.defs.sensors import landing_sensor
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.footage.registry import Registry
from vitcow_assets.footage.layout import partition_key_for
from vitcow_assets_tests.helpers import age, landed_video
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, MovingBox

SETTLE_SECONDS = 5


class Landing:
    """A landing folder, a storage home, a test instance and the sensor's cursor between ticks."""

    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance) -> None:
        self.dir = tmp_path / "landing"
        self.dir.mkdir()
        self.home = tmp_path / "home"
        self.instance = instance
        self.cursor: str | None = None
        self.configure()

    def configure(self, **settings) -> None:
        """The storage resource with these settings (over the tests' own)."""
        values = {"home": str(self.home), "landing_sources": str(self.dir), "settle_seconds": SETTLE_SECONDS, **settings}
        self.storage = VitcowStorage(**values)

    def tick(self, cursor: str | None = ..., apply_partitions: bool = True) -> dg.SensorResult:
        """One sensor evaluation, from ``cursor`` (default: the previous tick's)."""
        cursor = self.cursor if cursor is ... else cursor
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            definitions=defs,
            cursor=cursor,
            resources={"storage": self.storage},
        ) as ctx:
            result = landing_sensor.evaluate_tick(ctx)
        self.cursor = result.cursor
        if apply_partitions:  # what the sensor daemon does with the requests
            for request in result.dynamic_partitions_requests:
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    def ticks(self, n: int) -> tuple[list[dg.RunRequest], list[str]]:
        """``n`` ticks: every run requested and every partition key asked to be added."""
        runs, added = [], []
        for _ in range(n):
            result = self.tick()
            runs += result.run_requests
            added += added_keys(result)
        return runs, added

    def process(self, path: Path) -> dg.RunRequest:
        """Tick until ``path`` is requested (at most 3 ticks); its one run request."""
        for _ in range(3):
            runs = self.tick().run_requests
            if runs:
                assert len(runs) == 1, runs
                assert runs[0].tags[SOURCE_SHA_TAG] == sha256_file(path)
                return runs[0]
        raise AssertionError(f"{path} was never requested")

    def partitions(self) -> list[str]:
        return self.instance.get_dynamic_partitions("videos")

    def registry(self) -> Registry:
        return Registry(self.storage.root())


@pytest.fixture()
def landing(tmp_path):
    with dg.instance_for_test() as instance:
        yield Landing(tmp_path, instance)


def video(path: Path, frames: int = 30, objects=DEFAULT_OBJECTS) -> Path:
    """A synthetic video at `path`, just written (not settled)."""
    return landed_video(path, frames, objects, age_s=None)


def added_keys(result: dg.SensorResult) -> list[str]:
    keys = []
    for request in result.dynamic_partitions_requests:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        assert request.partitions_def_name == "videos"
        keys += list(request.partition_keys)
    return keys


def state_of(landing: "Landing") -> dict:
    """What the intake state remembers (``footage.intake_state``), in the shape of the old
    settle cursor: ``seen`` (files still arriving: their last signature), ``done`` (files
    taken: the signature they were taken with)."""
    with landing.storage.intake_state() as state:
        rows = state.rows()
    return {
        "seen": {r.uri: r.mark.seen for r in rows if r.mark.state == WAITING},
        "done": {r.uri: r.mark.taken for r in rows if r.mark.taken is not None},
    }


# -- 1. a new file --------------------------------------------------------------------------


def test_new_file_is_observed_on_the_first_tick_and_requested_on_the_second(landing):
    """The settle rule: a file is processed only when the previous tick saw the same
    (size, mtime_ns) and it is old enough -- an old mtime alone is not enough at first sight."""
    path = age(video(landing.dir / "Cow Pen 3.mp4"))
    key = partition_key_for(path.name)

    first = landing.tick()
    assert first.run_requests == []
    assert first.dynamic_partitions_requests == []
    assert str(path) in state_of(landing)["seen"]

    second = landing.tick()
    assert [r.partition_key for r in second.run_requests] == [key]
    assert added_keys(second) == [key]

    third = landing.tick()
    assert third.run_requests == [] and third.dynamic_partitions_requests == []


def test_new_file_is_requested_exactly_once_and_its_partition_added(landing):
    path = age(video(landing.dir / "Cow Pen 3.mp4"))
    key = partition_key_for(path.name)
    sha = sha256_file(path)

    runs, added = landing.ticks(2)
    assert len(runs) == 1
    (run,) = runs
    assert run.partition_key == key
    assert run.tags["dagster/partition"] == key
    assert run.tags[SOURCE_SHA_TAG] == sha
    assert run.run_key and key in run.run_key
    assert added == [key]
    assert landing.partitions() == [key]
    registration = landing.registry().get(key)
    assert registration is not None and registration.sha256 == sha and registration.source_path == str(path)

    for _ in range(2):
        later = landing.tick()
        assert later.run_requests == [] and later.dynamic_partitions_requests == []
        assert later.skip_message  # a skipped tick says why
    assert state_of(landing)["done"] == {str(path): [path.stat().st_size, path.stat().st_mtime_ns]}


def test_several_new_files_in_one_tick_each_get_a_run_and_one_add_request(landing):
    paths = [age(video(landing.dir / f"cam{i}.mp4", frames=30 + i)) for i in range(3)]
    keys = [partition_key_for(p.name) for p in paths]

    results = [landing.tick() for _ in range(2)]
    busy = [r for r in results if r.run_requests]
    assert len(busy) == 1  # all of them in the same tick
    (result,) = busy
    assert sorted(r.partition_key for r in result.run_requests) == sorted(keys)
    assert len(result.dynamic_partitions_requests) == 1
    assert sorted(added_keys(result)) == sorted(keys)
    assert len({r.run_key for r in result.run_requests}) == 3


# -- 2. a file still arriving ---------------------------------------------------------------


def test_growing_file_is_not_requested_until_it_stops_changing(landing, tmp_path):
    full = video(tmp_path / "full.mp4")
    data = full.read_bytes()
    path = landing.dir / "arriving.mp4"

    path.write_bytes(data[: len(data) // 2])  # half of it, written just now
    assert landing.tick().run_requests == []

    with path.open("ab") as handle:  # the rest arrives; now old enough, but it changed
        handle.write(data[len(data) // 2 :])
    age(path, 60)
    result = landing.tick()
    assert result.run_requests == []
    assert state_of(landing)["seen"] == {str(path): [path.stat().st_size, path.stat().st_mtime_ns]}

    age(path, 50)  # same size, another mtime: still changing
    assert landing.tick().run_requests == []

    result = landing.tick()  # unchanged since the previous tick and old: settled
    assert [r.partition_key for r in result.run_requests] == ["arriving"]
    assert result.run_requests[0].tags[SOURCE_SHA_TAG] == sha256_file(full)
    assert landing.tick().run_requests == []


def test_rewritten_file_waits_for_a_quiet_tick(landing):
    path = video(landing.dir / "rewrite.mp4")
    assert landing.tick().run_requests == []  # just written: too recent

    video(path, objects=(MovingBox(start=(5, 5), velocity=(1, 1), size=(10, 10), colour=(9, 9, 9)),))
    age(path, 40)
    assert landing.tick().run_requests == []  # changed since the previous look

    runs, _ = landing.ticks(2)
    assert len(runs) == 1 and runs[0].tags[SOURCE_SHA_TAG] == sha256_file(path)


# -- 3. a recent file -----------------------------------------------------------------------


def test_recent_file_is_not_processed_even_if_unchanged(landing):
    path = video(landing.dir / "fresh.mp4")  # mtime: now
    signature = [path.stat().st_size, path.stat().st_mtime_ns]

    for _ in range(3):
        result = landing.tick()
        assert result.run_requests == [] and result.dynamic_partitions_requests == []
        assert state_of(landing) == {"done": {}, "seen": {str(path): signature}}
    assert landing.registry().all() == []
    assert landing.partitions() == []

    age(path)  # once it is old enough (and looked the same twice), it goes
    runs, added = landing.ticks(2)
    assert [r.partition_key for r in runs] == ["fresh"]
    assert added == ["fresh"]


# -- 4. new bytes under a known path ---------------------------------------------------------


def test_changed_bytes_under_the_same_path_request_the_same_partition_again(landing):
    landing.configure(full_sweep_seconds=0)  # rewritten in place: seen by full sweeps (every tick here)
    path = age(video(landing.dir / "yard.mp4", frames=30), 120)
    key = partition_key_for(path.name)
    first = landing.process(path)
    assert landing.partitions() == [key]

    video(path, frames=35)  # new footage, same name
    age(path, 60)
    new_sha = sha256_file(path)
    assert new_sha != first.tags[SOURCE_SHA_TAG]

    runs, added = landing.ticks(2)
    assert len(runs) == 1
    (again,) = runs
    assert again.partition_key == key
    assert again.run_key != first.run_key
    assert again.tags[SOURCE_SHA_TAG] == new_sha
    assert added == []  # the partition exists already
    assert landing.partitions() == [key]
    assert landing.registry().get(key).sha256 == new_sha
    assert landing.ticks(2)[0] == []


def test_bytes_restored_after_a_change_get_a_run_key_not_used_before(landing):
    """A -> B -> A under one path: the third version is new footage for the partition (its
    crops are B's), so its run key must differ from A's first run key, or the sensor daemon
    drops the request as already launched."""
    landing.configure(full_sweep_seconds=0)  # rewritten in place: seen by full sweeps (every tick here)
    path = age(video(landing.dir / "yard.mp4", frames=30), 120)
    original = path.read_bytes()
    first = landing.process(path)

    video(path, frames=35)
    age(path, 90)
    second = landing.process(path)

    path.write_bytes(original)
    age(path, 60)
    third = landing.process(path)

    assert third.partition_key == first.partition_key == second.partition_key
    assert third.tags[SOURCE_SHA_TAG] == first.tags[SOURCE_SHA_TAG]
    assert len({first.run_key, second.run_key, third.run_key}) == 3


# -- 5. the same bytes under another name ----------------------------------------------------


def test_copy_of_processed_bytes_under_a_new_name_is_recognised(landing):
    path = age(video(landing.dir / "original.mp4"), 120)
    key = partition_key_for(path.name)
    landing.process(path)

    copy = landing.dir / "sub" / "copy of original.mp4"
    copy.parent.mkdir()
    shutil.copy2(path, copy)  # same bytes, old mtime
    assert partition_key_for(copy.name) != key

    for _ in range(3):
        result = landing.tick()
        assert result.run_requests == []
        assert result.dynamic_partitions_requests == []
    assert landing.partitions() == [key]
    assert [r.key for r in landing.registry().all()] == [key]
    assert landing.registry().get(key).source_path == str(path)
    assert str(copy) in state_of(landing)["done"]  # settled, not looked at again


def test_same_name_in_another_folder_with_other_bytes_gets_its_own_partition(landing):
    first = age(video(landing.dir / "cam.mp4", frames=30))
    second = age(video(landing.dir / "barn" / "cam.mp4", frames=32))

    runs, added = landing.ticks(2)
    keys = sorted(r.partition_key for r in runs)
    assert len(keys) == 2 and len(set(keys)) == 2
    assert "cam" in keys
    other = next(k for k in keys if k != "cam")
    assert other.startswith("cam-")
    assert sorted(added) == keys
    by_path = {r.source_path: r.sha256 for r in landing.registry().all()}
    assert by_path == {str(first): sha256_file(first), str(second): sha256_file(second)}


# -- 6. what is not a landed video -----------------------------------------------------------


def test_non_video_hidden_empty_and_outside_files_are_ignored(landing, tmp_path):
    age(video(landing.dir / "notes.xlsx"))  # video bytes, wrong extension
    age(video(landing.dir / ".hidden.mp4"))  # in-progress copy (rsync style)
    age(video(landing.dir / ".partial" / "inside.mp4"))  # hidden folder
    age(video(landing.dir / "readme.txt"))
    empty = landing.dir / "empty.mp4"
    empty.touch()
    age(empty)
    outside = age(video(tmp_path / "elsewhere" / "outside.mp4", frames=40))
    (landing.dir / "link.mp4").symlink_to(outside)  # a link leading out of the folder
    kept = age(video(landing.dir / "KEEP.MP4", frames=33))  # upper-case extension is a video

    runs, added = landing.ticks(3)
    assert [r.partition_key for r in runs] == ["KEEP"]
    assert added == ["KEEP"]
    landing.tick()
    state = state_of(landing)
    assert state == {"done": {str(kept): [kept.stat().st_size, kept.stat().st_mtime_ns]}, "seen": {}}
    assert [r.source_path for r in landing.registry().all()] == [str(kept)]


def test_missing_landing_folder_is_an_empty_tick(landing):
    landing.dir.rmdir()
    result = landing.tick()
    assert result.run_requests == [] and state_of(landing) == {"done": {}, "seen": {}}


# -- 7. the cursor ---------------------------------------------------------------------------


def test_cursor_from_an_earlier_tick_keeps_processed_files_processed(landing):
    path = age(video(landing.dir / "kept.mp4"))
    landing.process(path)
    saved = landing.cursor
    assert str(path) in state_of(landing)["done"]

    # a fresh evaluation (new context, as after a restart) from the saved cursor
    result = landing.tick(cursor=saved)
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert json.loads(result.cursor)["owner"] == json.loads(saved)["owner"]

    # with the cursor lost, the intake state knows the file: no second run
    landing.cursor = None
    runs, added = landing.ticks(2)
    assert runs == [] and added == []

    # with the intake state lost too, the registry knows these bytes: no second run
    shutil.rmtree(landing.home / "intake")
    landing.cursor = None
    runs, added = landing.ticks(2)
    assert runs == [] and added == []
    assert str(path) in state_of(landing)["done"]


def test_cursor_forgets_files_that_left_the_landing_folder(landing):
    path = age(video(landing.dir / "gone.mp4"))
    other = age(video(landing.dir / "stays.mp4", frames=31))
    landing.ticks(3)
    assert set(state_of(landing)["done"]) == {str(path), str(other)}

    path.unlink()
    landing.tick()
    assert set(state_of(landing)["done"]) == {str(other)}


def test_an_edited_prompt_file_reruns_only_its_video_from_the_prompts_on(landing):
    landing.configure(full_sweep_seconds=0)  # rewritten in place: seen by full sweeps (every tick here)
    barn = age(video(landing.dir / "barn.mp4"))
    yard = age(video(landing.dir / "yard.mp4", frames=34))
    prompts = landing.dir / "barn.prompts.yaml"
    prompts.write_text("prompts:\n  - text: cow\n")
    age(prompts)
    runs, _ = landing.ticks(3)
    assert sorted(r.partition_key for r in runs) == ["barn", "yard"]  # landing together: one run each
    assert all(r.asset_selection is None for r in runs)

    prompts.write_text("prompts:\n  - text: cow\n  - text: calf\n")
    age(prompts, 30)
    runs, _ = landing.ticks(3)
    assert len(runs) == 1
    (run,) = runs
    assert run.partition_key == "barn"
    assert {k.to_user_string() for k in run.asset_selection} == {"prompts", "object_masks", "object_crops", "previews"}
    assert landing.ticks(2)[0] == []  # once only
    assert yard.exists() and barn.exists()


def test_only_ticks_where_something_changed_say_why_they_skipped(landing):
    """A quiet landing folder reports nothing of its own tick after tick (Dagster records its
    generic empty-tick line); a new arrival is reported once."""

    def said():
        message = landing.tick().skip_message or ""
        return message if "arriving" in message else None

    assert said() is None  # empty folder
    video(landing.dir / "arriving.mp4")  # just written: not settled
    assert said() == "1 file(s) still arriving"
    assert said() is None  # the same file still arriving: nothing new to say
    video(landing.dir / "second.mp4")
    assert said() == "2 file(s) still arriving"


# -- odd entries never stop a tick ----------------------------------------------------------


def test_symlink_loops_in_the_landing_folder_are_skipped_and_the_rest_processed(landing):
    (landing.dir / "self.mp4").symlink_to("self.mp4")  # a link to itself
    (landing.dir / "a.mp4").symlink_to("b.mp4")  # two links to each other
    (landing.dir / "b.mp4").symlink_to("a.mp4")
    (landing.dir / "cam.prompts.yaml").symlink_to("cam.prompts.yaml")
    sub = landing.dir / "sub"
    sub.mkdir()
    (sub / "up").symlink_to("..")  # folder loops (links to folders are not followed)
    (sub / "again").symlink_to("../sub")
    (landing.dir / "dangling.mp4").symlink_to("nowhere.mp4")
    kept = age(video(sub / "cam.mp4", frames=33))
    runs, added = landing.ticks(3)
    assert [r.partition_key for r in runs] == ["cam"] and added == ["cam"]
    assert [r.source_path for r in landing.registry().all()] == [str(kept)]


def _walk(folder: Path) -> list[str]:
    """Every video file the landing sensor's folder lister (``footage.folders``) finds."""
    from vitcow_assets.footage.folders import LocalFolders
    from vitcow_assets.remote.locations import Location

    lister, found, queue = LocalFolders(Location.parse(str(folder)), None), [], [str(folder)]
    while queue:
        try:
            listing = lister.list_folder(queue.pop())
        except OSError:
            continue
        found += [f.uri for f in listing.videos]
        queue += list(listing.folders)
    return sorted(found)


def _scans(folder: Path) -> list[list[str]]:
    from vitcow_assets.footage.listing import list_local

    return [[f.uri for f in list_local(folder)], _walk(folder)]


def _scan_unprivileged(folder: Path) -> list[list[str]]:
    """``list_local`` and the sensor's folder lister by a process that may not read
    everything: as root (who may), a forked child that drops to user ``nobody`` first."""
    if os.geteuid() != 0:
        return _scans(folder)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, scan, report, exit without cleanup
        try:
            os.setgid(65534)
            os.setuid(65534)
            out = json.dumps(_scans(folder))
        except BaseException as exc:  # reported to the parent, which fails the test
            out = json.dumps({"error": repr(exc)})
        os.write(write_end, out.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert isinstance(result, list), result
    return result


def test_unreadable_files_and_folders_are_skipped_by_the_scan():
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="vitcow-landing-"))
    try:
        top.chmod(0o755)
        locked = top / "locked"
        age(video(locked / "inside.mp4"))
        locked.chmod(0o000)  # a folder no one but root may list
        secret = age(video(top / "secret.mp4"))
        secret.chmod(0o000)  # a file no one but root may read: hashing it would fail
        good = age(video(top / "good.mp4"))
        good.chmod(0o644)
        assert _scan_unprivileged(top) == [[str(good)], [str(good)]]
    finally:
        locked.chmod(0o755)
        shutil.rmtree(top)
