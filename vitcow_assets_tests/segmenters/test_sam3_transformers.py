"""The sam3-transformers backend driving transformers' real ``Sam3VideoModel`` at test size
(random weights, ``sam3_hf_tiny``), on the CPU: its requests, its several texts in one session,
what it refuses, how it loads (and refuses) checkpoints, and its post-processing stand-ins.

Skipped where transformers is not installed."""

import importlib.util
import json

import numpy as np
import pytest

if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("transformers is not installed", allow_module_level=True)

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from vitcow_assets.core.geometry import mask_to_xyxy  # noqa: E402
from vitcow_assets.core.prompts import BoxQuery, PointStep, PromptPlan, RemoveStep, TextQuery  # noqa: E402
from vitcow_assets.segmenters import resolve_backend  # noqa: E402
from vitcow_assets.segmenters.base import PromptError, SegmenterConfigError  # noqa: E402
from vitcow_assets.segmenters.sam3 import Sam3Settings  # noqa: E402
from vitcow_assets.segmenters.sam3_transformers import load_sam3_transformers  # noqa: E402
from vitcow_assets.segmenters.sam3_transformers_kernels import CvUtils  # noqa: E402
from vitcow_testbed.sam3_hf_tiny import tiny_config, write_tiny_folder  # noqa: E402
from vitcow_testbed.synthetic import background, render  # noqa: E402

W, H = 160, 120
#: every detection kept, every one a new object: the random model then finds a few
MANY = {"score_threshold": 0.0, "new_object_threshold": 0.0, "hotstart_delay": 0}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model is far faster single-threaded on a shared CPU
    path = tmp_path_factory.mktemp("sam3hf") / "sam3-tiny"
    write_tiny_folder(path)
    yield path
    torch.set_num_threads(threads)


def cpu_model(checkpoint, **settings):
    return load_sam3_transformers(Sam3Settings(checkpoint=str(checkpoint), device="cpu", **{**MANY, **settings}))


@pytest.fixture(scope="module")
def segmenter(folder):
    return cpu_model(folder)


@pytest.fixture(scope="module")
def frames():
    bg = background(W, H)
    return [render(i * 4, W, H, bg=bg) for i in range(4)]


def _results(segmenter, frames, *texts, remove=()):
    with segmenter.start_session(segmenter.prepare_frames(frames)) as session:
        session.add_text_prompts(list(texts))
        for object_id in remove:
            session.remove_object(object_id)
        return {r.clip_frame: r.detections for r in session.propagate()}


def test_two_texts_in_one_session_each_object_labelled_with_the_text_that_found_it(segmenter, frames):
    both = _results(segmenter, frames, "cow", "calf")
    cow_only = _results(segmenter, frames, "cow")
    assert sorted(both) == list(range(len(frames)))
    labels = {str(p) for det in both.values() for p in det.prompts}
    assert labels == {"cow", "calf"}  # one pass found objects of both texts ...
    first, alone = both[0], cow_only[0]
    cows = first.prompts == "cow"
    # ... and what "cow" found on the first frame is what a "cow"-only session finds there
    assert sorted(first.scores[cows].round(5).tolist()) == sorted(alone.scores.round(5).tolist())
    assert {tuple(b) for b in first.xyxy[cows].tolist()} == {tuple(b) for b in alone.xyxy.tolist()}
    assert set(np.unique(cow_only[0].prompts)) == {"cow"}


def test_masks_are_frame_sized_and_boxes_are_their_pixel_boxes(segmenter, frames):
    results = _results(segmenter, frames, "cow")
    assert len(results[0]) > 0
    for det in results.values():
        assert det.masks.shape[1:] == (H, W)
        assert len(np.unique(det.object_ids)) == len(det)
        for box, mask in zip(det.xyxy, det.masks):
            assert mask.any() and box.tolist() == mask_to_xyxy(mask).tolist()


def test_removing_an_object_hides_it_in_the_clip_and_an_unknown_id_fails_the_clip(segmenter, frames):
    found = _results(segmenter, frames, "cow")
    target = int(found[0].object_ids[0])
    removed = _results(segmenter, frames, "cow", remove=[target])
    assert all(target not in det.object_ids for det in removed.values())
    assert {int(i) for det in removed.values() for i in det.object_ids} == {int(i) for det in found.values() for i in det.object_ids} - {target}
    with pytest.raises(PromptError, match="not in this clip"):
        _results(segmenter, frames, "cow", remove=[999])


