"""The assets, one partition per source video. Each hands its work to ``stages``.

Descriptions (docstrings) are Markdown: the Dagster UI renders them.
"""

import json

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.runtime import progress
from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.core.prompts import plan_from_json, plan_to_json
from vitcow_assets.core.tables import (
    CLIPS_SCHEMA,
    CROPS_SCHEMA,
    MASKS_SCHEMA,
    TRACKS_SCHEMA,
    clip_fps_by_id,
    clips_from_table,
    masks_metadata,
    masks_provenance,
)
from vitcow_assets.defs.execution import GPU_OP_TAGS
from vitcow_assets.defs.metadata import SOURCE_SHA256, image_metadata, table_metadata, tracks_metadata
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import SegmenterResource, VitcowStorage
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.video import DecodeDamage
from vitcow_assets.footage.prompt_files import resolve_plan
from vitcow_assets.footage.registry import Registry
from vitcow_assets.footage.remote_ingest import ingest_remote, source_provenance
from vitcow_assets.remote.locations import is_url
from vitcow_assets.stages.clipping import plan_video_clips, write_clips
from vitcow_assets.stages.cropping import CropProvenance, CropSettings, write_crops
from vitcow_assets.footage.ingest import ingest_source, read_frame_times, read_raw_video
from vitcow_assets.stages.previews import contact_sheet
from vitcow_assets.stages.segmentation import segment_clips
from vitcow_assets.runtime.version import code_version

GROUP = "footage"


def _settings(make, config: dg.Config):
    """Settings built from run config; a bad value fails the step in one line naming it."""
    try:
        return make(config)
    except ValueError as exc:
        raise dg.Failure(description=f"run config: {exc}") from None


class ClipsConfig(dg.Config):
    """Run config of `clips`: the fields of `ClipSettings` (defaults taken from it) plus clip files."""

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
    """Run config of `object_crops`: the fields of `CropSettings`, defaults taken from it."""

    crop_size: int = CropSettings.crop_size
    margin: float = CropSettings.margin
    mask_background: bool = CropSettings.mask_background

    def settings(self) -> CropSettings:
        return CropSettings(**self.model_dump())


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video"}, code_version=code_version())
def raw_video(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """The registered source video, linked into the storage root, probed and hashed."""
    key = context.partition_key
    registration = Registry(storage.root()).get(key)
    if registration is None:
        raise dg.Failure(f"partition {key!r} is not registered: land the file or run `vitcow run PATH`")
    provenance = source_provenance(registration.source_path, registration.source_name, storage.patterns())
    if is_url(registration.source_path):
        raw = ingest_remote(registration, storage.root(), storage.video(key), provenance, on_retry=context.log.warning)
    else:
        raw = ingest_source(registration.source_path, key, storage.video(key), provenance)
    return dg.MaterializeResult(
        metadata={
            "source_path": dg.MetadataValue.path(raw.source_path),
            "stored_path": dg.MetadataValue.path(raw.stored_path),
            **{k: dg.MetadataValue.text(getattr(raw, k) or "") for k in ("farm", "camera", "recorded_at", "source_uri")},
            **{k: getattr(raw, k) for k in ("sha256", "codec", "container", "width", "height", "fps", "frame_count", "duration_s", "pix_fmt", "size_bytes")},
        },
        data_version=dg.DataVersion(raw.sha256),
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video", "parquet"}, deps=[raw_video], code_version=code_version())
def clips(context: dg.AssetExecutionContext, config: ClipsConfig, storage: VitcowStorage) -> dg.MaterializeResult:
    """Fixed-length clips: a manifest of frame windows, and H.264 clip files when asked."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    settings = _settings(ClipsConfig.settings, config)
    times = read_frame_times(layout)
    try:
        planned = plan_video_clips(raw.source_name, raw.frame_count, raw.fps, settings, times)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None
    damage = DecodeDamage()
    table, incomplete = write_clips(
        raw.stored_path, context.partition_key, planned, raw.fps, layout, config.write_clip_files, times=times, damage=damage
    )
    _warn_dropped(context, [c.clip_id for c in incomplete], damage, "clip(s) dropped")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(layout.clips_table, CLIPS_SCHEMA, table.num_rows),
            "clips": table.num_rows,
            "clips_dropped": len(incomplete),
            **_damage_metadata(damage),
            "clip_files": config.write_clip_files,
            "settings": dg.MetadataValue.json(config.model_dump()),
        }
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"yaml"}, deps=[raw_video], code_version=code_version())
def prompts(
    context: dg.AssetExecutionContext, config: PromptsConfig, storage: VitcowStorage, segmenter: SegmenterResource
) -> dg.MaterializeResult:
    """The prompt plan of the video: its prompt file (`<stem>.prompts.yaml` beside the
    footage), else the default text prompt. Its data version is the plan's fingerprint, so
    an edited prompt file makes the masks and crops of this video stale."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    plan = resolve_plan(raw.source_path, raw.width, raw.height, raw.frame_count, config.prompt, segmenter.default_prompt)
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
    if hasattr(model, "reset_scene"):
        model.reset_scene()  # a backend that learns the scene (motion) starts afresh on each video
    prompt = ", ".join(plan.label(i) for i in range(plan.passes))
    if not model.uses_text_prompts:
        context.log.warning(f"the {model.name} segmenter ignores text, box and point prompts ({prompt}): it finds whatever moves")
    damage = DecodeDamage()
    summary = segment_clips(
        raw.stored_path,
        context.partition_key,
        clip_windows,
        segmenter.session,
        plan,
        model.name,
        layout.masks_table,
        progress=lambda done, total: progress.report("object_masks", done, total),
        on_retry=context.log.warning,
        prepare=getattr(model, "prepare_frames", None),
        prefetch=segmenter.prefetch_clips,
        table_metadata=masks_metadata(
            **segmenter.settings_record(),
            segmenter=model.name,
            checkpoint=model.checkpoint or "",
            prompt=prompt,
            prompt_plan=plan.fingerprint(),
            run_id=context.run.run_id,
        ),
        damage=damage,
    )
    _warn_dropped(context, summary.incomplete_clips, damage, "clip(s) not segmented")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(layout.masks_table, MASKS_SCHEMA, summary.rows),
            "clips": summary.clips,
            "objects": summary.objects,
            "tracks": summary.tracks,
            "frames_with_objects": summary.frames_with_objects,
            "segmenter": model.name,
            "checkpoint": model.checkpoint or "none",
            "prompt": prompt,
            "prompt_used": model.uses_text_prompts,
            "settings": dg.MetadataValue.json(segmenter.settings_record()),
            "timings_s": dg.MetadataValue.json({k: round(v, 3) for k, v in summary.timings.items()}),
            **_damage_metadata(damage),
        }
    )


