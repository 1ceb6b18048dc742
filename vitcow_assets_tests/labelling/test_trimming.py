"""Trimmed crops: frame-exact H.264 copies of a segment, with the same bytes every time."""

import numpy as np
import pyarrow as pa
import pytest

from vitcow_assets.labelling.snapshot import TRIM_SCHEMA
from vitcow_assets.labelling.trimming import TrimError, render_trims, trim_crop
from vitcow_assets.media.video import iter_frames, probe_video
from vitcow_testbed.synthetic_catalog import frame_level, write_crop


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    return write_crop(tmp_path_factory.mktemp("crop") / "obj0000.mp4", frames=12)


def levels(path) -> list[float]:
    return [float(np.median(rgb)) for _, rgb in iter_frames(path)]  # the bar is a small part of the frame


def test_the_copy_holds_exactly_the_segments_frames(crop, tmp_path):
    out = trim_crop(crop, tmp_path / "t.mp4", 3, 7)
    assert out.frames == 5
    info = probe_video(out.path)
    assert (info.codec, info.frame_count, info.width, info.height) == ("h264", 5, 64, 64)
    assert info.fps == pytest.approx(probe_video(crop).fps)
    got = levels(out.path)
    source = levels(crop)
    # each kept frame matches its source frame and no other (levels are 18 apart)
    assert [min(range(12), key=lambda i: abs(source[i] - g)) for g in got] == [3, 4, 5, 6, 7]
    assert all(abs(g - frame_level(i)) <= 4 for g, i in zip(got, range(3, 8)))


def test_first_and_last_frames_and_the_same_bytes_twice(crop, tmp_path):
    a = trim_crop(crop, tmp_path / "a.mp4", 0, 0)
    assert probe_video(a.path).frame_count == 1
    one, two = trim_crop(crop, tmp_path / "b.mp4", 8, 11), trim_crop(crop, tmp_path / "c.mp4", 8, 11)
    assert one.path.read_bytes() == two.path.read_bytes()
    assert [round(v / 18) for v in levels(one.path)] == [round(frame_level(i) / 18) for i in range(8, 12)]


def test_a_segment_outside_the_crop_writes_nothing(crop, tmp_path):
    with pytest.raises(TrimError, match="obj0000.mp4: cannot trim .*frames 0..11"):
        trim_crop(crop, tmp_path / "x.mp4", 5, 12)
    assert list(tmp_path.iterdir()) == []


def test_render_trims_renders_a_plan(crop, tmp_path):
    plan = pa.Table.from_pylist(
        [{"crop_id": "a", "crop_path": str(crop), "start_frame": 2, "end_frame": 4, "trimmed_path": str(tmp_path / "a.mp4")},
         {"crop_id": "b", "crop_path": str(crop), "start_frame": 0, "end_frame": 9, "trimmed_path": str(tmp_path / "b.mp4")}],
        schema=TRIM_SCHEMA,
    )
    assert render_trims(plan)["frames"].to_pylist() == [3, 10]
    assert render_trims(plan, skip_existing=True)["frames"].to_pylist() == [3, 10]  # kept, counted from the files
    assert probe_video(tmp_path / "b.mp4").frame_count == 10
