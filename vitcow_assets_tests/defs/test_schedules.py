"""The nightly catch-up schedule: register what the sensor missed, request every partition
whose crops are missing (or whose footage changed), skip when all is done.

``nightly_catchup.evaluate_tick`` needs the code location (``repository_def``) to resolve
partitioned run requests; ``evaluate`` below uses it and returns the ScheduleExecutionData
(``run_requests``, ``skip_message``) the daemon would get. Unlike a sensor's add requests,
the schedule adds new partitions to the instance itself.
"""

import datetime as dt
import os
import random
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)

from vitcow_assets.definitions import defs
from vitcow_assets.defs.metadata import SOURCE_SHA256
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.schedules import nightly_catchup
from vitcow_assets.defs.sensors import Requests
from vitcow_assets.footage.intake import Arrival, register_local
from vitcow_assets.footage.listing import local_file
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.footage.registry import Registry
from vitcow_assets.footage.layout import partition_key_for
from vitcow_assets_tests.helpers import landed_video

WHEN = dt.datetime(2024, 1, 2, 2, 0, tzinfo=dt.timezone.utc)
REPOSITORY = defs.get_repository_def()


class Catchup:
    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance) -> None:
        self.dir = tmp_path / "landing"
        self.dir.mkdir()
        self.instance = instance
        self.storage = VitcowStorage(home=str(tmp_path / "home"), landing_sources=str(self.dir), settle_seconds=5)

    def evaluate(self, when: dt.datetime = WHEN):
        with dg.build_schedule_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            repository_def=REPOSITORY,
            resources={"storage": self.storage},
            scheduled_execution_time=when,
        ) as ctx:
            return nightly_catchup.evaluate_tick(ctx)

    def requested(self, when: dt.datetime = WHEN) -> list[str]:
        return sorted(r.partition_key for r in self.evaluate(when).run_requests)

    def partitions(self) -> list[str]:
        return self.instance.get_dynamic_partitions("videos")

    def add_partitions(self, *keys: str) -> None:
        self.instance.add_dynamic_partitions("videos", list(keys))

    def crops_done(self, key: str) -> None:
        """Record crops made from the bytes registered now, as the object_crops asset does."""
        registration = self.registry().get(key)
        metadata = {SOURCE_SHA256: registration.sha256} if registration else {}
        self.instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key="object_crops", partition=key, metadata=metadata)
        )

    def run(self, key: str, status: dg.DagsterRunStatus, job_name: str = "process_video", tags: dict | None = None) -> str:
        origin = RemoteJobOrigin(
            repository_origin=RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("vitcow_assets"), "__repository__"),
            job_name=job_name,
        )  # queued runs must say where their code lives
        run_id = str(uuid.uuid4())
        self.instance.add_run(
            dg.DagsterRun(
                job_name=job_name,
                run_id=run_id,
                status=status,
                tags={"dagster/partition": key, **(tags or {})},
                remote_job_origin=origin,
            )
        )
        return run_id

    def registry(self) -> Registry:
        return Registry(self.storage.root())


@pytest.fixture()
def catchup(tmp_path):
    with dg.instance_for_test() as instance:
        yield Catchup(tmp_path, instance)


video = landed_video


def test_schedule_is_on_by_default_on_the_video_job():
    # its cron and time zone (from the environment) are tested in a fresh process: test_defs
    assert nightly_catchup.job_name == "process_video"
    assert nightly_catchup.default_status == dg.DefaultScheduleStatus.RUNNING


def test_settled_file_the_sensor_never_saw_is_registered_added_and_requested(catchup):
    path = video(catchup.dir / "Night Cam.mp4")
    key = partition_key_for(path.name)

    data = catchup.evaluate()
    assert data.skip_message is None
    assert len(data.run_requests) == 1
    (run,) = data.run_requests
    assert run.partition_key == key
    assert run.tags["dagster/partition"] == key
    assert run.run_key == f"catchup:20240102:{key}"
    assert catchup.partitions() == [key]  # added to the instance by the schedule itself
    registration = catchup.registry().get(key)
    assert registration is not None and registration.sha256 == sha256_file(path)


