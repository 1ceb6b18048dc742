"""Unusual but valid footage works; invalid footage fails alone, in one line, leaving nothing.

Documented outcomes (README, "What happens when footage is bad"):
- a video shorter than one clip gives one shorter clip;
- a truncated file is decoded as far as it goes: complete clips are kept, the rest dropped;
  a file whose container cannot be opened at all (e.g. an MP4 cut before its index) fails.
"""

import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.core.masks import decode_mask
from vitcow_assets.media.video import VideoError, probe_video
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.registry import Registry
from vitcow_assets_tests.helpers import materialize_partition, register, run_cli, truth_recall
from vitcow_testbed.synthetic import (
    DEFAULT_OBJECTS,
    MovingBox,
    truth_mask,
    write_audio_only,
    write_video,
)

FAST = (MovingBox(start=(10, 60), velocity=(15.0, 0.0), size=(36, 36), colour=(255, 230, 60)),)
SMALL = (MovingBox(start=(5, 30), velocity=(1.0, 0.0), size=(20, 16), colour=(255, 230, 60)),)


def _process(video, tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        result = materialize_partition(key, home, instance, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
    layout = StorageRoot(home).video(key)
    return layout, pq.read_table(layout.clips_table), pq.read_table(layout.masks_table), pq.read_table(layout.crops_table)


def _assert_crops_complete(clips, crops):
    frames = dict(zip(clips["clip_id"].to_pylist(), clips["frames"].to_pylist()))
    assert crops.num_rows >= 1
    for row in crops.to_pylist():
        info = probe_video(row["crop_path"])
        assert (info.width, info.height, info.frame_count) == (224, 224, frames[row["clip_id"]])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("étable vache 1.avi", {"codec": "mpeg4", "pix_fmt": "yuv420p"}),
        ("牛舍 camera.mkv", {"pix_fmt": "yuv444p"}),
        ("barn 10bit.mov", {"codec": "libx265", "pix_fmt": "yuv420p10le"}),
        ("h264 10bit.mp4", {"codec": "libx264", "pix_fmt": "yuv420p10le"}),
        ("odd size.mp4", {"width": 161, "height": 97, "objects": SMALL}),
    ],
)
def test_unusual_valid_footage_is_processed(tmp_path, name, kwargs):
    video = write_video(tmp_path / name, frames=84, **kwargs)
    layout, clips, masks, crops = _process(video, tmp_path)
    assert clips.num_rows == 1
    # every object is found where it really is, in most frames, whatever the codec
    objects = kwargs.get("objects", DEFAULT_OBJECTS)
    recall = truth_recall(masks, objects, kwargs.get("width", 320), kwargs.get("height", 240))
    assert min(recall.values()) >= 0.8, recall
    _assert_crops_complete(clips, crops)
    assert not list(layout.root.rglob(".tmp-*"))


def test_rotated_footage_is_segmented_and_cropped_as_displayed(tmp_path):
    video = write_video(tmp_path / "phone.mp4", frames=84, rotation=90)
    layout, clips, masks, crops = _process(video, tmp_path)
    rows = masks.filter(dg_eq(masks, "source_frame", 0)).to_pylist()
    assert {(r["frame_width"], r["frame_height"]) for r in rows} == {(240, 320)}
    for obj in DEFAULT_OBJECTS:
        truth = np.rot90(truth_mask(obj, 0, 320, 240))  # counter-clockwise, as displayed
        assert max(mask_iou(decode_mask(r["mask_rle"]), truth) for r in rows) > 0.8
    _assert_crops_complete(clips, crops)


def dg_eq(table, column, value):
    import pyarrow.compute as pc

    return pc.equal(table[column], value)


