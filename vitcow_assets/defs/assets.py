"""The assets, one partition per source video. Each hands its work to ``stages``."""

import json

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets import progress
from vitcow_assets.core.clips import ClipSettings, parse_start_time, plan_clips
from vitcow_assets.core.prompts import plan_from_json, plan_to_json
from vitcow_assets.core.tables import CLIPS_SCHEMA, CROPS_SCHEMA, MASKS_SCHEMA, clips_from_table
from vitcow_assets.defs.execution import GPU_OP_TAGS
from vitcow_assets.defs.metadata import image_metadata, table_metadata
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import SegmenterResource, VitcowStorage
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.video import frame_times
from vitcow_assets.prompt_files import resolve_plan
from vitcow_assets.registry import Registry
from vitcow_assets.stages.clipping import write_clips
from vitcow_assets.stages.cropping import CropProvenance, CropSettings, write_crops
from vitcow_assets.stages.ingest import ingest_source, read_raw_video
from vitcow_assets.stages.previews import contact_sheet
from vitcow_assets.stages.segmentation import segment_clips
from vitcow_assets.version import code_version

GROUP = "footage"
MASKS_METADATA_PREFIX = "vitcow."


class ClipsConfig(dg.Config):
    """Run config of ``clips``: ``ClipSettings`` (defaults taken from it) plus clip files."""

    frames_per_clip: int = ClipSettings.frames_per_clip
    frame_step: int = ClipSettings.frame_step
    max_clips: int | None = ClipSettings.max_clips
    seed: int = ClipSettings.seed
    day_start: str | None = ClipSettings.day_start
    day_end: str | None = ClipSettings.day_end
    name_time_regex: str = ClipSettings.name_time_regex
    name_time_format: str = ClipSettings.name_time_format
    write_clip_files: bool = True

    def settings(self) -> ClipSettings:
        fields = self.model_dump()
        fields.pop("write_clip_files")
        return ClipSettings(**fields)


class PromptsConfig(dg.Config):
    #: one text query for this run, instead of the video's prompt file and the default
    prompt: str | None = None