def test_box_exemplars_and_clicks_are_refused_before_any_clip_and_in_a_session(segmenter, frames):
    with pytest.raises(PromptError, match="box exemplar.*text prompts only.*--backend sam3"):
        segmenter.check_plan(PromptPlan((TextQuery("cow"), BoxQuery((1, 2, 30, 40), 0)), (), "pen.prompts.yaml"))
    with pytest.raises(PromptError, match="pen.prompts.yaml: clicks for object 4 on frame 8"):
        segmenter.check_plan(PromptPlan((TextQuery("cow"),), (PointStep(((5.0, 5.0),), (1,), 8, 4),), "pen.prompts.yaml"))
    segmenter.check_plan(PromptPlan((TextQuery("cow"), TextQuery("calf")), (RemoveStep(2, 0),)))  # texts and removals run
    with segmenter.start_session(frames) as session:
        with pytest.raises(PromptError, match="text prompts only"):
            session.add_box_prompt([1, 2, 30, 40], 0, "cow")
        with pytest.raises(PromptError, match="text prompts only"):
            session.add_point_prompt([[5, 5]], [1], 0, 0)


def test_a_new_text_replaces_the_sessions_texts_and_reset_forgets_them(segmenter, frames):
    with segmenter.start_session(frames) as session:
        session.add_text_prompts(["cow", "calf"])
        session.add_text_prompt("sheep")
        assert list(session.session.prompts.values()) == ["sheep"]
        labels = {str(p) for r in session.propagate() for p in r.detections.prompts}
        assert labels <= {"sheep"} and labels
        session.reset()
        assert session.session.prompts == {}
    assert session.session is None  # closed: the session's tensors let go


def test_the_record_names_the_implementation_its_version_and_what_it_resolved_to(segmenter, folder):
    import transformers

    assert segmenter.name == f"sam3-transformers/{transformers.__version__}" == "sam3-transformers/5.24.0"
    record = segmenter.settings_record()
    assert record["sam3.implementation"] == segmenter.name and record["sam3.precision"] == "float32"
    assert record["sam3.transformers_parity"] == "on" and json.loads(record["sam3.settings"])["checkpoint"] == str(folder)
    assert segmenter.several_texts_per_session and segmenter.model.max_num_objects == 10000


def test_max_objects_and_thresholds_reach_transformers_model(folder, frames):
    capped = cpu_model(folder, max_objects=1, score_threshold=0.25)
    assert (capped.model.max_num_objects, capped.model.score_threshold_detection, capped.model.new_det_thresh) == (1, 0.25, 0.0)
    objects = {int(i) for det in _results(capped, frames, "cow").values() for i in det.object_ids}
    assert len(objects) == 1


def test_backend_auto_chooses_transformers_for_a_model_folder_or_its_safetensors(folder, tmp_path):
    assert resolve_backend("auto", str(folder)) == "sam3-transformers"
    assert resolve_backend("auto", str(folder / "model.safetensors")) == "sam3-transformers"
    release = tmp_path / "sam3.pt"
    torch.save({"detector.a": torch.zeros(1), "tracker.b": torch.zeros(1)}, release)
    assert resolve_backend("auto", str(release)) == "sam3"
    assert resolve_backend("auto", str(tmp_path / "missing.pt")) == "sam3"  # sam3 then says the file is missing
    assert resolve_backend("auto", None) == "motion" and resolve_backend("sam3-transformers", str(release)) == "sam3-transformers"


def test_the_model_safetensors_of_a_folder_loads_as_the_folder(folder):
    model = cpu_model(folder / "model.safetensors")
    assert model.image_size == tiny_config().image_size


def _refusal(checkpoint, **settings) -> str:
    with pytest.raises(SegmenterConfigError) as caught:
        cpu_model(checkpoint, **settings)
    message = str(caught.value)
    assert "\n" not in message and caught.value.setting in ("checkpoint", "transformers_config")
    return message


