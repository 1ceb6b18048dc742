import os
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.media.files import atomic_dir, atomic_file
from vitcow_assets.media.hashing import sha256_file, table_content_sha256
from vitcow_assets.media.parquet import ParquetSink
import concurrent.futures

from vitcow_assets.media.video import EncoderSettings, VideoError, VideoWriter, iter_frames, probe_video
from vitcow_testbed.synthetic import render


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


def _crops_like(path, run_id: str, rows=(0, 1, 2), prompt="cow", row_group_size=2):
    schema = pa.schema(
        [pa.field("object_id", pa.int32(), metadata={"description": "object"}), pa.field("run_id", pa.string())],
        metadata={"vitcow.prompt": prompt, "vitcow.run_id": run_id},
    )
    table = pa.table({"object_id": list(rows), "run_id": [run_id] * len(rows)}, schema=schema)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_table_content_sha256_sets_the_run_aside_and_nothing_else(tmp_path):
    """Two runs that wrote the same rows: the files' bytes differ (their run ids), their
    content digests do not; another row, another value or other provenance does."""
    first = _crops_like(tmp_path / "a.parquet", "run-aaaa")
    again = _crops_like(tmp_path / "b.parquet", "run-bbbb")
    assert sha256_file(first) != sha256_file(again)
    assert table_content_sha256(first) == table_content_sha256(again)
    digest = table_content_sha256(first)
    assert table_content_sha256(_crops_like(tmp_path / "c.parquet", "run-aaaa", rows=(0, 1, 3))) != digest
    assert table_content_sha256(_crops_like(tmp_path / "d.parquet", "run-aaaa", rows=(0, 1))) != digest
    assert table_content_sha256(_crops_like(tmp_path / "e.parquet", "run-aaaa", prompt="sheep")) != digest


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


def test_x264_simd_cap_names_a_level_only_where_the_cpu_has_more():
    capped = EncoderSettings()
    assert capped.x264_options(frozenset({"sse2", "ssse3", "avx2", "avx512f"})) == "asm=AVX2"
    assert capped.x264_options(frozenset({"sse2", "ssse3", "avx2"})) == ""  # nothing above the cap: x264's own choice
    assert capped.x264_options(frozenset()) == ""  # no x86 flags known (another OS or CPU)
    assert EncoderSettings(x264_params="keyint=5").x264_options(frozenset({"avx512f"})) == "keyint=5:asm=AVX2"
    assert EncoderSettings(x264_params="asm=SSE2").x264_options(frozenset({"avx512f"})) == "asm=SSE2"
    assert EncoderSettings(simd_cap=None).x264_options(frozenset({"avx512f"})) == ""
    with pytest.raises(ValueError, match="simd_cap"):
        EncoderSettings(simd_cap="AVX512")


def _textured_frames(count: int = 10, size: int = 224) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return [np.ascontiguousarray(np.roll(base, 3 * k, axis=1)) for k in range(count)]


def test_encoded_bytes_are_the_same_every_time_and_at_every_simd_level(tmp_path):
    """The same frames encoded 24 times on a pool (each file's memory laid out differently)
    give one set of bytes, and they are x264's at SSSE3: on a CPU with AVX-512, whose x264
    code gives other (and not always the same) bytes, the default cap holds it to AVX2."""
    frames = _textured_frames()

    def encode(name: str, settings: EncoderSettings = EncoderSettings()) -> bytes:
        path = tmp_path / f"{name}.mp4"
        with VideoWriter(path, 224, 224, 10.0, settings) as writer:
            for frame in frames:
                writer.write(frame)
        return path.read_bytes()

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        encoded = set(pool.map(encode, [f"f{'x' * (i % 5)}{i}" for i in range(24)]))
    assert len(encoded) == 1
    assert encoded == {encode("ssse3", EncoderSettings(x264_params="asm=SSSE3"))}