class CropsConfig(dg.Config):
    crop_size: int = 224
    margin: float = 0.1
    mask_background: bool = False


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video"}, code_version=code_version())
def raw_video(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """The registered source video, linked into the storage root, probed and hashed."""
    key = context.partition_key
    registration = Registry(storage.root()).get(key)
    if registration is None:
        raise dg.Failure(f"partition {key!r} is not registered: land the file or run `vitcow run PATH`")
    record = ingest_source(registration.source_path, key, storage.video(key))
    return dg.MaterializeResult(
        metadata={
            "source_path": dg.MetadataValue.path(record["source_path"]),
            "stored_path": dg.MetadataValue.path(record["stored_path"]),
            **{k: record[k] for k in ("sha256", "codec", "container", "width", "height", "fps", "frame_count", "duration_s", "pix_fmt", "size_bytes")},
        },
        data_version=dg.DataVersion(record["sha256"]),
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video", "parquet"}, deps=[raw_video], code_version=code_version())
def clips(context: dg.AssetExecutionContext, config: ClipsConfig, storage: VitcowStorage) -> dg.MaterializeResult:
    """Fixed-length clips: a manifest of frame windows, and H.264 clip files when asked."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    settings = config.settings()
    start = parse_start_time(raw["source_path"].rsplit("/", 1)[-1], settings) if settings.uses_time_window else None
    times = frame_times(raw["stored_path"])
    frame_count = len(times) if times is not None else raw["frame_count"]
    planned = plan_clips(frame_count, raw["fps"], settings, start, times)
    if not planned:
        raise dg.Failure(f"{raw['source_path']}: no clip fits (frames: {frame_count}, settings: {config.model_dump()})")
    table, incomplete = write_clips(
        raw["stored_path"], context.partition_key, planned, raw["fps"], layout, config.write_clip_files, times=times
    )
    if incomplete:
        context.log.warning(f"{len(incomplete)} clip(s) dropped: the file ended before their last frame")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(layout.clips_table, CLIPS_SCHEMA, table.num_rows),
            "clips": table.num_rows,
            "clips_dropped": len(incomplete),
            "clip_files": config.write_clip_files,
            "settings": dg.MetadataValue.json(config.model_dump()),
        }
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"yaml"}, deps=[raw_video], code_version=code_version())
def prompts(
    context: dg.AssetExecutionContext, config: PromptsConfig, storage: VitcowStorage, segmenter: SegmenterResource
) -> dg.MaterializeResult:
    """The prompt plan of the video: its prompt file (``<stem>.prompts.yaml`` beside the
    footage), else the default text prompt. Its data version is the plan's fingerprint, so
    an edited prompt file makes the masks and crops of this video stale."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    plan = resolve_plan(raw["source_path"], raw["width"], raw["height"], raw["frame_count"], config.prompt, segmenter.default_prompt)
    plan_json = plan_to_json(plan)
    with atomic_file(layout.prompts_json) as tmp:
        tmp.write_text(plan_json)
    return dg.MaterializeResult(
        metadata={
            "source": plan.source,
            "queries": [plan.label(i) for i in range(plan.passes)],
            "steps": len(plan.steps),
            "plan": dg.MetadataValue.json(json.loads(plan_json)),
        },
        data_version=dg.DataVersion(plan.fingerprint()),
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"parquet"}, deps=[clips, prompts], pool="gpu", op_tags=GPU_OP_TAGS, code_version=code_version())
def object_masks(context: dg.AssetExecutionContext, storage: VitcowStorage, segmenter: SegmenterResource) -> dg.MaterializeResult:
    """Per-frame object masks and boxes from the segmenter, one row per (clip, frame, object)."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    clip_windows = clips_from_table(pq.read_table(layout.clips_table))
    plan = plan_from_json(layout.prompts_json.read_text())
    model = segmenter.segmenter
    prompt = ", ".join(plan.label(i) for i in range(plan.passes))
    if not model.uses_text_prompts:
        context.log.warning(f"the {model.name} segmenter ignores text, box and point prompts ({prompt}): it finds whatever moves")
    summary = segment_clips(
        raw["stored_path"],
        context.partition_key,
        clip_windows,
        segmenter.session,
        plan,
        model.name,
        layout.masks_table,
        progress=lambda done, total: progress.report("object_masks", done, total),
        on_retry=context.log.warning,
        table_metadata={
            f"{MASKS_METADATA_PREFIX}segmenter": model.name,
            f"{MASKS_METADATA_PREFIX}checkpoint": model.checkpoint or "",
            f"{MASKS_METADATA_PREFIX}prompt": prompt,
            f"{MASKS_METADATA_PREFIX}prompt_plan": plan.fingerprint(),
            f"{MASKS_METADATA_PREFIX}run_id": context.run_id,
        },
    )
    if summary.incomplete_clips:
        context.log.warning(f"clips not segmented, the file ended early: {', '.join(summary.incomplete_clips)}")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(layout.masks_table, MASKS_SCHEMA, summary.rows),
            "clips": summary.clips,
            "objects": summary.objects,
            "frames_with_objects": summary.frames_with_objects,
            "segmenter": model.name,
            "checkpoint": model.checkpoint or "none",
            "prompt": prompt,
            "prompt_used": model.uses_text_prompts,
        }
    )


def _masks_provenance(layout) -> dict[str, str]:
    meta = pq.read_schema(layout.masks_table).metadata or {}
    return {
        k.decode()[len(MASKS_METADATA_PREFIX):]: v.decode()
        for k, v in meta.items()
        if k.decode().startswith(MASKS_METADATA_PREFIX)
    }


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video", "parquet"}, deps=[object_masks], code_version=code_version())
def object_crops(context: dg.AssetExecutionContext, config: CropsConfig, storage: VitcowStorage) -> dg.MaterializeResult:
    """One fixed-size crop video per (clip, object), with a manifest carrying provenance."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    clip_table = pq.read_table(layout.clips_table)
    masks = _masks_provenance(layout)
    provenance = CropProvenance(
        video_id=context.partition_key,
        source_path=raw["source_path"],
        source_sha256=raw["sha256"],
        segmenter=masks.get("segmenter", ""),
        model_checkpoint=masks.get("checkpoint") or None,
        code_version=code_version(),
        run_id=context.run_id,
    )
    settings = CropSettings(config.crop_size, config.margin, config.mask_background)
    clip_windows = clips_from_table(clip_table)
    fps = raw["fps"] / clip_windows[0].frame_step if clip_windows and raw["fps"] else 0.0
    crops, incomplete = write_crops(
        raw["stored_path"],
        clip_windows,
        fps,
        layout.masks_table,
        layout,
        settings,
        provenance,
        progress=lambda done, total: progress.report("object_crops", done, total),
    )
    if incomplete:
        context.log.warning(f"no crops for clips the source did not deliver in full: {', '.join(incomplete)}")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(layout.crops_table, CROPS_SCHEMA, crops),
            "crops": crops,
            "crops_dir": dg.MetadataValue.path(str(layout.crops_dir)),
            "crop_size": settings.crop_size,
            "segmenter": provenance.segmenter,
            "source_sha256": provenance.source_sha256,
        }
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"png"}, deps=[clips, object_masks], code_version=code_version())
def previews(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """A contact sheet of sampled clip frames with masks, boxes and object ids drawn."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    clip_windows = clips_from_table(pq.read_table(layout.clips_table))
    tiles, thumbnail = contact_sheet(raw["stored_path"], clip_windows, layout.masks_table, layout.contact_sheet)
    return dg.MaterializeResult(metadata={**image_metadata(layout.contact_sheet, thumbnail), "tiles": tiles})


ASSETS = [raw_video, clips, prompts, object_masks, object_crops, previews]
