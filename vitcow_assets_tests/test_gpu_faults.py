"""Out of GPU memory in a session: one retry with the clip split in halves, sessions always closed.

The fake raises torch's real ``torch.cuda.OutOfMemoryError`` type.
"""

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vitcow_assets.core.prompts import text_plan  # noqa: E402
from vitcow_assets.core.detections import Detections  # noqa: E402
from vitcow_assets.segmenters.base import FrameResult  # noqa: E402
from vitcow_assets.stages.segmentation import ClipOutOfMemory, segment_clip_frames  # noqa: E402
from vitcow_assets.footage.layout import StorageRoot  # noqa: E402
from vitcow_assets_tests.helpers import run_with_segmenter  # noqa: E402


class FakeGpuSegmenter:
    """Finds one object per frame; raises CUDA OOM when a session holds more than ``fits`` frames."""

    name = "fake-gpu/v0"
    checkpoint = None
    uses_text_prompts = True

    def __init__(self, fits: int):
        self.fits = fits
        self.opened = 0
        self.closed = 0

    def start_session(self, frames):
        self.opened += 1
        outer = self

        class Session:
            def add_text_prompt(self, text, clip_frame=0):
                self.text = text

            def propagate(self):
                if len(frames) > outer.fits:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                h, w = frames[0].shape[:2]
                for i in range(len(frames)):
                    masks = np.zeros((1, h, w), bool)
                    masks[10:20, 10:20] = True
                    yield FrameResult(i, Detections([[10, 10, 20, 20]], masks, [0.9], [0], [self.text]))

            def close(self):
                outer.closed += 1

        return Session()

    def release(self):
        pass


@contextlib.contextmanager
def _opener(segmenter):
    @contextlib.contextmanager
    def open_session(frames):
        session = segmenter.start_session(frames)
        try:
            yield session
        finally:
            session.close()

    yield open_session


def test_oom_retries_once_in_halves_and_keeps_ids_unique():
    fake = FakeGpuSegmenter(fits=10)
    frames = [np.zeros((32, 32, 3), np.uint8)] * 20
    retries = []
    with _opener(fake) as open_session:
        results = segment_clip_frames(frames, range(0, 80, 4), open_session, text_plan("cow"), "c00007", retries.append)
    assert [r.clip_frame for r in results] == list(range(20))
    assert [int(r.detections.object_ids[0]) for r in results] == [0] * 10 + [1] * 10
    assert fake.opened == fake.closed == 3
    assert len(retries) == 1 and "c00007" in retries[0]


def test_oom_after_the_split_fails_with_a_clear_message_and_closed_sessions():
    fake = FakeGpuSegmenter(fits=4)
    with _opener(fake) as open_session, pytest.raises(ClipOutOfMemory, match="c00002.*frames_per_clip"):
        segment_clip_frames([np.zeros((8, 8, 3), np.uint8)] * 20, range(20), open_session, text_plan("cow"), "c00002")
    assert fake.opened == fake.closed == 2


def test_other_errors_are_not_retried():
    class Broken(FakeGpuSegmenter):
        def start_session(self, frames):
            session = super().start_session(frames)
            session.propagate = lambda: (_ for _ in ()).throw(ValueError("bad request"))
            return session

    fake = Broken(fits=100)
    with _opener(fake) as open_session, pytest.raises(ValueError):
        segment_clip_frames([np.zeros((8, 8, 3), np.uint8)] * 4, range(4), open_session, text_plan("cow"))
    assert fake.opened == fake.closed == 1


def test_partition_fails_in_one_line_when_a_clip_never_fits(synthetic_video, tmp_path, monkeypatch):
    fake = FakeGpuSegmenter(fits=5)
    key, result = run_with_segmenter(fake, synthetic_video, tmp_path, monkeypatch)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "object_masks"
    assert "out of accelerator memory even split into halves" in failure.step_failure_data.error.cause.message
    assert fake.opened == fake.closed == 2  # whole clip, then the first half: both closed
    assert not StorageRoot(tmp_path).video(key).masks_table.exists()
