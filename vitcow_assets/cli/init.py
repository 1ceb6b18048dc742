"""``vitcow init``: create the storage root, landing folder and Dagster instance (local
SQLite, or Postgres with ``--postgres``) and print the shell exports that point to them."""

import argparse
import shlex

from vitcow_assets.cli.instance import (
    INSTANCE_YAML,
    InstanceConfigError,
    create_tables,
    dagster_home_path,
    ensure_dagster_home,
    local_instance_yaml,
    postgres_instance_yaml,
)
from vitcow_assets.cli.queries import fail
from vitcow_assets.footage.layout import HOME_ENV, default_home
from vitcow_assets.media.files import atomic_file


def _write_postgres_config(url: str, gpus: int, force: bool) -> str | None:
    """Write the Postgres ``dagster.yaml``; the one-line reason when it cannot be."""
    config = dagster_home_path() / "dagster.yaml"
    if config.exists() and not force:
        return f"{config} exists; pass --force to replace it"
    try:
        text = postgres_instance_yaml(INSTANCE_YAML, url, gpus)
    except InstanceConfigError as exc:
        return str(exc)
    with atomic_file(config) as tmp:
        tmp.write_text(text)
    return None


def _write_local_config(gpus: int, force: bool) -> str | None:
    """Write the local ``dagster.yaml`` with ``gpus`` pool slots (only when asked for one
    other than the default, or with ``--force``); the one-line reason when it cannot be."""
    config = dagster_home_path() / "dagster.yaml"
    if gpus == 1 and not force:
        return None
    if config.exists() and not force:
        return f"{config} exists; pass --force to replace it (with {gpus} gpu pool slots)"
    try:
        text = local_instance_yaml(gpus)
    except InstanceConfigError as exc:
        return str(exc)
    with atomic_file(config) as tmp:
        tmp.write_text(text)
    return None


def cmd_init(args: argparse.Namespace) -> int:
    home = default_home()
    (home / "landing").mkdir(parents=True, exist_ok=True)
    if args.postgres:
        problem = _write_postgres_config(args.postgres, args.gpus, args.force)
    else:
        problem = _write_local_config(args.gpus, args.force)
    if problem:
        return fail(problem)
    dagster_home = ensure_dagster_home()
    if args.postgres:
        try:
            create_tables(str(dagster_home))
        except InstanceConfigError as exc:
            return fail(f"{dagster_home / 'dagster.yaml'} written, but {exc}")
    print(f"export {HOME_ENV}={shlex.quote(str(home))}")
    print(f"export DAGSTER_HOME={shlex.quote(str(dagster_home))}")
    return 0
