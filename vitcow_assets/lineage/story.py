"""A crop's whole story, assembled from what is stored about it: where it came from (source
bytes, farm, camera, time, clip, frames), what found it (object, track, segmenter,
checkpoint, prompt and where the prompt came from), what wrote it (code version, runs), the
labels it got and their history, the dataset builds that hold it, and where each of these
shows in the Dagster UI.

``crop_story(...)`` returns a JSON-able dict that the crop page renders as it is (and
serves as JSON): sections of rows, each row ``{"field", "label", "value", "href", "note"}``
where ``field`` names the crops-manifest (or catalog) column the value is, so anyone can
check a row against the table; ``value`` is the column's value as text (``value_text``).

Pure: dicts in, dicts out; the links come from ``lineage.links``.
"""

import datetime as dt
import json

from vitcow_assets.core.prompts import plan_from_json
from vitcow_assets.lineage.links import PARTITION_ASSETS, Links, crop_path, list_path
from vitcow_assets.lineage.records import CropRecords

#: where a checkpoint's sha256 is looked for: the crops manifest's and catalog's column, the
#: masks table's metadata key
CHECKPOINT_SHA256 = "model_checkpoint_sha256"
MASKS_CHECKPOINT_SHA256 = "checkpoint_sha256"
NOT_RECORDED = "not recorded: these crops were made before checkpoint hashes were kept"
PROMPT_SOURCES = {
    "default": "the default prompt (VITCOW_PROMPT; no prompt file beside the footage)",
    "run config": "the run's config (prompts: prompt, or vitcow run --prompt)",
}


