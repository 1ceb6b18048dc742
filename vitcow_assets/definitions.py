"""The Dagster code location: assembles Definitions and nothing else."""

import os

import dagster as dg

from vitcow_assets.defs.assets import ASSETS
from vitcow_assets.defs.checks import CHECKS
from vitcow_assets.defs.execution import executor_from_env
from vitcow_assets.defs.jobs import process_video_job
from vitcow_assets.defs.resources import SegmenterResource, VitcowStorage
from vitcow_assets.defs.schedules import nightly_catchup
from vitcow_assets.defs.sensors import landing_sensor
from vitcow_assets.segmenters.base import CHECKPOINT_ENV
from vitcow_assets.storage import default_home


def build_resources(backend: str | None = None, home: str | None = None) -> dict:
    """Resources from the environment (``VITCOW_*``), with optional overrides."""
    return {
        "storage": VitcowStorage(
            home=home or str(default_home()),
            landing_dir=os.environ.get("VITCOW_LANDING") or None,
            settle_seconds=float(os.environ.get("VITCOW_SETTLE_SECONDS", "30")),
        ),
        "segmenter": SegmenterResource(
            backend=backend or os.environ.get("VITCOW_BACKEND", "auto"),
            sam3_checkpoint=os.environ.get(CHECKPOINT_ENV) or None,
            device=os.environ.get("VITCOW_DEVICE", "auto"),
            default_prompt=os.environ.get("VITCOW_PROMPT", "cow"),
            sam3_gpus=[int(g) for g in os.environ.get("VITCOW_SAM3_GPUS", "").split(",") if g.strip()],
            sam3_score_threshold=float(os.environ.get("VITCOW_SAM3_SCORE_THRESHOLD", "0.5")),
            sam3_new_object_threshold=float(os.environ.get("VITCOW_SAM3_NEW_OBJECT_THRESHOLD", "0.7")),
            sam3_hotstart_delay=int(os.environ.get("VITCOW_SAM3_HOTSTART_DELAY", "0")),
        ),
    }


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[process_video_job],
    sensors=[landing_sensor],
    schedules=[nightly_catchup],
    resources=build_resources(),
    executor=executor_from_env(),
)
