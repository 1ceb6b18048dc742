"""A backlog of landed videos through the real daemon on a real PostgreSQL instance written by
``vitcow init --postgres``: every run finishes and no two ``object_masks`` steps ever overlap
(the ``gpu`` pool), although runs do."""

import dagster as dg

from vitcow_assets_tests.deploy_helpers import BIN, background, deploy_env, init_postgres_instance, overlapping, step_intervals, wait_for_runs
from vitcow_assets_tests.synthetic import write_video

VIDEOS = 4


def test_backlog_through_the_daemon_on_postgres(tmp_path, postgres_server):
    url = postgres_server.create_database("backlog")
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    env = deploy_env(home, dagster_home, VITCOW_SETTLE_SECONDS="0")
    instance = init_postgres_instance(env, url)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    written = (dagster_home / "dagster.yaml").read_text()
    assert "env: DAGSTER_PG_PASSWORD" in written and "scheme: postgresql+psycopg2" in written
    landing = home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for i in range(VIDEOS):
        write_video(landing / f"pen_{i}.mp4", frames=60 + 20 * i)

    log = tmp_path / "daemon.log"
    with background([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, log) as daemon:
        runs = wait_for_runs(instance, VIDEOS, timeout_s=360, proc=daemon, log=log)

    assert sorted(r.tags["dagster/partition"] for r in runs) == [f"pen_{i}" for i in range(VIDEOS)]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    masks = [iv for r in runs for iv in step_intervals(instance, r.run_id, "object_masks")]
    assert len(masks) == VIDEOS
    assert overlapping(masks) == []
    run_spans = [(r.start_time, r.end_time) for r in (instance.get_run_record_by_id(r.run_id) for r in runs)]
    # the queue ran two at a time, so the pool (not the queue) kept the GPU steps apart
    assert overlapping(run_spans), "runs never overlapped: the test would not see a pool failure"
    for i in range(VIDEOS):
        assert (home / "videos" / f"pen_{i}" / "crops" / "crops.parquet").is_file()
