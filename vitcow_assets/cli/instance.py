"""The Dagster instance the CLI works against: ``$DAGSTER_HOME`` (default
``$VITCOW_HOME/dagster``), created with a local ``dagster.yaml`` on first use, and the
``dagster.yaml`` that ``vitcow init --postgres URL`` writes: instance storage on Postgres,
the queued run coordinator, the ``gpu`` pool limit and run monitoring.

The password never goes into the file: the storage block reads it from
``DAGSTER_PG_PASSWORD`` (the variable the official Helm chart uses too; set it empty for
``trust`` or peer authentication). SQLAlchemy 2.1 needs the driver in the scheme
(``postgresql+psycopg2``); the file says so.
"""

import fcntl
import logging
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from vitcow_assets.footage.layout import default_home

INSTANCE_YAML = """\
# Written by vitcow on first use. Local SQLite storage; one GPU step at a time.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
    # one run per video at a time: a second run of the same partition waits in the queue
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
# The daemon fails runs that never start or hang while canceling, and frees the pool slots
# of finished runs; the dead_runs_sensor fails runs whose process was killed.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""


def dagster_home_path() -> Path:
    """``$DAGSTER_HOME``, defaulting to ``$VITCOW_HOME/dagster``."""
    return Path(os.environ.get("DAGSTER_HOME") or default_home() / "dagster").absolute()


def ensure_dagster_home() -> Path:
    """``dagster_home_path()``, created with a dagster.yaml if it has none; exported as
    ``DAGSTER_HOME`` for this process."""
    home = dagster_home_path()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance():
    """The instance at ``$DAGSTER_HOME``; two first uses at once would both create its
    SQLite schema (and one would fail), so creating it is serialised by a lock file."""
    import dagster as dg

    with open(Path(os.environ["DAGSTER_HOME"]) / ".vitcow-open.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()

PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
PG_SCHEME = "postgresql+psycopg2"
_URL_SCHEMES = ("postgres", "postgresql", PG_SCHEME)

#: what a Postgres instance adds when the base file does not say otherwise
RUN_MONITORING = {
    "enabled": True,
    "start_timeout_seconds": 180,
    "cancel_timeout_seconds": 180,
    "poll_interval_seconds": 30,
}
QUEUED_RUN_COORDINATOR = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}


class InstanceConfigError(ValueError):
    """A Postgres URL or setting that cannot make a dagster.yaml."""


def postgres_storage(url: str) -> dict:
    """The ``storage: postgres:`` block for ``postgresql://USER@HOST[:PORT]/DB[?params]``."""
    parts = urlsplit(url)
    if parts.scheme not in _URL_SCHEMES:
        raise InstanceConfigError(f"--postgres {url!r}: expected postgresql://USER@HOST[:PORT]/DB")
    if parts.password is not None:
        raise InstanceConfigError(f"--postgres: put the password in {PASSWORD_ENV}, not in the URL (dagster.yaml never holds it)")
    db_name = unquote(parts.path.lstrip("/"))
    if not parts.username or not db_name or "/" in db_name:
        raise InstanceConfigError(f"--postgres {url!r}: a user and a database are required: postgresql://USER@HOST[:PORT]/DB")
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise InstanceConfigError(f"--postgres {url!r}: {exc}") from None
    db = {
        "username": unquote(parts.username),
        "password": {"env": PASSWORD_ENV},
        "hostname": parts.hostname or "localhost",
        "port": port,
        "db_name": db_name,
        "scheme": PG_SCHEME,
    }
    params = dict(parse_qsl(parts.query))
    if params:
        db["params"] = params
    return {"postgres": {"postgres_db": db}}


def local_instance_yaml(gpus: int) -> str:
    """The local (SQLite) instance file with ``gpus`` slots in the ``gpu`` pool."""
    if gpus < 1:
        raise InstanceConfigError(f"--gpus {gpus}: at least 1")
    text = INSTANCE_YAML.replace("    default_limit: 1\n", f"    default_limit: {gpus}\n")
    return text.replace("one GPU step at a time.", f"{gpus} GPU step(s) at a time." if gpus > 1 else "one GPU step at a time.")


def postgres_instance_yaml(base_yaml: str, url: str, gpus: int = 1) -> str:
    """``base_yaml`` (the local instance file) moved onto Postgres, with the queued run
    coordinator, ``gpus`` slots in the ``gpu`` pool and run monitoring."""
    if gpus < 1:
        raise InstanceConfigError(f"--gpus {gpus}: at least 1")
    config = yaml.safe_load(base_yaml) or {}
    config["storage"] = postgres_storage(url)
    config["run_coordinator"] = dict(QUEUED_RUN_COORDINATOR)
    config.setdefault("concurrency", {}).setdefault("pools", {})["default_limit"] = gpus
    config.setdefault("run_monitoring", dict(RUN_MONITORING))
    header = (
        "# Written by `vitcow init --postgres`: instance storage on Postgres (password from\n"
        f"# ${PASSWORD_ENV}), queued runs, {gpus} GPU step(s) at a time, run monitoring.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def create_tables(dagster_home: str) -> None:
    """Open the instance at ``dagster_home`` once, so that its tables exist before daemons and
    workers start together (several processes creating them at once on an empty database
    collide); a connection failure becomes one line."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    if PASSWORD_ENV not in os.environ:
        raise InstanceConfigError(f"set {PASSWORD_ENV} (empty for trust or peer authentication), then run `vitcow init` again")
    logging.disable(logging.WARNING)  # dagster-postgres logs every retry with the full error
    try:
        dg.DagsterInstance.from_ref(InstanceRef.from_dir(dagster_home)).dispose()
    except Exception as exc:  # psycopg2/SQLAlchemy errors span many lines
        cause = exc
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        first = next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
        raise InstanceConfigError(f"cannot open the Postgres instance: {first}") from None
    finally:
        logging.disable(logging.NOTSET)
