"""How a prompt plan's text queries become predictor sessions on a clip, and how each object
gets its table id and the text that found it: one session per text (Meta's predictor), or one
session for every text (a segmenter with ``several_texts_per_session``: transformers' SAM3).
The segmenter is the test double; the real backends run this in ``segmenters/`` and end to end
(``cli/test_sam3_prompts_cli.py``, ``defs/test_sam3_transformers_assets.py``)."""

import numpy as np
import pytest

from vitcow_assets.core.detections import Detections
from vitcow_assets.core.prompts import text_plan
from vitcow_assets.stages.segmentation import segment_clip_frames
from vitcow_testbed.fakes import FakeSegmenter

H, W = 24, 32


def two_animals(frames, clip_frame: int) -> Detections:
    """Object 0 (found by "cow") on the left, object 1 (found by "calf") on the right."""
    masks = np.zeros((2, H, W), bool)
    masks[0, 2:10, 2:10] = masks[1, 4:20, 16:30] = True
    return Detections([[2, 2, 10, 10], [16, 4, 30, 20]], masks, [0.9, 0.8], [0, 1], prompts=["cow", "calf"])


def _segment(texts_together: bool):
    fake = FakeSegmenter(detect=two_animals)
    frames = [np.zeros((H, W, 3), np.uint8)] * 3
    results = segment_clip_frames(frames, range(0, 12, 4), fake.open_session, text_plan("cow", "calf"), "c00000", texts_together=texts_together)
    return fake, results


def test_one_session_answers_both_texts_and_each_object_keeps_the_text_that_found_it():
    fake, results = _segment(texts_together=True)
    assert fake.opened == fake.closed == 1  # one pass over the clip
    assert fake.sessions[0].prompts == [("texts", ("cow", "calf"), 0)]
    assert [r.clip_frame for r in results] == [0, 1, 2]
    for result in results:
        det = result.detections
        # session id * queries + query index of the text that found it: cow's 0 -> 0, calf's 1 -> 3
        assert det.object_ids.tolist() == [0, 3] and det.prompts.tolist() == ["cow", "calf"]


def test_one_session_per_text_labels_every_object_with_its_sessions_text():
    fake, results = _segment(texts_together=False)
    assert fake.opened == fake.closed == 2  # a pass per text, as Meta's predictor takes one text
    assert [s.prompts for s in fake.sessions] == [[("text", "cow", 0)], [("text", "calf", 0)]]
    assert [r.clip_frame for r in results] == [0, 0, 1, 1, 2, 2]
    first, second = results[0].detections, results[1].detections
    assert first.object_ids.tolist() == [0, 2] and first.prompts.tolist() == ["cow", "cow"]
    assert second.object_ids.tolist() == [1, 3] and second.prompts.tolist() == ["calf", "calf"]


def test_a_text_the_session_was_not_asked_for_fails_the_clip():
    def stray(frames, clip_frame):
        det = two_animals(frames, clip_frame)
        det.prompts = np.array(["cow", "horse"], dtype=object)
        return det

    fake = FakeSegmenter(detect=stray)
    with pytest.raises(RuntimeError, match="names text\\(s\\) it was not asked for: .horse."):
        segment_clip_frames([np.zeros((H, W, 3), np.uint8)] * 2, range(2), fake.open_session, text_plan("cow", "calf"), texts_together=True)
    assert fake.opened == fake.closed == 1
