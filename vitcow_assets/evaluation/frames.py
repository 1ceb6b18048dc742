"""A frame-level view of a dataset's splits for image classifiers (the seed's YOLO
baseline): which frames of which crop go where.

One row per (crop, frame index): the crop's split and class, and the image's path in the
export, ``<split>/<class>/<crop_id>_f<frame:04d>.jpg`` (Ultralytics' classification layout:
``train``, ``val``, ``test`` folders of one folder per class), so a frame's file name alone
names its crop and frame (``predictions.FRAME_NAME``: what the per-frame importer reads).
The frames are every frame of the crop file (a trimmed copy where the label marks a
segment), or ``frames_per_crop`` of them evenly spaced from first to last. The held-out
farm stays the test split: the image classifier is scored on the same crops as the video
models.

Pure: a pyarrow table in, a pyarrow table out.
"""

import numpy as np
import pyarrow as pa

from vitcow_assets.core.tables import field

FRAME_FIELDS = [
    field("image", pa.string(), "the frame's JPEG, relative to the export folder: <split>/<class>/<crop_id>_f<frame>.jpg"),
    field("split", pa.string(), "train, val or test (the dataset's split of the crop)"),
    field("class_index", pa.int32(), "class index (line of class_mapping.txt)"),
    field("class_name", pa.string(), "class name"),
    field("crop_id", pa.string(), "the crop (the catalog's crop_id)"),
    field("crop_path", pa.string(), "the video the frame was decoded from"),
    field("frame_index", pa.int32(), "frame of crop_path (from 0)"),
]
FRAME_SCHEMA = pa.schema(FRAME_FIELDS)


def frame_indices(frames: int, per_crop: int) -> list[int]:
    """Every frame of a ``frames``-frame crop (``per_crop`` 0), or ``per_crop`` of them evenly
    spaced from the first to the last (each once)."""
    if frames < 1:
        return []
    if per_crop <= 0 or per_crop >= frames:
        return list(range(frames))
    return sorted({int(round(x)) for x in np.linspace(0, frames - 1, per_crop)})


def image_name(split: str, class_name: str, crop_id: str, frame: int) -> str:
    if not class_name or "/" in class_name or class_name in (".", ".."):
        raise ValueError(f"class {class_name!r} cannot be a folder name")
    return f"{split}/{class_name}/{crop_id}_f{frame:04d}.jpg"


def frame_plan(splits: pa.Table, classes, per_crop: int = 0) -> pa.Table:
    """The frame rows (``FRAME_SCHEMA``) of every crop of ``splits`` (``crop_id``,
    ``crop_path``, ``class_index``, ``split``, ``frames``), by split, crop and frame."""
    classes = list(classes)
    for name in classes:  # every class gets a folder, with crops or not
        image_name("train", name, "", 0)
    rows = []
    crops = sorted(splits.select(["split", "crop_id", "crop_path", "class_index", "frames"]).to_pylist(), key=lambda r: (r["split"], r["crop_id"]))
    for crop in crops:
        name = classes[crop["class_index"]]
        for frame in frame_indices(int(crop["frames"]), per_crop):
            rows.append({"image": image_name(crop["split"], name, crop["crop_id"], frame), "split": crop["split"], "class_index": crop["class_index"],
                         "class_name": name, "crop_id": crop["crop_id"], "crop_path": crop["crop_path"], "frame_index": frame})
    return pa.Table.from_pylist(rows, schema=FRAME_SCHEMA)
