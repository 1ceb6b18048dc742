"""What each materialization shows in the UI: table schemas, row counts, paths, images,
settings (as JSON objects), and the one-line summaries and warnings of each asset."""

import base64
import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.catalog import catalog_rows
from vitcow_assets.core.settings import record
from vitcow_assets.core.tables import CLIPS_SCHEMA, CROPS_SCHEMA, MASKS_METADATA_PREFIX, MASKS_SCHEMA, TRACKS_SCHEMA, schema_descriptions
from vitcow_assets.footage.provenance import source_tags
from vitcow_assets.lineage.links import Links
from vitcow_assets.lineage.listing import PREVIEW_ROWS, preview_rows
from vitcow_assets.media.video import DecodeDamage

#: metadata key of `object_crops`: sha256 of the source bytes the crops were made from
#: (the nightly catch-up compares it with the registered bytes)
SOURCE_SHA256 = "source_sha256"
#: run tag: sha256 of the bytes a run was requested for
SOURCE_SHA_TAG = "vitcow/source_sha256"


#: what the Dagster UI says of ``model_checkpoint``
CHECKPOINT_DESCRIPTION = (
    "The segmenter's checkpoint file (SAM3's `sam3.pt`; none for the motion backend). Its data version is the sha256 of "
    "the file's bytes, computed once per file version and cached under the storage root, so `object_masks` goes stale "
    "when another file appears at the same path. Observed at the start of every `process_video` run (or **Observe "
    "sources** in the UI)."
)


def checkpoint_observation(backend: str, path: str | None, sha256: str | None, problem: str | None = None) -> dg.ObserveResult:
    """``model_checkpoint``'s observation: the sha256 as its data version (without a
    checkpoint, the backend's name, so that changing backend makes the masks stale too; a
    file that cannot be read, ``problem``)."""
    version = sha256 or (f"unreadable checkpoint ({problem})" if problem else f"no checkpoint ({backend})")
    metadata = {"backend": backend, "path": dg.MetadataValue.text(path or "none"), "sha256": dg.MetadataValue.text(sha256 or "none")}
    if problem:
        metadata["problem"] = dg.MetadataValue.text(problem)
    return dg.ObserveResult(data_version=dg.DataVersion(version), metadata=metadata)


def run_tags(registration, patterns) -> dict[str, str]:
    """Tags of a run for a registered video: its bytes, and its farm and camera (filter runs
    by farm in the UI) where the path tells them."""
    return {SOURCE_SHA_TAG: registration.sha256, **source_tags(registration, patterns)}


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in schema_descriptions(schema)])


def table_metadata(path: Path, schema: pa.Schema, rows: int) -> dict:
    return {
        "path": dg.MetadataValue.path(str(path)),
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": column_schema(schema),
    }


def image_metadata(path: Path, thumbnail_jpeg: bytes, summary: str, url: str | None = None) -> dict:
    """A one-line Markdown summary first (short, so the UI shows it inline), the full-size
    image's path (and, where the storage root is served over http, its URL: one click, and
    the summary shows it inline), and a small thumbnail as a data URI (the UI puts Markdown of
    1,000 characters or more behind "Show Markdown", which a thumbnail always is)."""
    data = base64.b64encode(thumbnail_jpeg).decode("ascii")
    return {
        "summary": dg.MetadataValue.md(summary + (f"\n\n[![contact sheet]({url})]({url})" if url else "")),
        "preview_path": dg.MetadataValue.path(str(path)),
        **({"contact_sheet_url": dg.MetadataValue.url(url)} if url else {}),
        "preview": dg.MetadataValue.md(f"![contact sheet](data:image/jpeg;base64,{data})"),
    }


def tracks_metadata(path: Path) -> dict:
    """Where the tracks table is, how many tracks it holds and its columns."""
    return {
        "tracks_table": dg.MetadataValue.path(str(path)),
        "tracks": dg.MetadataValue.int(pq.ParquetFile(path).metadata.num_rows),
        "tracks_schema": column_schema(TRACKS_SCHEMA),
    }


def damage_metadata(damage: DecodeDamage) -> dict:
    return {"frames_lost": damage.frames_lost, "damaged_packets": damage.damaged_packets}


