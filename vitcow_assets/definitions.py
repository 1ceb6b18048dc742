"""The Dagster code location: assembles Definitions and nothing else."""

import dagster as dg

from vitcow_assets.defs.assets import ASSETS
from vitcow_assets.defs.checks import CHECKS
from vitcow_assets.defs.dead_runs import dead_runs_sensor
from vitcow_assets.defs.execution import executor_from_env
from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.publishing import published_crops
from vitcow_assets.defs.resources import (
    SegmenterResource,
    VitcowStorage,
    from_environment,
)
from vitcow_assets.defs.schedules import nightly_catchup
from vitcow_assets.defs.sensors import landing_sensor


def build_resources(
    backend: str | None = None,
    home: str | None = None,
    publish_to: str | None = None,
    segmenter_options: dict | None = None,
    resolve: bool = False,
) -> dict:
    """Resources configured from the environment (`VITCOW_*`), with optional overrides
    (`segmenter_options`: fields of `SegmenterResource`, e.g. from the CLI); `resolve`
    reads the environment now (for use outside a Dagster run)."""
    return {
        "storage": from_environment(VitcowStorage, resolve, home=home, publish_to=publish_to),
        "segmenter": from_environment(SegmenterResource, resolve, backend=backend, **(segmenter_options or {})),
    }


defs = dg.Definitions(
    assets=[*ASSETS, published_crops],
    asset_checks=CHECKS,
    jobs=[process_video_job],
    sensors=[landing_sensor, dead_runs_sensor],
    schedules=[nightly_catchup],
    resources=build_resources(),
    executor=executor_from_env(),
)