def value_text(value) -> str:
    """A column's value as the page shows it: text as it is, numbers as Python writes them,
    times in ISO 8601 (to the second), lists as JSON, None as an empty string."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _row(label: str, value, field: str | None = None, href: str | None = None, note: str = "") -> dict:
    return {"field": field, "label": label, "value": value_text(value), "href": href, "note": note}


def _col(row: dict, name: str, label: str | None = None, href: str | None = None, note: str = "") -> dict:
    return _row(label or name.replace("_", " "), row.get(name), name, href, note)


def _windows_note(manifest: dict | None) -> str:
    windows = [w for w in (manifest or {}).get("window_xyxy") or [] if w is not None]
    if not windows:
        return "not recorded"
    if all(w == windows[0] for w in windows):
        return f"fixed: {list(windows[0])} (x1, y1, x2, y2 in source pixels)"
    return f"moves with the animal: {list(windows[0])} first, {list(windows[-1])} last (source pixels)"


def _crop_section(records: CropRecords) -> dict:
    row, manifest = records.catalog, records.manifest or {}
    rows = [
        _col(row, "crop_id", "crop id"),
        _col(row, "crop_path", "crop video"),
        _col(row, "frames", note=f"{row['duration_s']:.2f} s at {row['fps']:g} fps"),
        _col(row, "frames_present", "frames with the animal", note=f"presence {row['presence_ratio']:.2f}"),
        _col(row, "part", note="a later part of an object cut where it jumped" if row["part"] else ""),
        _row("crop window", _windows_note(manifest)),
    ]
    rows += [_col(manifest, n) for n in ("crop_size", "margin", "mask_background") if n in manifest]
    rows += [_row("trimmed copy", t["trimmed_path"], note=f"frames {t['start_frame']}–{t['end_frame']}") for t in records.trimmed]
    return {"title": "Crop", "rows": rows}


def _source_section(records: CropRecords, links: Links) -> dict:
    row, raw = records.catalog, records.raw_video or {}
    video = raw.get("video") or {}
    rows = [
        _col(row, "video_id", "video (partition)", links.asset_partition("raw_video", row["video_id"])),
        _col(row, "source_path", "source path"),
        _col(row, "source_uri", "source URI"),
        _col(row, "source_sha256", "source sha256"),
        _col(row, "farm"),
        _col(row, "camera"),
        _col(row, "recorded_at", "recording start", note="camera-local time, from the path"),
    ]
    if raw:
        probe = f"{video.get('codec')} {video.get('width')}×{video.get('height')} at {video.get('fps')} fps, {raw.get('frame_count')} frames"
        rows += [_row("source video", probe, note=f"{raw.get('size_bytes')} bytes"), _row("stored copy", raw.get("stored_path")),
                 _row("registered at", raw.get("registered_at"))]
    return {"title": "Source", "rows": rows}


def _crop_start(row: dict, clip: dict) -> str | None:
    recorded = row.get("recorded_at")
    if not isinstance(recorded, dt.datetime) or clip.get("start_time_s") is None:
        return None
    return (recorded + dt.timedelta(seconds=clip["start_time_s"])).isoformat(timespec="seconds")


def _clip_section(records: CropRecords, links: Links) -> dict:
    row, clip = records.catalog, records.clip or {}
    rows = [
        _col(row, "clip_id", "clip", links.asset_partition("clips", row["video_id"])),
        _col(row, "source_frame_start", "first source frame"),
        _col(row, "source_frame_end", "last source frame", note="inclusive"),
        _col(row, "frame_step", "frame step", note="source frames between crop frames"),
    ]
    if clip:
        rows += [_row("clip file", clip.get("clip_path") or "", note="" if clip.get("clip_path") else "not written (vitcow run --no-clip-files)"),
                 _row("time in the source", f"{clip['start_time_s']:.2f}–{clip['end_time_s']:.2f} s")]
        start = _crop_start(row, clip)
        if start:
            rows.append(_row("crop starts at", start, note="recording start + time in the source"))
    return {"title": "Clip and frames", "rows": rows}


def _animal_section(records: CropRecords, track: list[dict]) -> dict:
    row = records.catalog
    ids = [t["crop_id"] for t in track]
    place = f"crop {ids.index(row['crop_id']) + 1} of {len(ids)} of this animal" if row["crop_id"] in ids else ""
    return {"title": "Animal", "rows": [
        _col(row, "object_id", "object", note="id within the clip"),
        _col(row, "track_id", "track", list_path(video=row["video_id"], track=row["track_id"]), note=place),
    ]}


def _checkpoint_row(records: CropRecords) -> dict:
    for source in (records.manifest or {}, records.catalog):
        if source.get(CHECKPOINT_SHA256):
            return _col(source, CHECKPOINT_SHA256, "checkpoint sha256")
    if (records.masks or {}).get(MASKS_CHECKPOINT_SHA256):
        return _row("checkpoint sha256", records.masks[MASKS_CHECKPOINT_SHA256], note="from the masks table's metadata")
    no_weights = not records.catalog.get("model_checkpoint")
    return _row("checkpoint sha256", "", CHECKPOINT_SHA256, note="no checkpoint: this segmenter has no weights" if no_weights else NOT_RECORDED)


def _prompt_rows(records: CropRecords) -> list[dict]:
    row, masks, plan = records.catalog, records.masks or {}, records.prompt_plan
    rows = [_col(row, "prompt", note="what found the object")]
    if masks.get("prompt"):
        rows.append(_row("prompt asked", masks["prompt"], note="the masks table's metadata"))
    if plan is not None:
        source = plan.get("source", "")
        where = PROMPT_SOURCES.get(source, f"the prompt file {source}")
        fingerprint = plan_from_json(json.dumps(plan)).fingerprint()
        stale = masks.get("prompt_plan") not in (None, fingerprint)
        rows.append(_row("prompt from", where, note=f"plan {fingerprint}" + (" (changed since the masks were made: they are stale)" if stale else "")))
    return rows


def _model_section(records: CropRecords) -> dict:
    row, masks = records.catalog, records.masks or {}
    rows = [_col(row, "segmenter"), _col(row, "model_checkpoint", "checkpoint", note="" if row.get("model_checkpoint") else "none"), _checkpoint_row(records)]
    rows += _prompt_rows(records)
    settings = {k: v for k, v in masks.items() if k.endswith(".settings")}
    rows += [_row(f"{k.split('.')[0]} settings", v, note="the masks table's metadata") for k, v in sorted(settings.items())]
    return {"title": "Model and prompt", "rows": rows}


def _code_section(records: CropRecords, links: Links) -> dict:
    row, masks = records.catalog, records.masks or {}
    rows = [_col(row, "code_version", "code version"), _col(row, "run_id", "run (crops)", links.run(row["run_id"]))]
    if masks.get("run_id"):
        rows.append(_row("run (masks)", masks["run_id"], href=links.run(masks["run_id"]), note="" if masks["run_id"] != row["run_id"] else "the same run"))
    return {"title": "Code and runs", "rows": rows}


def dagster_links(records: CropRecords, links: Links) -> list[dict]:
    """The Dagster UI pages of the crop: its run(s) and its video's partition of each asset."""
    row, masks = records.catalog, records.masks or {}
    out = [{"label": "run that wrote the crop", "href": links.run(row["run_id"]), "text": row["run_id"]}]
    if masks.get("run_id") and masks["run_id"] != row["run_id"]:
        out.append({"label": "run that wrote the masks", "href": links.run(masks["run_id"]), "text": masks["run_id"]})
    for asset in reversed(PARTITION_ASSETS):
        out.append({"label": f"{asset} partition", "href": links.asset_partition(asset, row["video_id"]), "text": f"{asset} · {row['video_id']}"})
    return out