def _json_values(record_: dict[str, str]) -> dict:
    """A settings record whose values may be JSON text, as JSON values (objects stay objects)."""
    out = {}
    for key, value in record_.items():
        try:
            out[key] = json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value
        except ValueError:
            out[key] = value
    return out


def warn_dropped(warn, clip_ids: list[str], damage: DecodeDamage, what: str) -> None:
    """One warning saying which clips were left out and why: a damaged file (frames lost)
    or one that ends before its header says."""
    shown = ", ".join(clip_ids[:10]) + (f" and {len(clip_ids) - 10} more" if len(clip_ids) > 10 else "")
    if damage:
        lost = f"the file is damaged: {damage.describe()}, decoding went on past them"
        warn(f"{len(clip_ids)} {what} ({shown}): {lost}" if clip_ids else f"{lost}; no clip lost a frame")
    elif clip_ids:
        warn(f"{len(clip_ids)} {what} ({shown}): the file ended before their last frame")


def raw_video_metadata(raw) -> dict:
    video = raw.video
    return {
        "source_path": dg.MetadataValue.path(raw.source_path),
        "stored_path": dg.MetadataValue.path(raw.stored_path),
        **{k: dg.MetadataValue.text(getattr(raw, k) or "") for k in ("farm", "camera", "recorded_at", "source_uri")},
        "sha256": raw.sha256,
        "size_bytes": raw.size_bytes,
        "frame_count": raw.frame_count,
        **{k: getattr(video, k) for k in ("codec", "container", "width", "height", "fps", "duration_s", "pix_fmt")},
    }


def clips_metadata(layout, table: pa.Table, dropped: int, damage: DecodeDamage, settings, clip_files: bool) -> dict:
    return {
        **table_metadata(layout.clips_table, CLIPS_SCHEMA, table.num_rows),
        "clips": table.num_rows,
        "clips_dropped": dropped,
        **damage_metadata(damage),
        "clip_files": clip_files,
        "settings": dg.MetadataValue.json({**record(settings), "write_clip_files": clip_files}),
    }


def masks_metadata_for(layout, summary, model, job, settings_record: dict[str, str], damage: DecodeDamage) -> dict:
    return {
        **table_metadata(layout.masks_table, MASKS_SCHEMA, summary.rows),
        "clips": summary.clips,
        "objects": summary.objects,
        "tracks": summary.tracks,
        "frames_with_objects": summary.frames_with_objects,
        "segmenter": model.name,
        "checkpoint": model.checkpoint or "none",
        "checkpoint_sha256": job.metadata.get(f"{MASKS_METADATA_PREFIX}checkpoint_sha256") or "none",
        "device": settings_record.get("device", model.device),
        "prompt": ", ".join(job.plan.labels()),
        "prompt_used": model.uses_text_prompts,
        "settings": dg.MetadataValue.json(_json_values(settings_record)),
        "timings_s": dg.MetadataValue.json({k: round(v, 3) for k, v in summary.timings.items()}),
        **damage_metadata(damage),
    }


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``**1 clip**``, ``**2 clips**``: a count in bold with its noun in the right number."""
    return f"**{count} {noun if count == 1 else plural or noun + 's'}**"


def _farm_camera(provenance) -> str:
    if provenance.farm or provenance.camera:
        return f"farm **{provenance.farm or '?'}**, camera **{provenance.camera or '?'}**"
    return "farm and camera unknown (the path does not say: `VITCOW_PATH_PATTERNS`)"


def crops_summary(layout, provenance) -> str:
    """How objects, crops and tracks relate, and whose footage it is, in one line."""
    table = pq.read_table(layout.crops_table, columns=["clip_id", "object_id", "track_id"])
    clips, tracks = len(set(table["clip_id"].to_pylist())), len(set(table["track_id"].to_pylist()))
    objects = len(set(zip(table["clip_id"].to_pylist(), table["object_id"].to_pylist())))
    parts = f" ({objects} {'object' if objects == 1 else 'objects'}; one cut in parts where it jumps makes a crop per part)" if objects != table.num_rows else ""
    return (
        f"{counted(table.num_rows, 'crop')} of {_farm_camera(provenance)}: one per object and clip, over {counted(clips, 'clip')}{parts}; "
        f"they show {counted(tracks, 'animal')} (tracks: an animal's crops share its `track_id`, listed in the tracks table)"
    )


def crop_pages_metadata(links: Links, **filters) -> dict:
    """A link to the crop pages' list with ``filters`` (nothing where no pages address is set)."""
    url = links.crop_list(**filters)
    return {"crop_pages": dg.MetadataValue.url(url)} if url else {}


