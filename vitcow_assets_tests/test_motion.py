import dagster as dg
import numpy as np
import pytest

from vitcow_assets.core.geometry import mask_iou
from vitcow_assets.segmenters import load_segmenter, resolve_backend
from vitcow_assets.segmenters.base import SegmenterConfigError, SegmenterSession
from vitcow_assets.segmenters.motion import MotionSegmenter
from vitcow_assets_tests.synthetic import (
    DEFAULT_OBJECTS,
    background,
    render,
    truth_mask,
)


def test_motion_finds_moving_boxes_with_stable_ids_and_accurate_masks():
    frames_idx = list(range(0, 80, 4))
    bg = background(320, 240)
    frames = [render(i, 320, 240, bg=bg) for i in frames_idx]
    segmenter = MotionSegmenter()
    with segmenter.start_session(frames) as session:
        assert isinstance(session, SegmenterSession)
        session.add_text_prompt("cow")
        results = list(session.propagate())
    assert [r.clip_frame for r in results] == list(range(20))
    ids_per_object = {k: set() for k in range(len(DEFAULT_OBJECTS))}
    for result, source_frame in zip(results, frames_idx):
        det = result.detections
        assert len(det) == 2
        assert set(det.prompts) == {""}  # the backend does not label: the segmentation stage does
        for k, obj in enumerate(DEFAULT_OBJECTS):
            truth = truth_mask(obj, source_frame, 320, 240)
            ious = [mask_iou(m, truth) for m in det.masks]
            best = int(np.argmax(ious))
            assert ious[best] > 0.8
            ids_per_object[k].add(int(det.object_ids[best]))
            assert np.allclose(det.xyxy[best], obj.xyxy(source_frame), atol=2)
    assert all(len(ids) == 1 for ids in ids_per_object.values())
    assert ids_per_object[0] != ids_per_object[1]


def test_motion_session_with_nothing_moving_yields_empty_frames():
    frame = background(64, 48)
    with MotionSegmenter().start_session([frame] * 5) as session:
        results = list(session.propagate())
    assert len(results) == 5 and all(len(r.detections) == 0 for r in results)


def test_closed_session_refuses_to_propagate():
    session = MotionSegmenter().start_session([background(32, 32)])
    session.close()
    with pytest.raises(RuntimeError):
        list(session.propagate())


def test_backend_choice(tmp_path):
    assert resolve_backend("auto", None) == "motion"
    assert resolve_backend("auto", "/x.pt") == "sam3"
    with pytest.raises(SegmenterConfigError):
        resolve_backend("yolo", None)
    with pytest.raises(SegmenterConfigError, match="needs a checkpoint") as info:
        load_segmenter("sam3", None)
    assert info.value.setting == "checkpoint"
    with pytest.raises(SegmenterConfigError, match="does not exist"):
        load_segmenter("sam3", str(tmp_path / "missing.pt"))
    assert load_segmenter("motion").name == "motion/v3"


def test_resource_names_the_field_and_variable_of_a_bad_setting(tmp_path, monkeypatch):
    """The segmenter says which setting is wrong; the resource (the edge that reads the
    environment) says where that setting comes from."""
    from vitcow_assets.defs.resources import SegmenterResource, from_environment

    monkeypatch.setenv("VITCOW_SAM3_CHECKPOINT", str(tmp_path / "missing.pt"))
    resource = from_environment(SegmenterResource, resolve=True, backend="sam3")
    assert resource.sam3_checkpoint == str(tmp_path / "missing.pt")
    with pytest.raises(SegmenterConfigError, match="does not exist") as info:
        resource.segmenter
    assert "sam3_checkpoint (VITCOW_SAM3_CHECKPOINT)" in str(info.value)


def test_environment_values_reach_the_resources_and_bad_ones_name_the_variable(monkeypatch):
    from vitcow_assets.defs.resources import (
        EnvironmentValueError,
        SegmenterResource,
        VitcowStorage,
        from_environment,
    )

    monkeypatch.setenv("VITCOW_SAM3_SCORE_THRESHOLD", "0.25")
    monkeypatch.setenv("VITCOW_SAM3_HOTSTART_DELAY", "3")
    monkeypatch.setenv("VITCOW_SAM3_GPUS", "0,1")
    monkeypatch.setenv("VITCOW_PROMPT", "calf")
    resource = from_environment(SegmenterResource, resolve=True)
    assert (resource.sam3_score_threshold, resource.sam3_hotstart_delay, resource.sam3_gpus, resource.default_prompt) == (0.25, 3, [0, 1], "calf")
    deferred = from_environment(SegmenterResource)  # what Definitions holds: Dagster reads it at run time
    assert isinstance(deferred.default_prompt, dg.EnvVar) and deferred.default_prompt.env_var_name == "VITCOW_PROMPT"
    monkeypatch.delenv("VITCOW_PROMPT")
    assert from_environment(SegmenterResource, resolve=True).default_prompt == SegmenterResource().default_prompt
    monkeypatch.setenv("VITCOW_SETTLE_SECONDS", "soon")
    with pytest.raises(EnvironmentValueError, match="VITCOW_SETTLE_SECONDS"):
        from_environment(VitcowStorage)
