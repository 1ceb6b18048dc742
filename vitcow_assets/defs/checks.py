"""Asset checks: thin wrappers around ``core.validation``. The mask checks block the crops."""

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.core import validation
from vitcow_assets.defs.assets import object_crops, object_masks
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.media.video import probe_video


_BOX_CHECK_COLUMNS = ["clip_id", "clip_frame", "object_id", "x1", "y1", "x2", "y2", "frame_width", "frame_height"]


def _result(bad: list | int, what: str, sample: list | None = None) -> dg.AssetCheckResult:
    count = bad if isinstance(bad, int) else len(bad)
    metadata = {"offending": count}
    if sample:
        metadata["sample"] = dg.MetadataValue.json(sample[:5])
    return dg.AssetCheckResult(passed=count == 0, description=f"{count} {what}", metadata=metadata)


@dg.asset_check(asset=object_masks, blocking=True)
def boxes_inside_frame(context: dg.AssetCheckExecutionContext, storage: VitcowStorage) -> dg.AssetCheckResult:
    """Every box is non-empty and lies inside its frame."""
    # the masks themselves stay on disk: a long video's RLE column would be held whole
    masks = pq.read_table(storage.video(context.partition_key).masks_table, columns=_BOX_CHECK_COLUMNS)
    bad = validation.boxes_outside_frame(masks)
    return _result(bad.num_rows, "rows with a box outside the frame", bad.slice(0, 5).to_pylist())


@dg.asset_check(asset=object_masks, blocking=True)
def masks_nonempty(context: dg.AssetCheckExecutionContext, storage: VitcowStorage) -> dg.AssetCheckResult:
    """Every row with a box has a non-empty mask."""
    masks = pq.read_table(storage.video(context.partition_key).masks_table, columns=["clip_id", "clip_frame", "object_id", "area"])
    bad = validation.empty_masks(masks)
    return _result(bad.num_rows, "rows with a box but an empty mask", bad.slice(0, 5).to_pylist())


@dg.asset_check(asset=object_crops)
def crop_frames_match_clips(context: dg.AssetCheckExecutionContext, storage: VitcowStorage) -> dg.AssetCheckResult:
    """Every crop video has exactly its clip's frame count (manifest and file)."""
    layout = storage.video(context.partition_key)
    crops = pq.read_table(layout.crops_table)
    measured = {path: probe_video(path).frame_count for path in crops["crop_path"].to_pylist()}
    bad = validation.crop_frame_mismatches(crops, pq.read_table(layout.clips_table), measured)
    return _result(bad, "crops whose frame count differs from their clip's", bad)


@dg.asset_check(asset=object_crops)
def crops_trace_to_masks(context: dg.AssetCheckExecutionContext, storage: VitcowStorage) -> dg.AssetCheckResult:
    """Every crop's present frames are exactly the mask rows of its (clip, object)."""
    layout = storage.video(context.partition_key)
    masks = pq.read_table(layout.masks_table, columns=["clip_id", "object_id", "clip_frame"])
    bad = validation.untraceable_crops(pq.read_table(layout.crops_table), masks)
    return _result(bad, "crops without matching mask rows", bad)


@dg.asset_check(asset=object_crops)
def tracks_consistent(context: dg.AssetCheckExecutionContext, storage: VitcowStorage) -> dg.AssetCheckResult:
    """Every object has one track id, one per object in a clip; crops carry their objects'
    track ids and the tracks table lists every crop under its track."""
    layout = storage.video(context.partition_key)
    masks = pq.read_table(layout.masks_table, columns=["clip_id", "object_id", "track_id"])
    bad = validation.inconsistent_tracks(masks, pq.read_table(layout.crops_table), pq.read_table(layout.tracks_table))
    return _result(bad, "track id problems", bad)


CHECKS = [boxes_inside_frame, masks_nonempty, crop_frames_match_clips, crops_trace_to_masks, tracks_consistent]
