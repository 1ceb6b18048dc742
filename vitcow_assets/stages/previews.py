"""Previews: a contact sheet per video, sampled clip frames with masks, boxes and ids drawn.

The PNG's bytes are a function of the source and the masks table: frames come from
``media.video`` (bit-exact colour conversion), drawing is integer, and the label colours are
computed here rather than by OpenCV's HSV conversion, whose SIMD path rounds some hues one
grey level differently from its plain one (29 of 180 hues), i.e. per machine.
"""

import colorsys
import dataclasses
import os

import cv2
import numpy as np
import pyarrow.parquet as pq

from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.video import iter_frames


def _colour(object_id: int) -> tuple[int, int, int]:
    """A bright colour per id: hue (id x 47) mod 180 in OpenCV's half-degree units, saturation
    220/255, full value (the same values OpenCV's HSV2RGB gives on this machine, for every hue)."""
    hue = (object_id * 47) % 180
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(hue / 180.0, 220 / 255.0, 1.0))


def draw_detections(rgb: np.ndarray, rows: list[dict]) -> np.ndarray:
    """Frame with each row's mask tinted, box drawn and id written: the track id (the same
    animal keeps its colour and number from clip to clip) where the rows have one."""
    out = rgb.copy()
    for row in rows:
        label = row["track_id"] if row.get("track_id", -1) >= 0 else row["object_id"]
        colour = np.array(_colour(label), np.float32)
        mask = decode_mask(row["mask_rle"])
        out[mask] = (0.5 * out[mask] + 0.5 * colour).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(row[k])) for k in ("x1", "y1", "x2", "y2"))
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), tuple(int(c) for c in colour), 2)
        cv2.putText(out, str(label), (x1 + 2, max(y1 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
        cv2.putText(out, str(label), (x1 + 2, max(y1 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, tuple(int(c) for c in colour), 1)
    return out


def sample_clips(clips: list[ClipWindow], count: int) -> list[ClipWindow]:
    if len(clips) <= count:
        return list(clips)
    return [clips[i] for i in np.linspace(0, len(clips) - 1, count).round().astype(int)]


@dataclasses.dataclass(frozen=True)
class ContactSheet:
    #: clips shown (one tile each) and objects drawn on them (those in view on each tile's frame)
    tiles: int
    objects: int
    #: objects of the clips shown, on any of their frames (what their crops are made of)
    clip_objects: int
    thumbnail_jpeg: bytes


def contact_sheet(
    source: str | os.PathLike,
    clips: list[ClipWindow],
    masks_path: str | os.PathLike,
    out_path: str | os.PathLike,
    tiles: int = 12,
    columns: int = 4,
    tile_width: int = 384,
) -> "ContactSheet":
    """Write a PNG contact sheet of the middle frame of up to ``tiles`` clips, with a small
    JPEG thumbnail of it (for the UI)."""
    chosen = sample_clips(clips, tiles)
    frames = {c.source_frames[len(c.source_frames) // 2]: c for c in chosen}
    rows_by_frame: dict[int, list[dict]] = {f: [] for f in frames}
    clip_objects = 0
    if frames:
        table = pq.read_table(masks_path, filters=[("source_frame", "in", list(frames))])
        for row in table.to_pylist():
            if frames.get(row["source_frame"]) is not None and row["clip_id"] == frames[row["source_frame"]].clip_id:
                rows_by_frame[row["source_frame"]].append(row)
        ids = pq.read_table(masks_path, columns=["clip_id", "object_id"], filters=[("clip_id", "in", [c.clip_id for c in chosen])])
        clip_objects = len(set(zip(ids["clip_id"].to_pylist(), ids["object_id"].to_pylist())))
    images = []
    for index, rgb in iter_frames(source, frames.keys()):
        tile = draw_detections(rgb, rows_by_frame[index])
        height = max(1, round(tile.shape[0] * tile_width / tile.shape[1]))
        tile = cv2.resize(tile, (tile_width, height), interpolation=cv2.INTER_AREA)
        label = f"{frames[index].clip_id} frame {index}: {len(rows_by_frame[index])} objects"
        cv2.putText(tile, label, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        images.append(tile)
    if not images:
        images = [np.zeros((tile_width * 9 // 16, tile_width, 3), np.uint8)]
    tile_h = max(i.shape[0] for i in images)
    n_rows = -(-len(images) // columns)
    sheet = np.zeros((n_rows * tile_h, min(columns, len(images)) * tile_width, 3), np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        sheet[r * tile_h : r * tile_h + img.shape[0], c * tile_width : (c + 1) * tile_width] = img
    bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
    with atomic_file(out_path) as tmp:
        ok, png = cv2.imencode(".png", bgr)
        tmp.write_bytes(png.tobytes())
    thumb_w = 480
    thumb = cv2.resize(bgr, (thumb_w, max(1, sheet.shape[0] * thumb_w // sheet.shape[1])), interpolation=cv2.INTER_AREA)
    _, jpeg = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 70])
    objects = sum(len(r) for r in rows_by_frame.values())
    return ContactSheet(tiles=len(chosen), objects=objects, clip_objects=clip_objects, thumbnail_jpeg=jpeg.tobytes())
