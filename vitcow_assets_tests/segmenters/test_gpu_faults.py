"""Out of GPU memory in a session: one retry with the clip split in halves, sessions always closed.

The fake raises torch's real ``torch.cuda.OutOfMemoryError`` type.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vitcow_assets.core.prompts import text_plan  # noqa: E402
from vitcow_assets.stages.segmentation import ClipOutOfMemory, segment_clip_frames  # noqa: E402
from vitcow_assets.footage.layout import StorageRoot  # noqa: E402
from vitcow_testbed.fakes import FakeSegmenter, one_box  # noqa: E402
from vitcow_assets_tests.helpers import run_with_segmenter  # noqa: E402


def FakeGpuSegmenter(fits: int, error: BaseException | None = None, fail_on: int | None = None) -> FakeSegmenter:
    """Finds one object per frame; raises CUDA OOM when a session holds more than ``fits`` frames."""
    return FakeSegmenter(detect=one_box([10, 10, 20, 20], 0.9), fits=fits, error=error, fail_on=fail_on, name="fake-gpu/v0")


def test_oom_retries_once_in_halves_and_keeps_ids_unique():
    fake = FakeGpuSegmenter(fits=10)
    frames = [np.zeros((32, 32, 3), np.uint8)] * 20
    retries = []
    results = segment_clip_frames(frames, range(0, 80, 4), fake.open_session, text_plan("cow"), "c00007", retries.append)
    assert [r.clip_frame for r in results] == list(range(20))
    assert [int(r.detections.object_ids[0]) for r in results] == [0] * 10 + [1] * 10
    assert fake.opened == fake.closed == 3
    assert len(retries) == 1 and "c00007" in retries[0]


def test_oom_after_the_split_fails_with_a_clear_message_and_closed_sessions():
    fake = FakeGpuSegmenter(fits=4)
    with pytest.raises(ClipOutOfMemory, match="c00002.*frames_per_clip"):
        segment_clip_frames([np.zeros((8, 8, 3), np.uint8)] * 20, range(20), fake.open_session, text_plan("cow"), "c00002")
    assert fake.opened == fake.closed == 2


def test_other_errors_are_not_retried():
    fake = FakeGpuSegmenter(fits=100, error=ValueError("bad request"), fail_on=1)
    with pytest.raises(ValueError):
        segment_clip_frames([np.zeros((8, 8, 3), np.uint8)] * 4, range(4), fake.open_session, text_plan("cow"))
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
