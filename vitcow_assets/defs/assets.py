"""The assets, one partition per source video. Each hands its work to ``footage`` or
``stages`` and returns what the UI shows (``defs.metadata``).

Descriptions (docstrings) are Markdown: the Dagster UI renders them.
"""

import json
import warnings

import dagster as dg
import pyarrow.parquet as pq
import pydantic

from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.core.prompts import plan_from_json, plan_to_json
from vitcow_assets.core.tables import clip_fps_by_id, clips_from_table, masks_metadata, masks_provenance
from vitcow_assets.defs import metadata as md
from vitcow_assets.defs.code_versions import versioned_asset
from vitcow_assets.defs.config import config_class, to_settings
from vitcow_assets.defs.execution import GPU_OP_TAGS, GPU_POOL
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.resources import SegmenterResource, VitcowStorage
from vitcow_assets.footage.ingest import RawVideo, ingest, read_raw_video
from vitcow_assets.footage.prompt_files import resolve_plan
from vitcow_assets.footage.registry import Registry
from vitcow_assets.media.files import atomic_file
from vitcow_assets.runtime import progress
from vitcow_assets.runtime.version import code_version
from vitcow_assets.segmenters import PromptError, SegmenterConfigError
from vitcow_assets.stages.clipping import cut_clips
from vitcow_assets.stages.cropping import CropProvenance, CropSettings, CropSummary, write_crops
from vitcow_assets.stages.events import StageEvents
from vitcow_assets.stages.previews import contact_sheet
from vitcow_assets.stages.segmentation import MaskJob, segment_clips

GROUP = "footage"

ClipsConfig = config_class(
    ClipSettings,
    "ClipsConfig",
    extra={"write_clip_files": (bool, pydantic.Field(default=True, description="write each clip as an H.264 file beside the manifest"))},
)
CropsConfig = config_class(CropSettings, "CropsConfig")


class PromptsConfig(dg.Config):
    #: one text query for this run, instead of the video's prompt file and the default
    prompt: str | None = None


def _warner(context: dg.AssetExecutionContext):
    """A warning to the step's log and to whoever listens in this process (the CLI)."""

    def warn(message: str) -> None:
        context.log.warning(message)
        progress.warn(message)

    return warn


def _events(context: dg.AssetExecutionContext, stage: str) -> StageEvents:
    return StageEvents(progress=lambda done, total: progress.report(stage, done, total), warn=_warner(context))


def _partition(context: dg.AssetExecutionContext, storage: VitcowStorage):
    layout = storage.video(context.partition_key)
    return layout, read_raw_video(layout)


@versioned_asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video"})
def raw_video(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """The registered source video, linked into the storage root, probed and hashed."""
    registration = Registry(storage.root()).get(context.partition_key)
    if registration is None:
        raise dg.Failure(f"partition {context.partition_key!r} is not registered: land the file or run `vitcow run PATH`")
    raw = ingest(registration, storage.root(), storage.patterns(), on_retry=_warner(context))
    return dg.MaterializeResult(metadata=md.raw_video_metadata(raw), data_version=dg.DataVersion(raw.sha256))


@versioned_asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video", "parquet"}, deps=[raw_video])
def clips(context: dg.AssetExecutionContext, config: ClipsConfig, storage: VitcowStorage) -> dg.MaterializeResult:
    """Fixed-length clips: a manifest of frame windows, and H.264 clip files when asked."""
    layout, raw = _partition(context, storage)
    settings = to_settings(ClipSettings, config)
    events = _events(context, "clips")
    try:
        table, incomplete = cut_clips(raw, layout, settings, config.write_clip_files, events)
    except ValueError as exc:  # no clip fits, a file name without the time of day asked for
        raise dg.Failure(description=str(exc)) from None
    md.warn_dropped(events.warn, [c.clip_id for c in incomplete], events.damage, "clip(s) dropped")
    return dg.MaterializeResult(metadata=md.clips_metadata(layout, table, len(incomplete), events.damage, settings, config.write_clip_files))


@versioned_asset(partitions_def=video_partitions, group_name=GROUP, kinds={"yaml"}, deps=[raw_video])
def prompts(context: dg.AssetExecutionContext, config: PromptsConfig, storage: VitcowStorage, segmenter: SegmenterResource) -> dg.MaterializeResult:
    """The prompt plan of the video: its prompt file (`<stem>.prompts.yaml` beside the
    footage), else the default text prompt. Its data version is the plan's fingerprint, so
    an edited prompt file makes the masks and crops of this video stale."""
    layout, raw = _partition(context, storage)
    plan = resolve_plan(raw.source_path, raw.width, raw.height, raw.frame_count, config.prompt, segmenter.default_prompt)
    plan_json = plan_to_json(plan)
    with atomic_file(layout.prompts_json) as tmp:
        tmp.write_text(plan_json)
    metadata = {"source": plan.source, "queries": plan.labels(), "steps": len(plan.steps), "plan": dg.MetadataValue.json(json.loads(plan_json))}
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(plan.fingerprint()))