def test_direct_invocation_returns_the_same_requests(catchup):
    path = video(catchup.dir / "cam.mp4")
    with dg.build_schedule_context(instance=catchup.instance, resources={"storage": catchup.storage}, scheduled_execution_time=WHEN) as ctx:
        result = nightly_catchup(ctx)
    assert [r.partition_key for r in result] == [partition_key_for(path.name)]
    assert catchup.partitions() == ["cam"]


def test_recent_landed_file_is_left_for_later(catchup):
    video(catchup.dir / "copying.mp4", age_s=None)  # mtime: now
    data = catchup.evaluate()
    assert data.run_requests == []
    assert data.skip_message == "every registered video has its crops"  # nothing registered: the file is still arriving
    assert catchup.registry().all() == []
    assert catchup.partitions() == []


def test_partition_with_materialized_crops_is_not_requested(catchup):
    catchup.add_partitions("a", "b", "c")
    catchup.crops_done("b")
    assert catchup.requested() == ["a", "c"]


def test_every_partition_done_skips(catchup):
    path = video(catchup.dir / "cam.mp4")
    assert catchup.requested() == ["cam"]
    catchup.crops_done("cam")
    catchup.add_partitions("other")
    catchup.crops_done("other")

    data = catchup.evaluate(WHEN + dt.timedelta(days=1))
    assert data.run_requests == []
    assert data.skip_message == "every registered video has its crops"
    assert catchup.registry().get("cam").sha256 == sha256_file(path)


def test_nothing_registered_skips(catchup):
    data = catchup.evaluate()
    assert data.run_requests == [] and data.skip_message == "every registered video has its crops"


def test_changed_footage_is_requested_even_with_crops(catchup):
    path = video(catchup.dir / "yard.mp4", frames=30, age_s=120)
    assert catchup.requested() == ["yard"]
    catchup.crops_done("yard")
    assert catchup.requested(WHEN + dt.timedelta(days=1)) == []

    video(path, frames=34, age_s=60)  # new bytes under the same name
    data = catchup.evaluate(WHEN + dt.timedelta(days=2))
    assert [r.partition_key for r in data.run_requests] == ["yard"]
    assert data.run_requests[0].run_key == "catchup:20240104:yard"
    assert catchup.registry().get("yard").sha256 == sha256_file(path)


def sensor_registers(catchup, path) -> Requests:
    """What the landing sensor does with a file that has arrived."""

    class _Log:
        def info(self, *_):
            pass

    requests = Requests(catchup.storage, catchup.instance, _Log())
    file = local_file(path)
    requests.add(Arrival(file, register_local(catchup.storage.root(), file)))
    return requests


def test_changed_footage_whose_run_failed_is_retried(catchup):
    """The sensor registered new bytes but their run failed: the old crops are stale."""
    path = video(catchup.dir / "pen.mp4", frames=30, age_s=120)
    assert catchup.requested() == ["pen"]
    catchup.crops_done("pen")

    class _Log:
        def info(self, *_):
            pass

    video(path, frames=34, age_s=60)
    requests = sensor_registers(catchup, path)
    assert requests.runs  # the sensor's run for the new bytes then failed: no new crops
    assert catchup.requested(WHEN + dt.timedelta(days=1)) == ["pen"]
    catchup.crops_done("pen")
    assert catchup.requested(WHEN + dt.timedelta(days=2)) == []


def test_file_the_sensor_already_registered_is_not_registered_twice(catchup):
    path = video(catchup.dir / "seen.mp4")

    class _Log:
        def info(self, *_):
            pass

    requests = sensor_registers(catchup, path)
    assert requests.runs and requests.partitions == ["seen"]
    catchup.add_partitions("seen")  # what the sensor daemon did with its add request
    catchup.crops_done("seen")      # and the run it requested finished
    assert catchup.requested() == []
    assert [r.key for r in catchup.registry().all()] == ["seen"]


