"""``vitcow init --postgres``'s dagster.yaml, the executor chosen by ``VITCOW_EXECUTOR``, the GPU step's tags, and where the model is loaded."""

import json
import os
import subprocess
import sys

import dagster as dg
from dagster._core.events import DagsterEventType
import pytest
import yaml

from vitcow_assets.cli.instance import INSTANCE_YAML
from vitcow_assets.defs.execution import GPU_OP_TAGS, executor_from_env
from vitcow_assets.cli.instance import InstanceConfigError, postgres_instance_yaml


def test_postgres_instance_has_env_password_psycopg2_scheme_queue_pool_and_monitoring():
    config = yaml.safe_load(postgres_instance_yaml(INSTANCE_YAML, "postgresql://vit@db.internal:6543/farm?sslmode=require", gpus=3))
    db = config["storage"]["postgres"]["postgres_db"]
    assert db == {
        "username": "vit",
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": "db.internal",
        "port": 6543,
        "db_name": "farm",
        "scheme": "postgresql+psycopg2",
        "params": {"sslmode": "require"},
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] == 3
    assert config["run_monitoring"]["enabled"] is True
    assert config["telemetry"] == {"enabled": False}  # the local file's settings are kept


@pytest.mark.parametrize(
    "url, message",
    [
        ("postgresql://vit:secret@db/farm", "DAGSTER_PG_PASSWORD"),
        ("mysql://vit@db/farm", "postgresql://USER@HOST"),
        ("postgresql://db/farm", "a user and a database"),
        ("postgresql://vit@db/", "a user and a database"),
    ],
)
def test_bad_postgres_urls_fail_in_one_line(url, message):
    with pytest.raises(InstanceConfigError, match=message):
        postgres_instance_yaml(INSTANCE_YAML, url)