def test_variable_frame_rate_clip_times_come_from_timestamps(tmp_path):
    pts = [i * 10 + (i % 3) * 3 for i in range(170)]  # units of 1/100 s
    video = write_video(tmp_path / "vfr.mp4", frames=170, frame_pts=pts)
    _, clips, _, crops = _process(video, tmp_path)
    rows = clips.to_pylist()
    assert [(r["source_frame_start"], r["source_frame_end"]) for r in rows] == [(0, 76), (76, 152)]
    assert rows[0]["end_time_s"] == pytest.approx(pts[76] / 100)
    assert rows[1]["start_time_s"] == pytest.approx(pts[76] / 100)
    assert rows[1]["end_time_s"] == pytest.approx(pts[152] / 100)


def test_video_shorter_than_one_clip_gives_one_shorter_clip(tmp_path):
    video = write_video(tmp_path / "short.mp4", frames=10, objects=FAST)
    _, clips, _, crops = _process(video, tmp_path)
    assert clips.to_pylist()[0]["frames"] == 3
    _assert_crops_complete(clips, crops)


def test_truncated_file_keeps_the_complete_clips(tmp_path):
    full = write_video(tmp_path / "full.mkv", frames=170)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 70 // 100])
    full.unlink()
    _, clips, masks, crops = _process(cut, tmp_path)
    assert clips["clip_id"].to_pylist() == ["c00000"]
    assert set(masks["clip_id"].to_pylist()) == {"c00000"}
    _assert_crops_complete(clips, crops)