with warnings.catch_warnings():  # observable source assets are beta in Dagster 1.13
    warnings.simplefilter("ignore", dg.BetaWarning)

    @dg.observable_source_asset(group_name=GROUP, description=md.CHECKPOINT_DESCRIPTION)
    def model_checkpoint(context, storage: VitcowStorage, segmenter: SegmenterResource) -> dg.ObserveResult:
        """The segmenter's checkpoint file: its data version is the sha256 of its bytes. A file
        that cannot be read is observed as such: `object_masks` then fails saying why."""
        path = getattr(segmenter.backend_settings(), "checkpoint", None)
        try:
            sha256 = segmenter.checkpoint_sha256(storage.root())
        except OSError as exc:
            return md.checkpoint_observation(segmenter.resolved_backend, path, None, problem=exc.strerror or type(exc).__name__)
        return md.checkpoint_observation(segmenter.resolved_backend, path, sha256)


def _mask_job(context, layout, raw: RawVideo, segmenter: SegmenterResource, model) -> MaskJob:
    """The segmentation of one video: its clips, its prompt plan, the loaded model, provenance."""
    plan = plan_from_json(layout.prompts_json.read_text())
    provenance = masks_metadata(
        **segmenter.settings_record(), segmenter=model.name, checkpoint=model.checkpoint or "",
        checkpoint_sha256=segmenter.checkpoint_sha256() or "",
        prompt=", ".join(plan.labels()), prompt_plan=plan.fingerprint(), run_id=context.run.run_id,
    )
    return MaskJob(
        source=raw.stored_path, video_id=raw.video_id, clips=clips_from_table(pq.read_table(layout.clips_table)), plan=plan,
        segmenter_name=model.name, open_session=segmenter.session, out_path=layout.masks_table, metadata=provenance,
        prepare=model.prepare_frames, scale=model.frame_scale(), prompt_used=model.uses_text_prompts, prefetch=segmenter.prefetch_clips,
        link_settings=segmenter.link_settings(), describe_device=model.device_report,
        texts_together=model.several_texts_per_session,
    )


def _loaded(context, storage: VitcowStorage, segmenter: SegmenterResource):
    """The step's model (on a device leased for the step); a refusal fails the step with the
    same line ``vitcow run`` prints."""
    try:
        return segmenter.load(storage.root(), on_wait=_warner(context))
    except SegmenterConfigError as exc:
        raise dg.Failure(description=str(exc)) from None