def test_duplicate_bytes_under_a_new_name_are_not_a_new_partition(catchup):
    path = video(catchup.dir / "first.mp4")
    assert catchup.requested() == ["first"]
    catchup.crops_done("first")
    copy = catchup.dir / "second.mp4"
    copy.write_bytes(path.read_bytes())
    t = time.time() - 60
    os.utime(copy, (t, t))

    assert catchup.requested(WHEN + dt.timedelta(days=1)) == []
    assert catchup.partitions() == ["first"]


def test_partition_with_a_run_in_progress_is_not_requested(catchup):
    catchup.add_partitions("busy", "idle", "finished_run")
    catchup.run("busy", dg.DagsterRunStatus.STARTED)
    catchup.run("finished_run", dg.DagsterRunStatus.FAILURE)  # failed: crops still missing
    catchup.run("idle", dg.DagsterRunStatus.STARTED, job_name="some_other_job")
    assert catchup.requested() == ["finished_run", "idle"]


def test_a_killed_run_does_not_keep_its_partition_busy(catchup):
    """A run whose process was killed (a real process, exited) stays STARTED in the
    instance; the catch-up marks it failed and requests its partition again."""
    import subprocess
    import sys

    from vitcow_assets.defs.dead_runs import owner_tags

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    catchup.add_partitions("crashed", "running")
    crashed = catchup.run("crashed", dg.DagsterRunStatus.STARTED, tags={**owner_tags(), "vitcow/pid": str(gone.pid)})
    catchup.run("running", dg.DagsterRunStatus.STARTED, tags=owner_tags())  # this process: alive
    data = catchup.evaluate()
    assert sorted(r.partition_key for r in data.run_requests) == ["crashed"]
    assert catchup.instance.get_run_by_id(crashed).status == dg.DagsterRunStatus.FAILURE
    catchup.crops_done("crashed")
    assert catchup.evaluate().skip_message == "every registered video has its crops or a run in progress (running)"


def test_partition_with_a_queued_run_is_not_requested_again(catchup):
    """The instance the CLI writes limits concurrent runs, so runs wait QUEUED: a partition
    whose run is waiting is as busy as one whose run has started."""
    catchup.add_partitions("queued", "idle")
    catchup.run("queued", dg.DagsterRunStatus.QUEUED)
    assert catchup.requested() == ["idle"]


# -- back-pressure: the sensor's caps, oldest recording first -----------------------------


def farm_backlog(catchup: Catchup, count: int, seed: int = 0) -> list[str]:
    """``count`` registered partitions recorded a day apart in the farm layout, registered
    in a shuffled order; their keys, oldest recording first."""
    days = list(range(count))
    random.Random(seed).shuffle(days)
    registry = catchup.registry()
    for day in days:
        at = dt.datetime(2024, 1, 1, 8) + dt.timedelta(days=day)
        path = f"/farm/FARM_A/D01/{at:%Y%m%d%H%M}_D01.mp4"
        registry.register(path, f"{day:064x}", size=1)
    keys = [f"{dt.datetime(2024, 1, 1, 8) + dt.timedelta(days=d):%Y%m%d%H%M}_D01" for d in range(count)]
    catchup.add_partitions(*keys)
    return keys


def queue(catchup: Catchup, keys: list[str]) -> None:
    for key in keys:
        catchup.run(key, dg.DagsterRunStatus.QUEUED)


def observed(catchup: Catchup) -> dict:
    (event,) = catchup.instance.fetch_observations(dg.AssetKey("raw_video"), limit=1).records
    return {k: v.value for k, v in event.asset_observation.metadata.items()}


@pytest.fixture()
def no_landing_gap(monkeypatch):
    """The landing folder is empty in these tests: no second to wait between its two looks."""
    from vitcow_assets.defs import schedules

    monkeypatch.setattr(schedules, "LOOK_GAP_S", 0.0)


