"""A backlog of landed videos through the real daemon on a real PostgreSQL instance written by
``vitcow init --postgres``: every run finishes and no two ``object_masks`` steps ever overlap.

To make the GPU pool decide (not the timing of a loaded machine), another run holds the
``gpu`` slot while the backlog arrives; once two runs are waiting for it, it lets go. Both
then want the GPU at the same moment, and the pool must run their steps one after another."""

import time
import uuid

import dagster as dg

from vitcow_testbed.deploy_helpers import BIN, background, deploy_env, init_postgres_instance, overlapping, step_intervals, wait_for_runs
from vitcow_testbed.synthetic import write_video

VIDEOS = 4
FRAMES = 120
POOL = "gpu"


def test_backlog_through_the_daemon_on_postgres(tmp_path, postgres_server):
    url = postgres_server.create_database("backlog")
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    env = deploy_env(home, dagster_home, VITCOW_SETTLE_SECONDS="0")
    instance = init_postgres_instance(env, url)
    written = (dagster_home / "dagster.yaml").read_text()
    assert "env: DAGSTER_PG_PASSWORD" in written and "scheme: postgresql+psycopg2" in written
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator" and instance.run_monitoring_enabled

    # another run (outside the queue's count) is on the GPU
    storage = instance.event_log_storage
    holder = instance.add_run(dg.DagsterRun(job_name="gpu_holder", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.NOT_STARTED))
    storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.get_concurrency_info(POOL).slot_count == 1
    assert storage.claim_concurrency_slot(POOL, holder.run_id, "holder").is_claimed

    landing = home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for i in range(VIDEOS):
        write_video(landing / f"pen_{i}.mp4", frames=FRAMES, fps=10 + i)  # same work, other bytes

    log = tmp_path / "daemon.log"
    with background([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, log) as daemon:
        deadline = time.monotonic() + 240
        while len(storage.get_concurrency_info(POOL).pending_run_ids) < 2:
            assert time.monotonic() < deadline, f"two runs never waited for the GPU:\n{log.read_text()[-3000:]}"
            assert daemon.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        released = time.time()
        storage.free_concurrency_slot_for_step(holder.run_id, "holder")
        instance.report_run_canceled(holder)
        runs = wait_for_runs(instance, [f"pen_{i}" for i in range(VIDEOS)], timeout_s=360, proc=daemon, log=log)

    assert sorted(r.tags["dagster/partition"] for r in runs) == [f"pen_{i}" for i in range(VIDEOS)]  # one run each
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    masks = [iv for r in runs for iv in step_intervals(instance, r.run_id, "object_masks")]
    assert len(masks) == VIDEOS
    assert sum(start >= released for start, _ in masks) >= 2  # the waiting ones ran after the release ...
    assert overlapping(masks) == []  # ... one at a time
    for i in range(VIDEOS):
        assert (home / "videos" / f"pen_{i}" / "crops" / "crops.parquet").is_file()