def test_invalid_inputs_fail_alone_with_one_line_and_leave_nothing(tmp_path):
    footage = tmp_path / "footage"
    footage.mkdir()
    good = write_video(footage / "good.mp4", frames=84)
    (footage / "empty.mp4").write_bytes(b"")
    (footage / "notes.mp4").write_text("meeting notes, not a video\n")
    write_audio_only(footage / "audio only.mp4")
    mp4 = write_video(tmp_path / "whole.mp4", frames=84).read_bytes()
    (footage / "cut before index.mp4").write_bytes(mp4[: len(mp4) // 2])
    home = tmp_path / "home"
    names = ["empty.mp4", "notes.mp4", "good.mp4", "audio only.mp4", "cut before index.mp4"]
    proc = run_cli(["run", *[str(footage / n) for n in names], "--backend", "motion", "--json", "--no-progress"], home)
    assert proc.returncode == 1, proc.stderr
    report = {os.path.basename(v["path"]): v for v in json.loads(proc.stdout)["videos"]}
    assert report["good.mp4"]["status"] == "success" and report["good.mp4"]["path"] == str(good)
    expected = {"empty.mp4": "cannot open", "notes.mp4": "cannot open", "audio only.mp4": "no video stream", "cut before index.mp4": "cannot open"}
    for name, reason in expected.items():
        entry = report[name]
        assert entry["status"] == "failed" and reason in entry["error"] and name in entry["error"]
        assert "\n" not in entry["error"] and "Errno" not in entry["error"]
    # Only the good video left anything under the storage root.
    assert [p.name for p in (home / "videos").iterdir()] == [report["good.mp4"]["partition_key"]]
    registry = home / "registry"
    assert [p.stem for p in registry.glob("*.json")] == [report["good.mp4"]["partition_key"]]
    # The registry's path and content indexes name the good video alone; no temporary is left.
    index_entries = [p for p in (registry / "index").rglob("*") if p.is_file() and p.name != "complete"]
    assert len(index_entries) == 2 and {p.parts[-3] for p in index_entries} == {"path", "sha256"}
    assert not any((registry / ".tmp").rglob("*"))
    assert {p.name for p in registry.iterdir()} <= {report["good.mp4"]["partition_key"] + ".json", "index", ".tmp"}
    assert not list(home.rglob(".tmp-*"))
    assert probe_video(report["good.mp4"]["crop_videos"][0]).frame_count == 20


def test_cli_waits_for_a_file_still_being_copied_and_takes_all_of_it(tmp_path):
    """The same settle rule as the sensor: a file named explicitly is waited for (one line
    says so), then processed whole; a file that keeps growing past the timeout fails."""
    import threading
    import time

    source = write_video(tmp_path / "src.mp4", frames=84).read_bytes()
    growing = tmp_path / "growing.mp4"
    growing.write_bytes(source[:1000])
    stop = threading.Event()

    def copy_slowly():
        offset = 1000
        with open(growing, "ab") as out:
            while not stop.is_set() and offset < len(source):
                out.write(source[offset : offset + 400])
                out.flush()
                offset += 400
                time.sleep(0.05)

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    try:
        proc = run_cli(["run", str(growing), "--backend", "motion", "--json", "--no-progress"], tmp_path / "home")
    finally:
        stop.set()
        writer.join()
    assert proc.returncode == 0, proc.stderr
    assert "waiting:" in proc.stderr and "still arriving" in proc.stderr
    (entry,) = json.loads(proc.stdout)["videos"]
    assert entry["status"] == "success"
    registration = Registry(StorageRoot(tmp_path / "home")).get(entry["partition_key"])
    assert registration.size == len(source) and registration.sha256 == hashlib.sha256(source).hexdigest()


def test_cli_gives_up_on_a_file_that_keeps_growing(tmp_path):
    import threading
    import time

    growing = tmp_path / "endless.mp4"
    write_video(growing, frames=10)
    stop = threading.Event()

    def append_forever():
        with open(growing, "ab") as out:
            while not stop.is_set():
                out.write(b"\0" * 100)
                out.flush()
                time.sleep(0.1)

    writer = threading.Thread(target=append_forever)
    writer.start()
    try:
        env = {"VITCOW_SETTLE_TIMEOUT_SECONDS": "3"}
        proc = run_cli(["run", str(growing), "--backend", "motion", "--json", "--no-progress"], tmp_path / "home", extra_env=env)
    finally:
        stop.set()
        writer.join()
    assert proc.returncode == 1
    (entry,) = json.loads(proc.stdout)["videos"]
    assert entry["status"] == "failed" and "still arriving after 3 s" in entry["error"]
    assert not (tmp_path / "home" / "videos").exists() and Registry(StorageRoot(tmp_path / "home")).all() == []


def _damage_middle_packet(video, packet_number: int) -> None:
    """Overwrite the first bytes of one packet (in file order) in the middle of ``video``."""
    import av

    with av.open(str(video)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    pos, _ = packets[packet_number]
    data = bytearray(video.read_bytes())
    data[pos : pos + 4] = b"\xff\xff\xff\xff"
    video.write_bytes(bytes(data))


def _ffprobe_frames(video) -> int | None:
    import shutil

    if shutil.which("ffprobe") is None:
        return None
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(video)],
        capture_output=True, text=True, timeout=120,
    )
    return int(out.stdout.strip())


def test_damaged_packet_in_the_middle_loses_one_frame_not_the_rest_of_the_file(tmp_path):
    from vitcow_assets.core.clips import ClipSettings, plan_clips
    from vitcow_assets.media.video import DecodeDamage, iter_frames

    video = write_video(tmp_path / "damaged.mp4", frames=795, width=160, height=120, pix_fmt="yuv420p", objects=SMALL)
    _damage_middle_packet(video, 400)
    damage = DecodeDamage()
    decoded = [index for index, _ in iter_frames(video, damage=damage)]
    lost = sorted(set(range(795)) - set(decoded))
    assert len(decoded) == 794 and len(lost) == 1 and 380 < lost[0] < 420  # a gap, not a shifted tail
    assert (damage.damaged_packets, damage.frames_lost) == (1, 1)
    reference = _ffprobe_frames(video)
    if reference is not None:
        assert len(decoded) == reference  # as many as FFmpeg's command line decodes
    print(f"damaged file: {len(decoded)} of 795 frames decoded (ffprobe: {reference}), lost frame {lost[0]}")

    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        result = materialize_partition(key, home, instance, raise_on_error=False)
        assert result.success
        planned = plan_clips(795, 10.0, ClipSettings())
        expected = [c.clip_id for c in planned if lost[0] not in c.source_frames]
        clips_event = next(e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("clips"))
        metadata = clips_event.materialization.metadata
        assert metadata["frames_lost"].value == 1 and metadata["damaged_packets"].value == 1
        warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    layout = StorageRoot(home).video(key)
    clips = pq.read_table(layout.clips_table)
    assert clips["clip_id"].to_pylist() == expected and len(expected) >= 8  # of 9
    assert set(pq.read_table(layout.masks_table)["clip_id"].to_pylist()) <= set(expected)
    _assert_crops_complete(clips, pq.read_table(layout.crops_table))
    damaged = [w for w in warnings if "damaged" in w]
    assert damaged and "1 frame(s) lost to 1 damaged packet(s)" in damaged[0]
    assert not any("ended" in w for w in warnings)
    print(f"clips kept: {len(expected)} of {len(planned)}; warning: {damaged[0]}")


DATA = Path(__file__).parents[1] / "data"


def test_file_whose_rewind_fails_gets_one_line_naming_it(tmp_path):
    """``seek_eperm.mp4``: a synthetic MP4 with 16 random bytes changed (its chunk offsets
    among them); seeking back in it fails with ``[Errno 1] Operation not permitted`` in
    FFmpeg. The probe no longer seeks, and whatever fails is one line naming the file."""
    video = tmp_path / "barn cam.mp4"
    video.write_bytes((DATA / "seek_eperm.mp4").read_bytes())
    with pytest.raises(VideoError) as failure:
        probe_video(video)
    message = str(failure.value)
    assert message.startswith("barn cam.mp4: ") and "\n" not in message and "Operation not permitted" not in message


def test_fuzzed_files_are_processed_or_fail_in_one_line_naming_the_file(tmp_path):
    """Random bytes changed in synthetic AVI (MPEG-4, MJPEG), MP4 and MKV files: probing,
    timestamps and decoding either work or raise a one-line VideoError naming the file."""
    import random

    from vitcow_assets.media.video import frame_times, iter_frames

    bases = {
        name: write_video(tmp_path / name, frames=40, width=96, height=64, codec=codec, pix_fmt=pix).read_bytes()
        for name, codec, pix in (("a.avi", "mpeg4", "yuv420p"), ("m.avi", "mjpeg", "yuvj420p"), ("h.mp4", "libx264", "yuv420p"), ("h.mkv", "libx264", "yuv420p"))
    }
    rng = random.Random(7)
    outcomes = {"processed": 0, "failed": 0}
    for i in range(120):
        name, data = rng.choice(sorted(bases.items()))
        data = bytearray(data)
        for _ in range(rng.choice([1, 4, 16])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        fuzzed = tmp_path / f"fuzz {i} {name}"
        fuzzed.write_bytes(bytes(data))
        try:
            probe_video(fuzzed)
            frame_times(fuzzed)
            sum(1 for _ in iter_frames(fuzzed))
            outcomes["processed"] += 1
        except VideoError as exc:
            assert str(exc).startswith(f"{fuzzed.name}: ") and "\n" not in str(exc)
            outcomes["failed"] += 1
    print(f"fuzzed files: {outcomes}")
    assert outcomes["processed"] > 60


def test_file_name_of_250_bytes_is_processed_end_to_end(tmp_path):
    """The prompt-file lookup beside it would exceed the file system's name limit (255)."""
    name = "étable " + "x" * 238 + ".mp4"
    assert len(name.encode()) == 250
    video = write_video(tmp_path / name, frames=84, width=160, height=120)
    proc = run_cli(["run", str(video), "--backend", "motion", "--json", "--no-progress"], tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (entry,) = json.loads(proc.stdout)["videos"]
    assert entry["status"] == "success" and entry["crop_videos"]
    assert len(entry["partition_key"]) <= 100
