"""The one-line summaries the UI shows first: counts in the right number, and whose footage."""

import pyarrow as pa

from vitcow_assets.defs.metadata import counted, crops_summary
from vitcow_assets.footage.layout import VideoLayout
from vitcow_assets.media.parquet import write_table
from vitcow_assets.stages.cropping import CropProvenance


def _provenance(farm, camera) -> CropProvenance:
    return CropProvenance(video_id="v", source_path="/x.mp4", source_sha256="0" * 64, segmenter="motion", model_checkpoint=None,
                          code_version="0.1.0", run_id="r", farm=farm, camera=camera, recorded_at=None, source_uri="file:///x.mp4")


def _layout(tmp_path, rows) -> VideoLayout:
    layout = VideoLayout(tmp_path)
    write_table(layout.crops_table, pa.Table.from_pylist(rows, pa.schema([("clip_id", pa.string()), ("object_id", pa.int64()), ("track_id", pa.int64())])))
    return layout


def test_counts_take_the_noun_in_the_right_number():
    assert [counted(n, "clip") for n in (0, 1, 2)] == ["**0 clips**", "**1 clip**", "**2 clips**"]
    assert counted(1, "animal") == "**1 animal**" and counted(3, "try", "tries") == "**3 tries**"


def test_the_crops_summary_names_farm_and_camera_and_says_one_clip(tmp_path):
    # one clip: object 0 cut in two parts at a jump (two crops), object 1; two animals
    layout = _layout(tmp_path, [{"clip_id": "c00000", "object_id": 0, "track_id": 0}, {"clip_id": "c00000", "object_id": 0, "track_id": 0},
                                {"clip_id": "c00000", "object_id": 1, "track_id": 1}])
    summary = crops_summary(layout, _provenance("FARM_A", "D01"))
    assert summary.startswith("**3 crops** of farm **FARM_A**, camera **D01**: one per object and clip, over **1 clip** (2 objects;")
    assert "they show **2 animals**" in summary and "1 clips" not in summary


def test_the_crops_summary_says_when_the_path_names_no_farm(tmp_path):
    layout = _layout(tmp_path, [{"clip_id": "c00000", "object_id": 0, "track_id": 0}, {"clip_id": "c00001", "object_id": 0, "track_id": 0}])
    summary = crops_summary(layout, _provenance(None, None))
    assert summary.startswith("**2 crops** of farm and camera unknown (the path does not say")
    assert "over **2 clips**; they show **1 animal**" in summary and "objects;" not in summary  # no parts: nothing to explain