def test_checkpoints_it_cannot_run_are_refused_in_one_line(folder, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    assert "no config.json beside it" in _refusal(alone / "model.safetensors")
    multiplex = tmp_path / "sam3.1_multiplex.pt"
    torch.save({"detector.backbone.x": torch.zeros(1), "tracker.model.y": torch.zeros(1)}, multiplex)
    assert "SAM 3.1 multiplex checkpoint: transformers has no SAM 3.1" in _refusal(multiplex)
    other = tmp_path / "other"
    other.mkdir()
    save_file({"encoder.weight": torch.zeros(2)}, other / "model.safetensors")
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert "is not a SAM3 checkpoint" in _refusal(other)
    assert "does not exist" in _refusal(tmp_path / "nowhere")


def test_a_folder_whose_weights_leave_the_model_partly_random_is_refused(folder, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    state = load_file(folder / "model.safetensors")
    dropped = sorted(k for k in state if ".memory_encoder." in k)  # (saved as tracker_model.tracker_model.*)
    assert dropped
    save_file({k: v for k, v in state.items() if k not in dropped}, partial / "model.safetensors")
    (partial / "config.json").write_text((folder / "config.json").read_text())
    message = _refusal(partial)
    assert "leaves transformers' SAM3 model weights unloaded: missing tracker_model.memory_encoder." in message


def test_a_config_of_another_model_is_refused_naming_it(folder, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (foreign / "config.json").write_text(json.dumps({**config, "model_type": "sam2_video"}))
    assert "the config of a 'sam2_video' model" in _refusal(foreign)


def test_the_mask_nms_stand_in_keeps_the_best_of_overlapping_ones():
    ious = torch.tensor([[1.0, 0.8, 0.0], [0.8, 1.0, 0.05], [0.0, 0.05, 1.0]])
    kept = CvUtils.generic_nms(ious, torch.tensor([0.5, 0.9, 0.7]), 0.1)
    assert kept.tolist() == [1, 2]  # 0 overlaps 1, which scores higher
    assert CvUtils.generic_nms(ious, torch.tensor([0.5, 0.9, 0.7]), 0.9).tolist() == [1, 2, 0]


def test_the_connected_components_stand_in_counts_8_connected_pixels():
    masks = torch.zeros((2, 1, 6, 6), dtype=torch.uint8)
    masks[0, 0, 0, 0] = masks[0, 0, 1, 1] = 1  # diagonal neighbours: one component of 2
    masks[0, 0, 4:6, 4:6] = 1  # a 2x2 block
    labels, counts = CvUtils.cc_2d(masks)
    assert counts[0, 0, 0, 0] == counts[0, 0, 1, 1] == 2 and counts[0, 0, 5, 5] == 4 and counts[0, 0, 3, 3] == 0
    assert labels[0, 0, 0, 0] == labels[0, 0, 1, 1] != labels[0, 0, 4, 4] and int(labels[1].max()) == 0
    assert labels.dtype == counts.dtype == torch.int32 and labels.shape == masks.shape


def test_the_lifecycle_is_the_sam3_backends_a_model_per_leased_device_a_closed_session_per_clip(folder, frames, tmp_path):
    """Loaded once per process on a leased device (simulated cpu:N), reused while idle, its
    device freed with it; a session closed (and its state dropped) when its clip fails."""
    from vitcow_assets.defs.resources import forget_cached_models, segmenter_from_environment
    from vitcow_assets.runtime.device_leases import try_lease
    from vitcow_assets.segmenters.model_pool import ModelPool

    settings = Sam3Settings(checkpoint=str(folder), device="cpu", gpus=(0, 1), **MANY)
    pool = ModelPool()
    try:
        first = pool.take("sam3-transformers", settings, tmp_path, wait_s=0)
        assert first.device == "cpu:0" and first.model.device == "cpu:0" and first.lease is not None
        pool.give_back(first)
        assert pool.take("sam3-transformers", settings, tmp_path, wait_s=0) is first  # not loaded again
        assert try_lease(first.lease.device, tmp_path) is None  # its device stays leased while it lives
    finally:
        pool.clear()
    freed = try_lease(first.lease.device, tmp_path)
    assert freed is not None
    freed.release()

    resource = segmenter_from_environment({"VITCOW_SAM3_CHECKPOINT": str(folder), "VITCOW_SAM3_DEVICE": "cpu", "VITCOW_SAM3_SCORE_THRESHOLD": "0"})
    assert resource.resolved_backend == "sam3-transformers"
    opened = []
    try:
        with pytest.raises(PromptError):
            with resource.session(frames) as session:
                opened.append(session)
                session.add_text_prompt("cow")
                session.remove_object(999)  # not in the clip: the clip fails when its results are made
                list(session.propagate())
    finally:
        forget_cached_models()
    assert opened[0].session is None  # closed on the failure: nothing of the clip is held


def test_the_decoders_planes_reach_the_model_as_the_exact_path_makes_them(folder, frames):
    """``resize`` swscale (the default): the decoder delivers planes at the model's size and the
    backend scales them on the device; the input is the ``pil`` path's to within resizing."""
    fast, exact = cpu_model(folder, resize="swscale"), cpu_model(folder, resize="pil")
    size = fast.image_size
    assert (fast.frame_scale().width, fast.frame_scale().height) == (size, size) and exact.frame_scale() is None
    prepared = fast.prepare_frames(frames)
    assert prepared.kind == "planes" and prepared[0].shape == (H, W, 3)  # the session still knows the source size
    planes, pil = fast.model_input(prepared), exact.model_input(exact.prepare_frames(frames))
    assert planes.shape == pil.shape == (len(frames), 3, size, size) and planes.dtype == pil.dtype
    levels = ((planes.float() - pil.float()).abs() * 127.5).numpy()  # input units of 2/255 -> levels of 255
    assert levels.mean() < 2 and np.quantile(levels, 0.999) < 12, (levels.mean(), np.quantile(levels, 0.999))
    with fast.start_session(prepared) as session:
        session.add_text_prompts(["cow"])
        results = list(session.propagate())
    assert len(results) == len(frames) and all((r.detections.masks.height, r.detections.masks.width) == (H, W) for r in results)
