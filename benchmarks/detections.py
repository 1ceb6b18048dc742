"""Detections the timed paths share: motion-backend masks computed once per input, read back
as boxes, and the crop images of one object cut with the project's own geometry."""

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks.inputs import VIDEO_ID, Input
from vitcow_assets.core.crop_windows import frame_windows
from vitcow_assets.core.geometry import extract_crop
from vitcow_assets.core.prompts import text_plan
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.stages.cropping import CropSettings
from vitcow_assets.stages.segmentation import MaskJob, SegmentationSummary, segment_clips

PROMPT = "person"

# clip_id -> object_id -> clip_frame -> xyxy
Boxes = dict[str, dict[int, dict[int, np.ndarray]]]


def compute_masks(inp: Input, out: Path) -> SegmentationSummary:
    """Motion-backend detections of every clip into ``out`` (``segment_clips``)."""
    segmenter = MotionSegmenter()

    @contextlib.contextmanager
    def open_session(frames):
        with segmenter.start_session(frames) as session:
            yield session

    return segment_clips(MaskJob(inp.path, VIDEO_ID, inp.clips, text_plan(PROMPT), segmenter.name, open_session, out))


def detection_boxes(masks: Path) -> Boxes:
    """``clip_id -> object_id -> clip_frame -> xyxy`` from the masks table."""
    cols = pq.read_table(masks, columns=["clip_id", "clip_frame", "object_id", "x1", "y1", "x2", "y2"]).to_pydict()
    boxes: Boxes = {}
    for i, clip_id in enumerate(cols["clip_id"]):
        xyxy = np.array([cols["x1"][i], cols["y1"][i], cols["x2"][i], cols["y2"][i]], np.float32)
        boxes.setdefault(clip_id, {}).setdefault(cols["object_id"][i], {})[cols["clip_frame"][i]] = xyxy
    return boxes


def crop_images(frames: Iterable[np.ndarray], boxes: dict[int, np.ndarray], crop: CropSettings) -> Iterator[np.ndarray]:
    """One object's crop image per clip frame, as the project cuts it with per-frame windows
    (``core.crop_windows.frame_windows`` + ``extract_crop``); a black image where the object
    is absent."""
    size = crop.crop_size
    black = np.zeros((size, size, 3), np.uint8)
    for clip_frame, frame in enumerate(frames):
        xyxy = boxes.get(clip_frame)
        if xyxy is None:
            yield black
            continue
        window = frame_windows(np.asarray([xyxy], np.float64), size, crop.margin)[0]
        yield extract_crop(frame, tuple(int(v) for v in window), size)
