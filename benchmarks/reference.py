"""The reference approach, a separate baseline on purpose: OpenCV ``VideoCapture`` with a seek
per clip, every ``frame_step``-th frame written to an ``mp4v`` clip file; then, per (clip,
object), the clip file is decoded again and the object's crops (cut with the project's
per-frame ``frame_windows`` + ``extract_crop``) are written to an ``mp4v`` crop video."""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from benchmarks.detections import crop_images, detection_boxes
from benchmarks.inputs import Input
from benchmarks.timing import Stages, measure, mp4_mb
from vitcow_assets.core.clips import ClipWindow
from vitcow_assets.stages.cropping import CropSettings

MP4V = cv2.VideoWriter_fourcc(*"mp4v")


def read_frames(cap: cv2.VideoCapture, count: int) -> Iterator[np.ndarray]:
    """Up to ``count`` frames from ``cap``, fewer when the file ends."""
    for _ in range(count):
        ok, frame = cap.read()
        if not ok:
            return
        yield frame


def _write_clip(cap: cv2.VideoCapture, clip: ClipWindow, path: Path, fps: float) -> int:
    """Seek to the clip, write every ``frame_step``-th frame to ``path``; return frames written."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, clip.source_start)
    writer, written = None, 0
    for offset, frame in enumerate(read_frames(cap, clip.source_end - clip.source_start + 1)):
        if offset % clip.frame_step:
            continue
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), MP4V, fps, (width, height))
        writer.write(frame)
        written += 1
    if writer is not None:
        writer.release()
    return written


def reference_clips(inp: Input, out: Path) -> tuple[dict[str, Path], int]:
    """Clip files of every clip; return their paths by clip id and the frames written."""
    paths: dict[str, Path] = {}
    written = 0
    cap = cv2.VideoCapture(str(inp.path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open {inp.path}")
    try:
        for clip in inp.clips:
            path = out / f"{clip.clip_id}.mp4"
            frames = _write_clip(cap, clip, path, inp.clip_fps)
            if frames:
                paths[clip.clip_id] = path
                written += frames
    finally:
        cap.release()
    return paths, written


def _write_object_crop(clip_path: Path, clip: ClipWindow, boxes: dict, crop: CropSettings, path: Path, fps: float) -> int:
    """Decode the clip file again and write one object's crop video; return frames written."""
    size = crop.crop_size
    path.parent.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(clip_path))
    writer = cv2.VideoWriter(str(path), MP4V, fps, (size, size))
    frames = 0
    try:
        for image in crop_images(read_frames(cap, clip.frames), boxes, crop):
            writer.write(image)
            frames += 1
    finally:
        cap.release()
        writer.release()
    return frames


def reference_crops(inp: Input, clip_paths: dict[str, Path], masks: Path, crop: CropSettings, out: Path) -> tuple[int, int]:
    """Crop videos of every (clip, object); return the crops and crop frames written."""
    boxes = detection_boxes(masks)
    crops = frames = 0
    for clip in inp.clips:
        if clip.clip_id not in clip_paths:
            continue
        objects = boxes.get(clip.clip_id, {})
        for object_id in sorted(objects):
            path = out / clip.clip_id / f"obj{object_id:04d}.mp4"
            frames += _write_object_crop(clip_paths[clip.clip_id], clip, objects[object_id], crop, path, inp.clip_fps)
            crops += 1
    return crops, frames


def run_reference(inp: Input, masks: Path, crop: CropSettings, folder: Path) -> tuple[Stages, dict]:
    """One timed run of the reference (clip files, then crops) into ``folder``."""
    (folder / "clips").mkdir(parents=True)
    (folder / "crops").mkdir()
    s_clips, (paths, clip_frames) = measure(reference_clips, inp, folder / "clips")
    s_crops, (crops, crop_frames) = measure(reference_crops, inp, paths, masks, crop, folder / "crops")
    info = {"clip_files": len(paths), "clip_frames": clip_frames, "crops": crops, "crop_frames": crop_frames,
            "clip_mb": mp4_mb(folder / "clips"), "crop_mb": mp4_mb(folder / "crops")}
    return {"clips": s_clips, "crops": s_crops}, info
