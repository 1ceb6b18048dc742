"""The segmentation stage's threads: same rows with and without them, errors from any
thread reach the caller with every session closed and no thread left, queues bounded."""

import threading
import time

import pyarrow.parquet as pq
import pytest

from vitcow_assets.core.prompts import text_plan
from vitcow_assets.core.clips import ClipSettings, plan_clips
from vitcow_assets.media.video import probe_video
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets.stages import segmentation
from vitcow_assets.stages.threads import BackgroundWorker, Prefetcher
from vitcow_assets.stages.segmentation import MaskJob, segment_clips
from vitcow_testbed.fakes import FakeSegmenter


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vitcow-")]


def CountingSegmenter(fail_on: int | None = None, delay_s: float = 0.0) -> FakeSegmenter:
    """The motion segmenter, counting sessions opened and closed; ``fail_on`` makes that
    session's propagate raise; ``delay_s`` slows each session (a slow model)."""
    return FakeSegmenter(inner=MotionSegmenter(), fail_on=fail_on, delay_s=delay_s)


@pytest.fixture()
def clip_plan(synthetic_video):
    info = probe_video(synthetic_video)
    return plan_clips(info.frame_count, info.fps, ClipSettings(frames_per_clip=10, frame_step=2))


def _segment(video, clips, tmp_path, segmenter, name="masks.parquet", **kwargs):
    job = MaskJob(video, "v", clips, text_plan("cow"), "motion/v1", segmenter.open_session, tmp_path / name, **kwargs)
    return segment_clips(job)


def test_prefetch_gives_the_same_rows_as_one_thread(synthetic_video, clip_plan, tmp_path):
    prepared = []

    def prepare(frames):
        prepared.append(threading.current_thread().name)
        return frames

    seg = CountingSegmenter()
    threaded = _segment(synthetic_video, clip_plan, tmp_path, seg, "a.parquet", prepare=prepare, prefetch=2)
    inline = _segment(synthetic_video, clip_plan, tmp_path, CountingSegmenter(), "b.parquet", prefetch=0)
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.num_rows > 0 and a.equals(b)
    assert (threaded.clips, threaded.rows, threaded.objects) == (inline.clips, inline.rows, inline.objects) == (len(clip_plan), a.num_rows, inline.objects)
    assert set(prepared) == {"vitcow-decode"} and len(prepared) == len(clip_plan)  # converted off the caller's thread
    assert seg.opened == seg.closed == len(clip_plan)
    assert not _stage_threads()


def test_an_error_in_the_decode_thread_reaches_the_caller_with_sessions_closed(synthetic_video, clip_plan, tmp_path):
    calls = []

    def prepare(frames):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("cannot convert clip 3")
        return frames

    seg = CountingSegmenter()
    with pytest.raises(ValueError, match="cannot convert clip 3"):
        _segment(synthetic_video, clip_plan, tmp_path, seg, prepare=prepare, prefetch=1)
    assert seg.opened == seg.closed == 2  # the two clips before the failure, both closed
    assert not (tmp_path / "masks.parquet").exists()
    assert not _stage_threads()


def test_an_error_in_the_writer_reaches_the_caller_with_sessions_closed(synthetic_video, clip_plan, tmp_path, monkeypatch):
    real = segmentation.mask_rows
    written = []

    def failing_rows(*args, **kwargs):
        written.append(1)
        if len(written) > 15:  # inside the second clip (10 frames each)
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(segmentation, "mask_rows", failing_rows)
    seg = CountingSegmenter(delay_s=0.05)
    with pytest.raises(OSError, match="disk full"):
        _segment(synthetic_video, clip_plan, tmp_path, seg, prefetch=1)
    assert 2 <= seg.opened < len(clip_plan)  # stopped early, not after every clip
    assert seg.opened == seg.closed and seg.open_now == 0
    assert not (tmp_path / "masks.parquet").exists()
    assert not _stage_threads()


def test_an_error_in_the_model_stops_the_decode_and_writer_threads(synthetic_video, clip_plan, tmp_path):
    seg = CountingSegmenter(fail_on=2)
    with pytest.raises(RuntimeError, match="model failed"):
        _segment(synthetic_video, clip_plan, tmp_path, seg, prefetch=3)
    assert seg.opened == seg.closed == 2
    assert not (tmp_path / "masks.parquet").exists()
    assert not _stage_threads()


def test_decoded_clips_wait_in_a_bounded_queue_ahead_of_a_slow_model(synthetic_video, clip_plan, tmp_path):
    """At most ``prefetch`` clips wait, plus the one being made and the one in the model."""
    made = []
    ahead = []
    seg = CountingSegmenter(delay_s=0.1)

    def prepare(frames):
        made.append(1)
        return frames

    real_open = seg.open_session

    def open_session(frames):
        ahead.append(len(made) - seg.opened)
        return real_open(frames)

    seg.open_session = open_session
    summary = _segment(synthetic_video, clip_plan, tmp_path, seg, prepare=prepare, prefetch=1)
    assert len(clip_plan) >= 4
    assert max(ahead) <= 1 + 1 and max(ahead) >= 1  # work is done ahead, within the bound
    assert summary.timings["max_waiting_clips"] <= 2
    assert summary.timings["model"] > 0.1 * len(clip_plan) * 0.9


def test_prefetcher_bounds_items_ahead_and_closes_its_source_on_its_thread():
    produced, closed_on = [], []

    def make():
        try:
            for i in range(50):
                produced.append(i)
                yield i
        finally:
            closed_on.append(threading.current_thread().name)

    seen_ahead = []
    with Prefetcher(make, depth=2, name="vitcow-test") as items:
        for i, item in enumerate(items):
            time.sleep(0.002)
            seen_ahead.append(len(produced) - i - 1)
            assert item == i
            if i == 20:
                break  # the consumer stops early: the thread must stop too
    assert max(seen_ahead) <= 2 + 1
    assert closed_on == ["vitcow-test"] and len(produced) < 50
    assert not _stage_threads()


def test_background_worker_bounds_its_queue_and_reports_errors_at_the_next_submit():
    done = []

    def work(item):
        time.sleep(0.005)
        if item == 7:
            raise KeyError("item 7")
        done.append(item)

    submitted = 0
    with pytest.raises(KeyError, match="item 7"):
        with BackgroundWorker(work, depth=2, name="vitcow-test") as worker:
            for i in range(100):
                worker.submit(i)
                submitted += 1
                assert submitted - len(done) <= 2 + 2  # queued + in hand + this one
    assert submitted < 100 and done == list(range(7))
    assert not _stage_threads()


def test_a_caller_error_abandons_queued_work():
    done = []
    with pytest.raises(ZeroDivisionError):
        with BackgroundWorker(lambda item: (time.sleep(0.02), done.append(item)), depth=5, name="vitcow-test") as worker:
            for i in range(5):
                worker.submit(i)
            1 / 0
    assert len(done) < 5
    assert not _stage_threads()