def _warn_dropped(context, clip_ids: list[str], damage: DecodeDamage, what: str) -> None:
    """One warning saying which clips were left out and why: a damaged file (frames lost)
    or one that ends before its header says."""
    shown = ", ".join(clip_ids[:10]) + (f" and {len(clip_ids) - 10} more" if len(clip_ids) > 10 else "")
    if damage:
        lost = f"the file is damaged: {damage.describe()}, decoding went on past them"
        context.log.warning(f"{len(clip_ids)} {what} ({shown}): {lost}" if clip_ids else f"{lost}; no clip lost a frame")
    elif clip_ids:
        context.log.warning(f"{len(clip_ids)} {what} ({shown}): the file ended before their last frame")


def _damage_metadata(damage: DecodeDamage) -> dict:
    return {"frames_lost": damage.frames_lost, "damaged_packets": damage.damaged_packets}


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video", "parquet"}, deps=[object_masks], code_version=code_version())
def object_crops(context: dg.AssetExecutionContext, config: CropsConfig, storage: VitcowStorage) -> dg.MaterializeResult:
    """One fixed-size crop video per (clip, object), with a manifest carrying provenance."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    clip_table = pq.read_table(layout.clips_table)
    masks = masks_provenance(pq.read_schema(layout.masks_table))
    provenance = CropProvenance(
        video_id=context.partition_key,
        source_path=raw.source_path,
        source_sha256=raw.sha256,
        segmenter=masks.get("segmenter", ""),
        model_checkpoint=masks.get("checkpoint") or None,
        code_version=code_version(),
        run_id=context.run.run_id,
        farm=raw.farm,
        camera=raw.camera,
        recorded_at=raw.recorded_at,
        source_uri=raw.source_uri,
    )
    settings = _settings(CropsConfig.settings, config)
    damage = DecodeDamage()
    crops, incomplete = write_crops(
        raw.stored_path,
        clips_from_table(clip_table),
        clip_fps_by_id(clip_table),
        layout.masks_table,
        layout,
        settings,
        provenance,
        progress=lambda done, total: progress.report("object_crops", done, total),
        damage=damage,
    )
    _warn_dropped(context, incomplete, damage, "clip(s) without crops")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(layout.crops_table, CROPS_SCHEMA, crops),
            "crops": crops,
            "crops_dir": dg.MetadataValue.path(str(layout.crops_dir)),
            **tracks_metadata(layout.tracks_table, TRACKS_SCHEMA),
            "crop_size": settings.crop_size,
            "segmenter": provenance.segmenter,
            SOURCE_SHA256: provenance.source_sha256,
            **_damage_metadata(damage),
        }
    )


@dg.asset(partitions_def=video_partitions, group_name=GROUP, kinds={"png"}, deps=[clips, object_masks], code_version=code_version())
def previews(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """A contact sheet of sampled clip frames with masks, boxes and object ids drawn."""
    layout = storage.video(context.partition_key)
    raw = read_raw_video(layout)
    clip_windows = clips_from_table(pq.read_table(layout.clips_table))
    sheet = contact_sheet(raw.stored_path, clip_windows, layout.masks_table, layout.contact_sheet)
    summary = (
        f"**{sheet.objects} objects** on the middle frames of **{sheet.tiles} of {len(clip_windows)} clips**; "
        "the thumbnail is under *preview* (Show Markdown), the full PNG at *preview_path*."
    )
    return dg.MaterializeResult(
        metadata={**image_metadata(layout.contact_sheet, sheet.thumbnail_jpeg, summary), "tiles": sheet.tiles, "objects": sheet.objects}
    )


ASSETS = [raw_video, clips, prompts, object_masks, object_crops, previews]