@versioned_asset(
    partitions_def=video_partitions, group_name=GROUP, kinds={"parquet"}, deps=[clips, prompts, model_checkpoint], pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
)
def object_masks(context: dg.AssetExecutionContext, storage: VitcowStorage, segmenter: SegmenterResource) -> dg.MaterializeResult:
    """Per-frame object masks and boxes from the segmenter, one row per (clip, frame, object).
    Its data version follows the checkpoint's (`model_checkpoint`): a new file at the same
    path makes these masks stale."""
    layout, raw = _partition(context, storage)
    model = _loaded(context, storage, segmenter)
    model.reset_scene()  # a backend that learns the scene (motion) starts afresh on each video
    job = _mask_job(context, layout, raw, segmenter, model)
    try:
        model.check_plan(job.plan)  # a plan the backend cannot run fails before any clip is decoded
    except PromptError as exc:
        raise dg.Failure(description=str(exc)) from None
    events = _events(context, "object_masks")
    if not model.uses_text_prompts:
        events.warn(f"the {model.name} segmenter ignores text, box and point prompts ({', '.join(job.plan.labels())}): it finds whatever moves")
    summary = segment_clips(job, events)
    md.warn_dropped(events.warn, summary.incomplete_clips, events.damage, "clip(s) not segmented")
    return dg.MaterializeResult(metadata=md.masks_metadata_for(layout, summary, model, job, segmenter.settings_record(), events.damage))


def _crop_provenance(context, raw: RawVideo, layout) -> CropProvenance:
    masks = masks_provenance(pq.read_schema(layout.masks_table))
    return CropProvenance(
        video_id=raw.video_id, source_path=raw.source_path, source_sha256=raw.sha256, segmenter=masks.get("segmenter", ""),
        model_checkpoint=masks.get("checkpoint") or None, model_checkpoint_sha256=masks.get("checkpoint_sha256") or None,
        code_version=code_version(), run_id=context.run.run_id,
        farm=raw.farm, camera=raw.camera, recorded_at=raw.recorded_at, source_uri=raw.source_uri,
    )


@versioned_asset(partitions_def=video_partitions, group_name=GROUP, kinds={"video", "parquet"}, deps=[object_masks])
def object_crops(context: dg.AssetExecutionContext, config: CropsConfig, storage: VitcowStorage) -> dg.MaterializeResult:
    """One fixed-size crop video per (clip, object), with a manifest carrying provenance."""
    layout, raw = _partition(context, storage)
    settings = to_settings(CropSettings, config)
    provenance = _crop_provenance(context, raw, layout)
    clip_table = pq.read_table(layout.clips_table)
    events, summary = _events(context, "object_crops"), CropSummary()
    crops, incomplete = write_crops(
        raw.stored_path, clips_from_table(clip_table), clip_fps_by_id(clip_table), layout.masks_table, layout, settings, provenance,
        progress=events.progress, damage=events.damage, summary=summary,
    )
    md.warn_dropped(events.warn, incomplete, events.damage, "clip(s) without crops")
    if summary.split_objects:
        events.warn(f"{len(summary.split_objects)} object(s) jump further than the scene's animals move: cut into parts ({', '.join(summary.split_objects[:5])})")
    metadata = md.crops_metadata(layout, crops, settings, provenance, events.damage, summary, storage.url_of(layout.contact_sheet), storage.links())
    return dg.MaterializeResult(metadata=metadata)


@versioned_asset(partitions_def=video_partitions, group_name=GROUP, kinds={"png"}, deps=[clips, object_masks])
def previews(context: dg.AssetExecutionContext, storage: VitcowStorage) -> dg.MaterializeResult:
    """A contact sheet of sampled clip frames with masks, boxes and object ids drawn."""
    layout, raw = _partition(context, storage)
    clip_windows = clips_from_table(pq.read_table(layout.clips_table))
    sheet = contact_sheet(raw.stored_path, clip_windows, layout.masks_table, layout.contact_sheet)
    return dg.MaterializeResult(metadata=md.previews_metadata(layout, sheet, len(clip_windows), storage.url_of(layout.contact_sheet)))


ASSETS = [raw_video, clips, prompts, object_masks, object_crops, previews]
#: the source assets (observed, not materialized) the assets depend on
SOURCE_ASSETS = [model_checkpoint]