def test_init_gives_the_local_instance_one_gpu_pool_slot_per_gpu(tmp_path):
    env = {"VITCOW_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh"), "PATH": "/usr/bin:/bin"}
    init = [sys.executable, "-m", "vitcow_assets.cli", "init", "--gpus", "4"]
    done = subprocess.run(init, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "dh" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 4 and "storage" not in config
    again = subprocess.run([*init[:-1], "2"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "pass --force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    with dg.DagsterInstance.from_config(str(tmp_path / "dh")) as instance:  # Dagster reads the file as written
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4


def test_init_refuses_a_url_with_a_password_and_never_writes_it(tmp_path):
    env = {"VITCOW_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "vitcow_assets.cli", "init", "--postgres", "postgresql://vit:hunter2@db/farm"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "DAGSTER_PG_PASSWORD" in done.stderr
    assert not (tmp_path / "dh" / "dagster.yaml").exists() or "hunter2" not in (tmp_path / "dh" / "dagster.yaml").read_text()


@dg.asset
def first_step() -> None:
    pass


@dg.asset(deps=[first_step])
def second_step() -> None:
    pass


def pid_job() -> dg.JobDefinition:
    """Two steps under the executor ``$VITCOW_EXECUTOR`` names (for ``dg.reconstructable``)."""
    job = dg.define_asset_job("pids", selection=[first_step, second_step], executor_def=executor_from_env())
    return dg.Definitions(assets=[first_step, second_step], jobs=[job]).resolve_job_def("pids")


def _step_and_run_pids() -> dict:
    """Run ``pid_job`` in this process (as a run worker does); the pids of its steps and run."""
    with dg.instance_for_test() as instance:
        with dg.execute_job(dg.reconstructable(pid_job), instance) as result:
            assert result.success
            events = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event]
    return {
        "steps": sorted({e.pid for e in events if e.event_type == DagsterEventType.STEP_START}),
        "run": sorted({e.pid for e in events if e.event_type == DagsterEventType.RUN_START}),
    }


@pytest.mark.parametrize("name", ["in_process", "multiprocess"])
def test_the_executor_the_variable_names_decides_where_steps_run(name):
    """in_process: every step in the run's own process; multiprocess: a process per step.
    Each run in a fresh interpreter (Dagster caches reconstructed jobs per process)."""
    code = "import json; from vitcow_assets_tests.defs.test_execution import _step_and_run_pids as f; print(json.dumps(f()))"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "VITCOW_EXECUTOR": name}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    if name == "in_process":
        assert pids["steps"] == pids["run"] and len(pids["run"]) == 1
    else:
        assert len(pids["steps"]) == 2 and not set(pids["steps"]) & set(pids["run"])


def test_celery_executor_reads_its_broker_from_the_environment_when_a_run_starts(monkeypatch):
    """The executor holds a reference to the variable (a password in the URL is never copied
    into the code location's definitions): the value the run sees is the one set then."""
    monkeypatch.setenv("VITCOW_CELERY_BROKER", "redis://:first@broker.internal:6379/0")
    executor = executor_from_env("celery")
    monkeypatch.setenv("VITCOW_CELERY_BROKER", "redis://:second@broker.internal:6379/0")
    assert executor.config_schema.resolve_config({}).value["config"]["broker"] == "redis://:second@broker.internal:6379/0"
    monkeypatch.delenv("VITCOW_CELERY_BROKER")
    assert executor_from_env("celery").config_schema.resolve_config({}).value["config"]["broker"] == "redis://127.0.0.1:6379/0"


def test_default_executor_is_in_process_and_unknown_ones_fail_in_one_line(monkeypatch):
    monkeypatch.delenv("VITCOW_EXECUTOR", raising=False)
    assert executor_from_env() is dg.in_process_executor
    with pytest.raises(ValueError, match="expected one of in_process, multiprocess, celery, k8s"):
        executor_from_env("threads")


def test_object_masks_carries_the_gpu_tags_and_no_other_step_does():
    from vitcow_assets.definitions import defs

    job = defs.resolve_job_def("process_video")
    tags = {node.name: node.tags for node in job.graph.nodes}
    assert tags["object_masks"]["dagster-celery/queue"] == "gpu"
    assert '"nvidia.com/gpu": 1' in tags["object_masks"]["dagster-k8s/config"]
    assert all("dagster-celery/queue" not in t for name, t in tags.items() if name != "object_masks")
    assert GPU_OP_TAGS["dagster-celery/queue"] == "gpu"


def test_only_the_gpu_step_loads_the_model(tmp_path, synthetic_video, monkeypatch):
    """Under a per-step executor every step is its own process: ``prompts`` (which reads the
    default prompt from the segmenter resource) must not load the model there."""
    from vitcow_assets.definitions import build_resources
    from vitcow_assets_tests.helpers import register

    loads = []
    real = __import__("vitcow_assets.defs.resources", fromlist=["cached_segmenter"]).cached_segmenter
    monkeypatch.setattr("vitcow_assets.defs.resources.cached_segmenter", lambda *a: loads.append(a) or real(*a))
    from vitcow_assets.defs.assets import ASSETS

    by_name = {a.key.path[-1]: a for a in ASSETS}
    with dg.instance_for_test() as instance:
        key = register(synthetic_video, tmp_path, instance)
        resources = build_resources(backend="motion", home=str(tmp_path))
        upstream = [by_name[n] for n in ("raw_video", "clips", "prompts")]
        assert dg.materialize(upstream, partition_key=key, instance=instance, resources=resources).success
        assert loads == []
        everything = [by_name[n] for n in ("raw_video", "clips", "prompts", "object_masks")]
        assert dg.materialize(everything, selection=["object_masks"], partition_key=key, instance=instance, resources=resources).success
        assert len(loads) == 1


def test_init_against_a_server_that_is_not_there_fails_in_one_line(tmp_path):
    from vitcow_testbed.servers import free_port

    env = {"VITCOW_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh"), "DAGSTER_PG_PASSWORD": "", "PATH": "/usr/bin:/bin"}
    url = f"postgresql://vit@127.0.0.1:{free_port()}/farm"
    done = subprocess.run([sys.executable, "-m", "vitcow_assets.cli", "init", "--postgres", url], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot open the Postgres instance" in done.stderr, done.stderr