def _segment(event: dict) -> str:
    return "" if event.get("start_frame") is None else f"{event['start_frame']}–{event['end_frame']}"


def label_rows(current: list[dict], history: list[dict]) -> dict:
    """The crop's current labels (one per annotator) and every label event, oldest first."""
    keep = ("annotator", "label", "labelled_at", "source")
    return {
        "current": [{**{k: value_text(e.get(k)) for k in keep}, "segment": _segment(e)} for e in current],
        "history": [{**{k: value_text(e.get(k)) for k in ("event_id", "kind", "undoes", *keep)}, "segment": _segment(e)} for e in history],
    }


def track_rows(track: list[dict], crop_id: str) -> list[dict]:
    """Every crop of the animal (by first source frame), this one marked."""
    return [
        {"crop_id": t["crop_id"], "clip_id": t["clip_id"], "source_frames": f"{t['source_frame_start']}–{t['source_frame_end']}",
         "presence": f"{t['presence_ratio']:.2f}", "current": t["crop_id"] == crop_id, "href": crop_path(t["crop_id"])}
        for t in track
    ]


def dataset_rows(builds: list[dict]) -> list[dict]:
    """The dataset builds holding the crop (``lineage.builds.builds_of``), each with a link
    to the list of its crops."""
    return [{**b, "href": list_path(dataset=b["fingerprint"])} for b in builds]


def context_frame(records: CropRecords) -> int:
    """The crop frame the context view shows first: the middle one of the frames where the
    animal was found (the middle frame when none is recorded)."""
    present = (records.manifest or {}).get("present") or []
    found = [i for i, p in enumerate(present) if p]
    return found[len(found) // 2] if found else records.catalog["frames"] // 2


def crop_story(records: CropRecords, track: list[dict], current: list[dict], history: list[dict], builds: list[dict], links: Links) -> dict:
    """The crop's story (module docstring); ``track``: catalog rows of its animal."""
    row = records.catalog
    return {
        "crop_id": row["crop_id"],
        "title": f"{row['video_id']} · {row['clip_id']} · track {row['track_id']}",
        "video": {"fps": row["fps"], "frames": row["frames"], "context_frame": context_frame(records)},
        "sections": [
            _crop_section(records), _source_section(records, links), _clip_section(records, links), _animal_section(records, track),
            _model_section(records), _code_section(records, links),
        ],
        "dagster": dagster_links(records, links),
        "track": track_rows(track, row["crop_id"]),
        "labels": label_rows(current, history),
        "datasets": dataset_rows(builds),
        "missing": list(records.missing),
    }