def test_a_backlog_larger_than_the_cap_is_requested_oldest_first_within_the_queue_limits(catchup, no_landing_gap):
    catchup.storage = VitcowStorage(**{**catchup.storage.model_dump(), "max_runs_per_tick": 5, "max_pending_runs": 12})
    queue_config = catchup.instance.get_concurrency_config().run_queue_config
    concurrent = queue_config.max_concurrent_runs if queue_config else -1
    assert concurrent <= 12  # the limit below is the setting's
    oldest = farm_backlog(catchup, 20)

    first = catchup.evaluate()
    assert [r.partition_key for r in first.run_requests] == oldest[:5]  # the cap, oldest recording first
    assert first.run_requests[0].tags["vitcow/farm"] == "FARM_A"
    assert observed(catchup) == {"videos_without_crops": 20, "videos_requested": 5}
    queue(catchup, oldest[:5])

    second = catchup.evaluate(WHEN + dt.timedelta(days=1))
    assert [r.partition_key for r in second.run_requests] == oldest[5:10]  # 5 queued: room for 7, the cap is 5
    queue(catchup, oldest[5:10])
    third = catchup.evaluate(WHEN + dt.timedelta(days=2))
    assert [r.partition_key for r in third.run_requests] == oldest[10:12]  # 10 queued: room for 2
    queue(catchup, oldest[10:12])

    full = catchup.evaluate(WHEN + dt.timedelta(days=3))
    assert full.run_requests == []
    allowed = f", {concurrent} at a time" if concurrent >= 0 else ""
    assert full.skip_message == f"8 video(s) wait for their crops: the run queue is full (12 video run(s) queued or in progress (limit 12{allowed}))"
    assert observed(catchup) == {"videos_without_crops": 8, "videos_requested": 0}

    for run in catchup.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED])):
        catchup.instance.delete_run(run.run_id)  # the queue drained, their crops made
        catchup.crops_done(run.tags["dagster/partition"])
    after = catchup.evaluate(WHEN + dt.timedelta(days=4))
    assert [r.partition_key for r in after.run_requests] == oldest[12:17]


class CountedReads:
    """Counts the crops materializations the catch-up reads back from the event log."""

    def __init__(self, monkeypatch) -> None:
        self.events = 0
        fetch = dg.DagsterInstance.fetch_materializations

        def counted(instance, records_filter, *args, **kwargs):
            result = fetch(instance, records_filter, *args, **kwargs)
            self.events += len(result.records)
            return result

        monkeypatch.setattr(dg.DagsterInstance, "fetch_materializations", counted)  # the context's instance is made from its ref


def test_each_crops_materialization_is_read_once(catchup, monkeypatch, no_landing_gap):
    keys = farm_backlog(catchup, 6)
    for key in keys:
        catchup.crops_done(key)
    reads = CountedReads(monkeypatch)
    assert catchup.evaluate().skip_message == "every registered video has its crops"
    assert reads.events == 6
    assert catchup.evaluate(WHEN + dt.timedelta(days=1)).run_requests == []
    assert reads.events == 6  # remembered (footage.crop_origins): nothing read again

    catchup.registry().register(f"/farm/FARM_A/D01/{keys[2]}.mp4", "f" * 64, size=2)  # new bytes, their run failed
    assert catchup.requested(WHEN + dt.timedelta(days=2)) == [keys[2]]
    catchup.crops_done(keys[2])
    assert catchup.requested(WHEN + dt.timedelta(days=3)) == []
    assert reads.events == 7  # only the new materialization


def test_crops_not_read_for_lack_of_time_are_read_by_the_next_evaluation(catchup, monkeypatch, no_landing_gap):
    from vitcow_assets.defs import schedules

    keys = farm_backlog(catchup, 4)
    for key in keys:
        catchup.crops_done(key)
    catchup.registry().register(f"/farm/FARM_A/D01/{keys[1]}.mp4", "e" * 64, size=2)  # stale crops
    monkeypatch.setattr(schedules, "READ_BUDGET_S", -1.0)
    short = catchup.evaluate()
    assert short.run_requests == []  # nothing is known of their crops yet: nothing asked, nothing assumed
    assert short.skip_message == "every registered video has its crops; the crops of 4 video(s) not read yet (the next evaluation goes on)"
    monkeypatch.setattr(schedules, "READ_BUDGET_S", 20.0)
    assert catchup.requested(WHEN + dt.timedelta(days=1)) == [keys[1]]
