import dagster as dg

from vitcow_assets.definitions import defs
from vitcow_assets.defs.schedules import nightly_catchup


def test_definitions_load_with_the_whole_graph():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"raw_video", "clips", "prompts", "object_masks", "object_crops", "previews", "published_crops"}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("object_crops")).parent_keys} == {"object_masks"}
    job = defs.resolve_job_def("process_video")
    assert job.partitions_def.name == "videos"
    assert defs.resolve_sensor_def("landing_sensor").job_name == "process_video"
    assert nightly_catchup.cron_schedule == "0 2 * * *"


def test_segmentation_step_runs_in_the_gpu_pool():
    masks = defs.resolve_assets_def("object_masks")
    assert masks.node_def.pool == "gpu"
    checks = defs.resolve_asset_graph().asset_check_keys
    blocking = {c.name for c in checks if defs.resolve_asset_graph().get_check_spec(c).blocking}
    assert blocking == {"boxes_inside_frame", "masks_nonempty"}
