import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from vitcow_assets.definitions import defs


def test_definitions_load_with_the_whole_graph():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_video", "clips", "prompts", "object_masks", "object_crops", "previews", "published_crops"} <= keys
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("object_crops")).parent_keys} == {"object_masks"}
    job = defs.resolve_job_def("process_video")
    assert job.partitions_def.name == "videos"
    assert defs.resolve_sensor_def("landing_sensor").job_name == "process_video"


def test_segmentation_step_runs_in_the_gpu_pool():
    masks = defs.resolve_assets_def("object_masks")
    assert masks.node_def.pool == "gpu"
    checks = defs.resolve_asset_graph().asset_check_keys
    blocking = {c.name for c in checks if defs.resolve_asset_graph().get_check_spec(c).blocking}
    assert blocking == {"boxes_inside_frame", "masks_nonempty"}


def _schedule(env: dict) -> dict:
    """The catch-up schedule as a code location loaded with ``env`` sees it."""
    code = (
        "import json; from vitcow_assets.definitions import defs; s = defs.resolve_schedule_def('nightly_catchup'); "
        "print(json.dumps([s.cron_schedule, s.execution_timezone, s.job_name]))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("VITCOW_CATCHUP_CRON", "VITCOW_TIMEZONE")}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    cron, timezone, job = json.loads(done.stdout.strip().splitlines()[-1])
    return {"cron": cron, "timezone": timezone, "job": job}


@pytest.mark.parametrize(
    "env, expected",
    [({}, ("0 2 * * *", "UTC")), ({"VITCOW_CATCHUP_CRON": "30 3 * * 1-5", "VITCOW_TIMEZONE": "Europe/Berlin"}, ("30 3 * * 1-5", "Europe/Berlin"))],
)
def test_catchup_runs_nightly_at_two_utc_unless_the_environment_says_otherwise(env, expected):
    schedule = _schedule(env)
    assert (schedule["cron"], schedule["timezone"]) == expected and schedule["job"] == "process_video"


def test_every_automated_asset_is_evaluated_by_a_sensor_that_runs_from_the_start():
    """Dagster's own automation sensor starts stopped: without a running one the catalog
    would never pick up new crops on a fresh instance."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    automated = {key for key in graph.get_all_asset_keys() if graph.get(key).automation_condition is not None}
    assert dg.AssetKey("crop_catalog") in automated
    running = [s for s in repo.sensor_defs if s.default_status == dg.DefaultSensorStatus.RUNNING and s.asset_selection is not None]
    covered = set().union(*(s.asset_selection.resolve(graph) for s in running))
    assert automated <= covered
    assert "default_automation_condition_sensor" not in {s.name for s in repo.sensor_defs}
