"""The Celery executor with two real workers on a real Redis broker (and the Postgres instance
they share): ``object_masks`` runs on the worker of the ``gpu`` queue, every other step on the
worker of the default queue."""

import json
import os
import subprocess

import dagster as dg
import psutil

from vitcow_assets.defs.execution import GPU_QUEUE
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.footage.registry import Registry
from vitcow_assets.footage.layout import StorageRoot
from vitcow_testbed.deploy_helpers import BIN, ROOT, background, deploy_env, init_postgres_instance

DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue


def _worker(name: str, queue: str, env: dict, log):
    args = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(ROOT / "deploy" / "celery.yaml")]
    return background([*args, "-q", queue, "-n", name, "--", "--concurrency", "1"], env, log)


def _family(proc) -> set[int]:
    return {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))}


def test_celery_runs_object_masks_on_the_gpu_worker_and_the_rest_on_the_default_one(tmp_path, synthetic_video, postgres_server, redis_server):
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    env = deploy_env(
        home,
        dagster_home,
        VITCOW_EXECUTOR="celery",
        VITCOW_CELERY_BROKER=redis_server,
        VITCOW_CELERY_BACKEND=redis_server,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    instance = init_postgres_instance(env, postgres_server.create_database("celery"))
    key = Registry(StorageRoot(home)).register(synthetic_video, sha256_file(synthetic_video)).registration.key
    instance.add_dynamic_partitions("videos", [key])

    with (
        _worker("gpu-worker", GPU_QUEUE, {**env, "CUDA_VISIBLE_DEVICES": "0"}, tmp_path / "gpu.log") as gpu,
        _worker("cpu-worker", DEFAULT_QUEUE, env, tmp_path / "cpu.log") as cpu,
    ):
        done = subprocess.run(
            [str(BIN / "dagster"), "job", "execute", "-m", "vitcow_assets.definitions", "-j", "process_video", "--tags", json.dumps({"dagster/partition": key})],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=420,
        )
        gpu_pids, cpu_pids = _family(gpu), _family(cpu)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:] + (tmp_path / "gpu.log").read_text()[-2000:]

    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    worker_of, pid_of = {}, {}
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in (event.engine_event_data.metadata or {}):
            worker_of[event.step_key] = event.engine_event_data.metadata["Celery worker"].value
        if event.event_type == dg.DagsterEventType.STEP_START:
            pid_of[event.step_key] = event.pid
    assert set(worker_of) == set(pid_of) and "object_masks" in worker_of and len(worker_of) >= 6
    for step, worker in worker_of.items():
        if step == "object_masks":
            assert worker.startswith("gpu-worker@") and pid_of[step] in gpu_pids, (step, worker)
        else:
            assert worker.startswith("cpu-worker@") and pid_of[step] in cpu_pids, (step, worker)
    assert (home / "videos" / key / "crops" / "crops.parquet").is_file()
