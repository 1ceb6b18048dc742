import os
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.media.files import atomic_dir, atomic_file
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.parquet import ParquetSink
from vitcow_assets.media.video import VideoError, VideoWriter, iter_frames, probe_video
from vitcow_assets_tests.synthetic import render


def test_probe_synthetic_video(synthetic_video):
    info = probe_video(synthetic_video)
    assert (info.width, info.height, info.fps, info.frame_count) == (320, 240, 10.0, 100)
    assert info.codec == "h264" and info.duration_s == pytest.approx(10.0, abs=0.2)


def test_probe_rejects_non_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4"):
        probe_video(text)


def test_iter_frames_decodes_only_wanted_frames_in_order_and_exactly(synthetic_video):
    got = list(iter_frames(synthetic_video, [30, 2, 17]))
    assert [i for i, _ in got] == [2, 17, 30]
    for index, rgb in got:
        assert np.abs(rgb.astype(int) - render(index, 320, 240)).mean() < 2.0


def test_writer_writes_h264_and_is_atomic(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 161, 97, 5) as writer:
        for _ in range(7):
            writer.write(np.zeros((97, 161, 3), np.uint8))
        assert not out.exists()
    info = probe_video(out)
    assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 160, 96, 7)
    failed = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(failed, 64, 64, 5) as writer:
            writer.write(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [out]


def test_atomic_file_and_dir(tmp_path):
    target = tmp_path / "t.txt"
    with pytest.raises(ValueError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert not target.exists() and list(tmp_path.iterdir()) == []
    folder = tmp_path / "crops"
    folder.mkdir()
    (folder / "old.mp4").write_text("old")
    with atomic_dir(folder) as tmp:
        (tmp / "new.mp4").write_text("new")
        assert (folder / "old.mp4").exists()
    assert [p.name for p in folder.iterdir()] == ["new.mp4"]
    with pytest.raises(KeyError):
        with atomic_dir(folder) as tmp:
            (tmp / "partial.mp4").write_text("x")
            raise KeyError
    assert [p.name for p in folder.iterdir()] == ["new.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops"]


def test_parquet_sink_writes_row_groups_and_leaves_nothing_on_error(tmp_path):
    schema = pa.schema([("x", pa.int64())])
    path = tmp_path / "t.parquet"
    with ParquetSink(path, schema) as sink:
        sink.write(pa.table({"x": [1, 2]}))
        sink.write(pa.table({"x": [3]}))
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    assert pq.read_table(path)["x"].to_pylist() == [1, 2, 3]
    with pytest.raises(ZeroDivisionError):
        with ParquetSink(tmp_path / "bad.parquet", schema) as sink:
            sink.write(pa.table({"x": [1]}))
            1 / 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_next_write_sweeps_temporaries_of_an_interrupted_one(tmp_path):
    (tmp_path / ".tmp-0123abcd-t.txt").write_text("left by kill -9")
    (tmp_path / ".tmp-89abcdef-crops").mkdir()
    (tmp_path / ".tmp-89abcdef-crops" / "obj0000.mp4").write_text("partial")
    with atomic_file(tmp_path / "t.txt") as tmp:
        tmp.write_text("done")
    with atomic_dir(tmp_path / "crops") as tmp:
        (tmp / "obj0000.mp4").write_text("complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops", "t.txt"]


def test_sha256_file(tmp_path):
    (tmp_path / "keep.txt").write_text("hello")
    assert sha256_file(tmp_path / "keep.txt") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_writer_reencodes_decoded_frames_without_rgb_and_keeps_content(tmp_path, synthetic_video):
    out = tmp_path / "native.mp4"
    with VideoWriter(out, 320, 240, 2.5) as writer:
        for index, frame in iter_frames(synthetic_video, range(0, 40, 4), native=True):
            assert not isinstance(frame, np.ndarray)  # an av.VideoFrame, passed through
            writer.write(frame)
    info = probe_video(out)
    assert (info.frame_count, info.fps, info.pix_fmt) == (10, 2.5, "yuv420p")
    for k, rgb in iter_frames(out):
        assert np.abs(rgb.astype(int) - render(4 * k, 320, 240)).mean() < 3.0


def test_sweep_never_removes_a_live_writers_temporaries(tmp_path):
    """Temporaries name their writer (host, pid): those of a live process stay, those of a
    dead one (a real process that exited) go."""
    import subprocess
    import sys

    from vitcow_assets.runtime.processes import host_tag

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_dir = tmp_path / f".tmp-{host_tag()}-{live.pid}-aaaaaa-crops"
        dead_dir = tmp_path / f".tmp-{host_tag()}-{dead.pid}-bbbbbb-crops"
        other_host = tmp_path / f".tmp-ffffff-{dead.pid}-cccccc-crops"
        for folder in (live_dir, dead_dir, other_host):
            folder.mkdir()
            (folder / "obj0000.mp4").write_text("partial")
        with atomic_dir(tmp_path / "crops") as tmp:
            assert f"-{os.getpid()}-" in tmp.name
            (tmp / "obj0000.mp4").write_text("complete")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["crops", live_dir.name, other_host.name])
        assert (live_dir / "obj0000.mp4").read_text() == "partial"
    finally:
        live.kill()
        live.wait()
