"""``published_crops``: a partition's crops, manifests and tables uploaded to a destination
URL (``VITCOW_PUBLISH`` / the storage resource's ``publish_to``). Off unless one is set:
the asset then materializes nothing."""

import dagster as dg

from vitcow_assets.defs.assets import GROUP, object_crops, previews
from vitcow_assets.defs.code_versions import versioned_asset
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.footage.ingest import read_raw_video
from vitcow_assets.stages.publishing import publish_outputs

PUBLISH_ENV = "VITCOW_PUBLISH"


@versioned_asset(
    partitions_def=video_partitions,
    group_name=GROUP,
    kinds={"video", "parquet"},
    deps=[object_crops, previews],
    output_required=False,
)
def published_crops(context: dg.AssetExecutionContext, storage: VitcowStorage):
    """**Off unless a destination is set** (`VITCOW_PUBLISH`, `vitcow run --publish URL`): the
    step then materializes nothing and records an observation saying so. With one: crop
    videos, crops manifest (with each crop's `published_uri`), clips and masks tables, contact
    sheet, raw-video record and prompt plan uploaded to `<destination>/<farm>/<video_id>/`:
    atomically, skipping files already there with the same size and sha256, replacing stale ones."""
    if not storage.publish_to:
        off = f"off: no destination is set ({PUBLISH_ENV} or vitcow run --publish URL); nothing to publish"
        context.log.info(off)
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, partition=context.partition_key, description=off, metadata={"status": off}))
        return
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    summary = publish_outputs(layout, context.partition_key, raw.farm, storage.publish_to)
    context.log.info(f"published to {summary.destination}: {len(summary.uploaded)} uploaded, {len(summary.skipped)} unchanged, {len(summary.removed)} removed")
    yield dg.MaterializeResult(
        metadata={
            "destination": dg.MetadataValue.text(summary.destination),
            "crops_manifest": dg.MetadataValue.text(summary.manifest_uri),
            "farm": dg.MetadataValue.text(raw.farm or ""),
            "crops": len(summary.crop_uris),
            "uploaded": len(summary.uploaded),
            "unchanged": len(summary.skipped),
            "removed": len(summary.removed),
        }
    )
