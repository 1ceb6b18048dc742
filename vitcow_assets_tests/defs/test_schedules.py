"""The nightly catch-up schedule: register what the sensor missed, request every partition
whose crops are missing (or whose footage changed), skip when all is done.

``nightly_catchup.evaluate_tick`` needs the code location (``repository_def``) to resolve
partitioned run requests; ``evaluate`` below uses it and returns the ScheduleExecutionData
(``run_requests``, ``skip_message``) the daemon would get. Unlike a sensor's add requests,
the schedule adds new partitions to the instance itself.
"""

import datetime as dt
import os
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