#: the preview's columns: (name, type, description)
_PREVIEW_COLUMNS = [
    ("crop_id", "string", "stable id of the crop (the catalog's crop_id)"),
    ("track", "int", "animal id through the video"),
    ("clip", "string", "clip the crop was cut from"),
    ("object", "string", "object id within the clip (and its part, where cut at a jump)"),
    ("source_frames", "string", "first and last source frame of the clip, and the step between crop frames"),
    ("present", "string", "frames with the animal / frames (presence ratio)"),
    ("page", "string", "the crop's page: its video, its frame on the clip, provenance, labels, datasets"),
]


def crops_preview(layout, links: Links, limit: int = PREVIEW_ROWS) -> dict:
    """The video's crops as a table in the UI (the first ``limit``, in manifest order), each
    with the address of its crop page, and how many are left out."""
    rows, rest = preview_rows(catalog_rows(pq.read_table(layout.crops_table)), links, limit)
    schema = dg.TableSchema(columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in _PREVIEW_COLUMNS])
    return {
        "crops_preview": dg.MetadataValue.table(records=[dg.TableRecord(r) for r in rows], schema=schema),
        "crops_not_previewed": dg.MetadataValue.int(rest),
    }


def crops_metadata(layout, crops: int, settings, provenance, damage: DecodeDamage, summary, contact_sheet_url: str | None = None, links: Links = Links()) -> dict:
    reach = (summary.scene_speed or {}).get("reach_px")
    return {
        "summary": dg.MetadataValue.md(crops_summary(layout, provenance)),
        **crop_pages_metadata(links, video=provenance.video_id),
        **({"contact_sheet_url": dg.MetadataValue.url(contact_sheet_url)} if contact_sheet_url else {}),
        **table_metadata(layout.crops_table, CROPS_SCHEMA, crops),
        "crops": crops,
        "crops_dir": dg.MetadataValue.path(str(layout.crops_dir)),
        **tracks_metadata(layout.tracks_table),
        "crop_size": settings.crop_size,
        "settings": dg.MetadataValue.json(record(settings)),
        "steady_windows": dg.MetadataValue.json(
            {"fixed_windows": summary.fixed_windows, "jitter_px": round(summary.jitter_px, 2), "scene_reach_px_per_frame": round(reach[0], 2) if reach else None,
             "jumps_cut": summary.jumps, "objects_cut": len(summary.split_objects)}
        ),
        "segmenter": provenance.segmenter,
        "farm": dg.MetadataValue.text(provenance.farm or ""),
        "camera": dg.MetadataValue.text(provenance.camera or ""),
        SOURCE_SHA256: provenance.source_sha256,
        **damage_metadata(damage),
        **crops_preview(layout, links),
    }


def previews_metadata(layout, sheet, clips: int, url: str | None = None) -> dict:
    where = "the full PNG at *contact_sheet_url*" if url else "the full PNG at *preview_path*"
    shown = f"{counted(sheet.tiles, 'clip')} shown" + (f" of {clips}" if sheet.tiles != clips else "")
    summary = (
        f"{counted(sheet.objects, 'object')} drawn on the middle frame of each of {shown}: an object counts where it is in view on "
        f"that frame; those clips hold {counted(sheet.clip_objects, 'object')} in all (`object_crops` makes a crop of each, one per part "
        f"where an object is cut at a jump). The thumbnail is under *preview* (Show Markdown), {where}."
    )
    return {
        **image_metadata(layout.contact_sheet, sheet.thumbnail_jpeg, summary, url),
        "tiles": sheet.tiles, "objects": sheet.objects, "objects_in_clips_shown": sheet.clip_objects,
    }
