"""Materialize one of the code location's jobs (one partition of a partitioned one) in this
process (the run shows in the UI of the same instance), failing in one line.

Dagster is imported when a job runs, not with this module: the commands that import it
(``label``, ``labels``, ``dataset``) parse and answer ``--help`` without it.
"""

import re
from typing import TYPE_CHECKING

from vitcow_assets.cli.instance import ensure_dagster_home, open_instance

if TYPE_CHECKING:
    import dagster as dg


class MaterializeError(RuntimeError):
    """A job's run failed; the message is its first error, one line."""


def first_error(result) -> str:
    for event in result.all_events:
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        if error is not None:
            while getattr(error, "cause", None) is not None and "Error occurred while" in error.message:
                error = error.cause
            lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
            return re.sub(r"^(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*: ", "", lines[0]) if lines else "run failed"  # no module path
    return "run failed"


def materialize(job_name: str, resources: dict, verbose: bool = False, instance: "dg.DagsterInstance | None" = None,
                partition_key: str | None = None, run_config: dict | None = None):
    """Run ``job_name`` with ``resources`` (on ``partition_key`` of a partitioned job, with
    ``run_config`` added) in this process; its result, or ``MaterializeError``."""
    from vitcow_assets.definitions import defs
    from vitcow_assets.defs.dead_runs import owner_tags

    ensure_dagster_home()
    instance = instance or open_instance()
    config = {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}, **(run_config or {})}
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config=config, instance=instance, resources=resources, raise_on_error=False, partition_key=partition_key,
        tags={"vitcow/launched_by": "cli", **owner_tags()},
    )
    if not result.success:
        raise MaterializeError(f"{job_name}: {first_error(result)}")
    return result
