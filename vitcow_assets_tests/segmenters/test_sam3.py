"""The SAM3 backend driving Meta's real ``sam3`` classes at test size, random weights, on CPU.

Every request type goes through the project's backend and is asserted on its effect.
Skipped where the ``sam3`` package is not installed.
"""

import importlib.metadata
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

if importlib.util.find_spec("sam3") is None:
    pytest.skip("sam3 is not installed", allow_module_level=True)

import torch  # noqa: E402

from vitcow_assets.core.geometry import mask_to_xyxy  # noqa: E402
from vitcow_assets.defs.resources import segmenter_from_environment  # noqa: E402
from vitcow_assets.segmenters.base import PromptError, SegmenterConfigError  # noqa: E402
from vitcow_assets.segmenters.sam3 import Sam3Settings, find_bpe_path, load_sam3  # noqa: E402
from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install  # noqa: E402
from vitcow_assets.footage.layout import StorageRoot  # noqa: E402
from vitcow_assets_tests.helpers import cli_env, run_cli  # noqa: E402
from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint  # noqa: E402
from vitcow_testbed.synthetic import background, render, write_video  # noqa: E402

W, H = 160, 120
TEST_THRESHOLDS = {"score_threshold": 0.0, "new_object_threshold": 1.01, "hotstart_delay": 0}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model is far faster single-threaded on a shared CPU
    path = tmp_path_factory.mktemp("sam3") / "tiny.pt"
    install()  # the explicit CPU path: sam3 imports only after it
    with tiny_builder():
        with cpu_mode():
            write_tiny_checkpoint(path, find_bpe_path())
        yield str(path)
    torch.set_num_threads(threads)


def cpu_sam3(checkpoint: str, **settings):
    """The real backend, as the resource loads it, on the CPU."""
    return load_sam3(Sam3Settings(checkpoint=checkpoint, device="cpu", **settings))


def recorded(model) -> dict:
    """The backend's settings as the masks table records them."""
    return json.loads(model.settings_record()["sam3.settings"])


@pytest.fixture(scope="module")
def segmenter(tiny_checkpoint):
    return cpu_sam3(tiny_checkpoint, **TEST_THRESHOLDS)


@pytest.fixture(scope="module")
def frames():
    bg = background(W, H)
    return [render(i * 4, W, H, bg=bg) for i in range(6)]


def _results(session):
    return {r.clip_frame: r.detections for r in session.propagate()}


def test_text_prompt_finds_objects_on_every_frame_with_masks_at_frame_size(segmenter, frames):
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        results = _results(session)
    assert sorted(results) == list(range(len(frames)))
    assert len(results[0]) > 0
    for det in results.values():
        assert det.masks.shape[1:] == (H, W)
        for box, mask in zip(det.xyxy, det.masks):
            assert mask.any() and box.tolist() == mask_to_xyxy(mask).tolist()


def test_sam3_draws_no_progress_bar_of_its_own(segmenter, frames, capfd):
    """SAM3's tqdm bars (two per clip) would come between `vitcow run`'s bar and its one-line
    messages, from every process of a run over several devices."""
    capfd.readouterr()
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        results = _results(session)
    assert sorted(results) == list(range(len(frames)))  # propagated, both ways
    err = capfd.readouterr().err
    assert "propagate" not in err and "it/s" not in err, err[-500:]


def _responses(segmenter):
    """Record every (request, response) the session exchanges with SAM3's predictor."""
    exchanged = []
    original = segmenter.request

    def recording(request):
        response = original(request)
        exchanged.append((request, response))
        return response

    return exchanged, recording, original


def test_points_add_a_new_object_and_refine_an_existing_one(segmenter, frames):
    exchanged, recording, original = _responses(segmenter)
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        before = _results(session)
        existing = int(before[2].object_ids[0])
        old_mask = before[2].masks[0]
        ys, xs = np.nonzero(old_mask)
        segmenter.request = recording
        try:
            session.add_point_prompt([[xs[0], ys[0]], [W - 5, H - 5]], [0, 1], clip_frame=2, object_id=existing)
        finally:
            segmenter.request = original
        session.add_point_prompt([[20, 20]], [1], clip_frame=2, object_id=50)
        after = _results(session)
    assert 50 in after[2].object_ids.tolist()  # added
    # the clicks went to the existing object, in normalised coordinates, on frame 2 ...
    (request, response), = exchanged
    assert (request["obj_id"], request["frame_index"], request["point_labels"]) == (existing, 2, [0, 1])
    assert np.allclose(request["points"], [[xs[0] / W, ys[0] / H], [(W - 5) / W, (H - 5) / H]])
    # ... and SAM3 answered with that object refined: still the same id, a different mask
    ids = [int(i) for i in response["outputs"]["out_obj_ids"]]
    assert existing in ids
    refined = np.asarray(response["outputs"]["out_binary_masks"][ids.index(existing)], dtype=bool)
    assert refined.shape == old_mask.shape and not np.array_equal(refined, old_mask)


def test_box_prompts_are_normalised_xywh_and_restart_the_objects(segmenter, frames):
    exchanged, recording, original = _responses(segmenter)
    segmenter.request = recording
    try:
        with segmenter.start_session(frames) as session:
            session.add_text_prompt("cow", 0)
            session.add_box_prompt([40, 30, 120, 90], 1)  # box only
            box_only = _results(session)
            session.add_box_prompt([-10, 0, 80, 200], 0, text="cow")  # box + text, clipped to the frame
            box_text = _results(session)
    finally:
        segmenter.request = original
    boxes = [(r.get("bounding_boxes"), r.get("text")) for r, _ in exchanged if r.get("bounding_boxes")]
    assert boxes[0] == ([[0.25, 0.25, 0.5, 0.5]], "visual")
    assert boxes[1] == ([[0.0, 0.0, 0.5, 1.0]], "cow")
    # a new query restarts the objects: the text prompt before it leaves no trace, so the
    # results equal those of a session given only the box
    with segmenter.start_session(frames) as fresh:
        fresh.add_box_prompt([40, 30, 120, 90], 1)
        alone = _results(fresh)
    assert sorted(box_only) == sorted(alone) == list(range(len(frames)))
    for f in alone:
        assert box_only[f].object_ids.tolist() == alone[f].object_ids.tolist()
        assert np.array_equal(box_only[f].masks, alone[f].masks)
    assert sorted(box_text) == list(range(len(frames)))


def test_remove_object_drops_it_from_every_frame_and_unknown_ids_fail(segmenter, frames):
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        first = _results(session)
        victim = int(first[0].object_ids[0])
        session.remove_object(victim)
        after = _results(session)
        with pytest.raises(PromptError, match="object 999"):
            session.remove_object(999)
    assert any(victim in d.object_ids for d in first.values())
    assert all(victim not in d.object_ids for d in after.values())


def test_reset_forgets_prompts_and_objects(segmenter, frames):
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        session.add_point_prompt([[20, 20]], [1], clip_frame=1, object_id=77)
        assert any(77 in d.object_ids for d in _results(session).values())
        session.reset()
        session.add_text_prompt("cow", 0)
        again = _results(session)
    assert all(77 not in d.object_ids for d in again.values())


def test_zero_detections_give_empty_frames(tiny_checkpoint, frames):
    strict = cpu_sam3(tiny_checkpoint, score_threshold=1.5, new_object_threshold=1.01, hotstart_delay=0)
    with strict.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        results = _results(session)
    assert sorted(results) == list(range(len(frames))) and all(len(d) == 0 for d in results.values())


def test_a_checkpoint_of_another_model_fails_in_one_line(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(2, 2)}, other)  # a real checkpoint, not SAM3's
    with pytest.raises(SegmenterConfigError, match="is not a SAM3 checkpoint: missing every detector.* and tracker.* tensor; unexpected layer.weight") as info:
        cpu_sam3(str(other))
    assert "\n" not in str(info.value) and info.value.setting == "checkpoint"


def test_bad_checkpoint_fails_in_one_line_naming_the_setting(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SegmenterConfigError, match="is neither a PyTorch checkpoint") as info:
        cpu_sam3(str(junk))
    assert "\n" not in str(info.value) and info.value.setting == "checkpoint"
    # where the configuration is read, the message says which setting and variable to fix
    resource = segmenter_from_environment({"VITCOW_SAM3_CHECKPOINT": str(junk), "VITCOW_SAM3_DEVICE": "cpu"}, backend="sam3")
    with pytest.raises(SegmenterConfigError, match="set VITCOW_SAM3_CHECKPOINT or --sam3-checkpoint") as info:
        resource.segmenter
    assert "\n" not in str(info.value)


def test_cli_runs_sam3_with_a_prompt_file_of_every_step_kind(tiny_checkpoint, tmp_path, monkeypatch):
    """``vitcow run --backend sam3`` in-process (the builder is at test size here)."""
    from vitcow_assets import cli

    video = write_video(tmp_path / "pen.mp4", frames=48, width=W, height=H)
    (tmp_path / "pen.prompts.yaml").write_text(
        "prompts:\n"
        "  - text: cow\n"
        "  - text: calf\n"
        "  - points: [[30, 40]]\n    labels: [1]\n    frame: 32\n    object: 100\n"  # 100 = id 50 of pass 0
        "  - remove: 1\n    frame: 0\n"  # id 0 of pass 1 (calf)
    )
    home = tmp_path / "home"
    for name, value in {
        "VITCOW_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "VITCOW_SAM3_CHECKPOINT": tiny_checkpoint,
        "VITCOW_SAM3_DEVICE": "cpu",
        "VITCOW_SAM3_SCORE_THRESHOLD": "0",
        "VITCOW_SAM3_NEW_OBJECT_THRESHOLD": "1.01",
    }.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["run", str(video), "--backend", "sam3", "--frames-per-clip", "6", "--no-clip-files", "--json", "--no-progress"])
    assert code == 0
    layout = StorageRoot(home).video("pen")
    masks = pq.read_table(layout.masks_table).to_pylist()
    crops = pq.read_table(layout.crops_table).to_pylist()
    assert {r["prompt"] for r in masks} == {"cow", "calf"}
    assert {r["segmenter"] for r in masks} == {f"sam3/{importlib.metadata.version('sam3')}"}  # the installed sam3 (0.1.4 from PyPI)
    ids = {(r["clip_id"], r["object_id"]) for r in masks}
    assert ("c00001", 100) in ids and ("c00000", 100) not in ids  # clicked in the clip holding frame 32
    assert ("c00000", 1) not in ids and ("c00001", 1) in ids  # removed in the clip holding frame 0 only
    assert all(r["object_id"] % 2 == (0 if r["prompt"] == "cow" else 1) for r in masks)
    assert crops and {c["model_checkpoint"] for c in crops} == {tiny_checkpoint}
    # identity across clips: the two clips share frame 20, every object has one track id,
    # crops carry it and the tracks table lists every crop under it
    clips = pq.read_table(layout.clips_table).to_pylist()
    assert [(c["source_frame_start"], c["source_frame_end"]) for c in clips] == [(0, 20), (20, 40)]
    track_of = {}
    for r in masks:
        assert track_of.setdefault((r["clip_id"], r["object_id"]), r["track_id"]) == r["track_id"] >= 0
    assert all(c["track_id"] == track_of[(c["clip_id"], c["object_id"])] for c in crops)
    tracks = pq.read_table(layout.tracks_table).to_pylist()
    assert sorted(p for t in tracks for p in t["crop_paths"]) == sorted(c["crop_path"] for c in crops)
    assert all(t["prompt"] in ("cow", "calf") for t in tracks)
    plan = json.loads(layout.prompts_json.read_text())
    assert plan["source"].endswith("pen.prompts.yaml") and len(plan["steps"]) == 2


def test_frames_prepared_off_the_model_thread_match_sam3s_own_conversion(tiny_checkpoint, frames):
    from PIL import Image
    from sam3.model.io_utils import load_resource_as_video_frames

    from vitcow_assets.segmenters.sam3 import Sam3Frames

    segmenter = cpu_sam3(tiny_checkpoint, resize="pil", **TEST_THRESHOLDS)  # the exact path
    assert segmenter.frame_scale() is None  # full-size RGB frames from the decoder
    prepared = segmenter.prepare_frames(frames)
    with cpu_mode():
        theirs, height, width = load_resource_as_video_frames([Image.fromarray(f) for f in frames], segmenter.image_size, True)
    assert isinstance(prepared, Sam3Frames) and torch.equal(prepared.tensor, theirs) and (height, width) == (H, W)
    assert torch.equal(prepared[2:4].tensor, theirs[2:4]) and len(prepared[2:4]) == 2

    def run(clip):
        with segmenter.start_session(clip) as session:
            session.add_text_prompt("cow", 0)
            return _results(session)

    plain, ready = run(frames), run(prepared)
    assert sorted(plain) == sorted(ready)
    for i in plain:
        assert np.array_equal(plain[i].object_ids, ready[i].object_ids) and np.array_equal(plain[i].masks, ready[i].masks)


def test_frames_the_decoder_scaled_give_masks_and_boxes_in_source_pixels(segmenter, tmp_path):
    """``resize`` ``swscale`` (the default): the decoder scales each frame straight to the
    model's input size; SAM3 still returns masks at the source frame's size, and boxes in
    its pixels. Several GPUs take full-size frames (SAM3's workers load them)."""
    import copy
    import dataclasses

    from vitcow_assets.media.video import iter_frames
    from vitcow_assets.segmenters.sam3 import Sam3Frames, SourceFrame

    scale = segmenter.frame_scale()
    assert segmenter.settings.resize == "swscale" and (scale.width, scale.height) == (segmenter.image_size,) * 2
    video = write_video(tmp_path / "pen.mp4", frames=12, width=W, height=H, pix_fmt="yuv420p")
    prepared = segmenter.prepare_frames([f for _, f in iter_frames(video, range(0, 12, 2), scale=scale)])
    assert isinstance(prepared, Sam3Frames) and all(isinstance(f, SourceFrame) and f.shape == (H, W, 3) for f in prepared)
    assert tuple(prepared.tensor.shape) == (6, 3, segmenter.image_size, segmenter.image_size)
    with segmenter.start_session(prepared) as session:
        session.add_text_prompt("cow", 0)
        results = _results(session)
    assert sorted(results) == list(range(6)) and all(len(det) > 0 for det in results.values())
    for det in results.values():
        assert det.masks.shape[1:] == (H, W)
        for box, mask in zip(det.xyxy, det.masks):
            assert mask.any() and box.tolist() == mask_to_xyxy(mask).tolist()
            assert 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H
    several = copy.copy(segmenter)  # with several GPUs each model is whole on its own device: the same frames
    several.settings = dataclasses.replace(segmenter.settings, gpus=(0, 1))
    assert several.frame_scale() == scale


def test_the_resize_setting_reaches_the_backend_from_environment_flag_and_dagster_config(tiny_checkpoint):
    from vitcow_assets.cli import build_parser
    from vitcow_assets.cli.options import given
    from vitcow_assets.core.settings import SettingError
    from vitcow_assets.defs.resources import NESTED_CONFIGS, SegmenterResource
    from vitcow_assets.segmenters import BACKENDS

    environment = segmenter_from_environment({"VITCOW_SAM3_RESIZE": "pil", "VITCOW_SAM3_CHECKPOINT": tiny_checkpoint}, backend="sam3")
    assert environment.backend_settings().resize == "pil"
    assert segmenter_from_environment({"VITCOW_SAM3_CHECKPOINT": tiny_checkpoint}, backend="sam3").backend_settings().resize == "swscale"
    dagster = SegmenterResource(backend="sam3", sam3=NESTED_CONFIGS["sam3"](checkpoint=tiny_checkpoint, resize="bilinear"))
    assert dagster.backend_settings().resize == "bilinear"
    args = build_parser().parse_args(["run", "x.mp4", "--sam3-resize", "pil"])
    flagged = segmenter_from_environment({"VITCOW_SAM3_RESIZE": "bilinear", "VITCOW_SAM3_CHECKPOINT": tiny_checkpoint},
                                         {"sam3": given(args, BACKENDS["sam3"].settings_class, "sam3")}, backend="sam3")
    assert flagged.backend_settings().resize == "pil"  # the flag wins over the environment
    with pytest.raises(SettingError, match="VITCOW_SAM3_RESIZE='lanczos': expected one of swscale, pil, bilinear"):
        segmenter_from_environment({"VITCOW_SAM3_RESIZE": "lanczos"}, backend="sam3")
    refused = SegmenterResource(backend="sam3", sam3=NESTED_CONFIGS["sam3"](checkpoint=tiny_checkpoint, resize="lanczos"))
    with pytest.raises(SegmenterConfigError, match="sam3.resize"):
        refused.backend_settings()


def _objects(segmenter, frames) -> set[int]:
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        return {int(i) for det in _results(session).values() for i in det.object_ids}


def _overlapping_allowed(model):
    """The random model's detections overlap: keep what SAM3's mask NMS (IoU 0.1) would merge."""
    model.predictor.model.det_nms_thresh = 0.9
    return model


def test_max_objects_caps_the_objects_of_a_session(tiny_checkpoint, frames):
    many = {"score_threshold": 0.0, "new_object_threshold": 0.0, "hotstart_delay": 0}
    uncapped = _objects(_overlapping_allowed(cpu_sam3(tiny_checkpoint, **many)), frames)
    capped = _overlapping_allowed(cpu_sam3(tiny_checkpoint, max_objects=1, **many))
    assert len(uncapped) > 1  # the random model finds several here ...
    assert len(_objects(capped, frames)) == 1  # ... and the cap keeps one
    assert recorded(capped)["max_objects"] == 1
    with pytest.raises(ValueError, match="max_objects"):
        cpu_sam3(tiny_checkpoint, max_objects=-1)


def test_compile_is_refused_quietly_on_cpu_and_recorded(tiny_checkpoint):
    with pytest.warns(UserWarning, match="CUDA only"):
        model = cpu_sam3(tiny_checkpoint, compile=True, max_objects=3, **TEST_THRESHOLDS)
    assert model.predictor.model.compile_model is False
    assert model.settings_record()["sam3.compile"] == "off (requested; cuda only)"
    assert model.settings_record()["sam3.precision"] == "fp32" and recorded(model)["compile"] is True
    with pytest.raises(ValueError, match="compile needs max_objects above 0"):
        Sam3Settings(compile=True)


def test_by_default_nothing_is_compiled_and_on_cuda_compile_warms_up_every_object_count(segmenter, frames, monkeypatch):
    """The chosen default (docs/configuration.md, compile): SAM3 runs eager; a session
    never reaches torch.compile. Asked for on CUDA, compile is warmed up at load."""
    from vitcow_assets.segmenters.sam3 import compiled_on

    calls = []
    monkeypatch.setattr(torch, "compile", lambda *a, **k: calls.append(a) or (a[0] if a else None))
    assert Sam3Settings().compile is False and segmenter.predictor.model.compile_model is False
    _objects(segmenter, frames)
    assert calls == [] and not getattr(segmenter.predictor.model, "_model_is_compiled", False)
    assert segmenter.settings_record()["sam3.compile"] == "off"
    on = Sam3Settings(compile=True, max_objects=4)
    assert compiled_on(on, "cuda:1") and compiled_on(on, "cuda") and not compiled_on(on, "cpu") and not compiled_on(Sam3Settings(), "cuda:0")


def test_compile_on_warms_up_for_every_object_count_at_load(tiny_checkpoint, monkeypatch):
    """What a GPU gets with compile on (here with the CUDA check passed by hand): SAM3's own
    warm-up runs once, at load, for 0 to max_objects objects, compiled."""
    from sam3.model.sam3_video_inference import Sam3VideoInferenceWithInstanceInteractivity as Inference

    from vitcow_assets.segmenters import sam3 as backend

    warmed = []
    monkeypatch.setattr(backend, "compiled_on", lambda settings, device: settings.compile)
    monkeypatch.setattr(Inference, "warm_up_compilation", lambda self: warmed.append((self.compile_model, self.num_obj_for_compile)))
    model = cpu_sam3(tiny_checkpoint, compile=True, max_objects=3, **TEST_THRESHOLDS)
    assert warmed == [(True, 3)] and model.settings_record()["sam3.compile"] == "on"


def test_cli_settings_reach_the_model_and_the_masks_metadata(tiny_checkpoint, tmp_path, monkeypatch):
    from vitcow_assets import cli

    video = write_video(tmp_path / "pen.mp4", frames=24, width=W, height=H)
    home = tmp_path / "home"
    for name, value in {"VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "VITCOW_SAM3_CHECKPOINT": tiny_checkpoint,
                        "VITCOW_SAM3_DEVICE": "cpu", "VITCOW_SAM3_MAX_OBJECTS": "5"}.items():
        monkeypatch.setenv(name, value)
    argv = ["run", str(video), "--backend", "sam3", "--frames-per-clip", "6", "--no-clip-files", "--json", "--no-progress",
            "--sam3-max-objects", "1", "--score-threshold", "0", "--sam3-new-object-threshold", "0", "--prefetch-clips", "2"]
    assert cli.main(argv) == 0
    layout = StorageRoot(home).video("pen")
    meta = {k.decode(): v.decode() for k, v in pq.read_schema(layout.masks_table).metadata.items()}
    settings = json.loads(meta["vitcow.sam3.settings"])
    assert settings["max_objects"] == 1  # the CLI wins over the environment
    assert settings["score_threshold"] == 0.0 and settings["new_object_threshold"] == 0.0  # an alias and the derived flag
    assert meta["vitcow.prefetch_clips"] == "2" and meta["vitcow.sam3.device"] == "cpu"
    assert settings["resize"] == "swscale"  # the default: frames scaled by the decoder
    rows = pq.read_table(layout.masks_table).to_pylist()
    assert all(r["mask_rle"]["size"] == [H, W] and (r["frame_width"], r["frame_height"]) == (W, H) and r["x2"] <= W for r in rows)
    assert rows and all(len({r["object_id"] for r in rows if r["clip_id"] == c}) == 1 for c in {r["clip_id"] for r in rows})


def test_a_fresh_cli_process_loads_a_checkpoint_on_the_readme_install(tiny_checkpoint, tmp_path):
    """The README's install (CPU torch beside PyPI's CUDA torchvision): a checkpoint loads
    through the CLI in a process where nothing was prepared first (this module's CPU fix
    is not inherited by a subprocess)."""
    video = write_video(tmp_path / "pen.mp4", frames=12, width=W, height=H)
    env = {"VITCOW_SAM3_CHECKPOINT": tiny_checkpoint, "VITCOW_SAM3_DEVICE": "cpu", "VITCOW_SAM3_SCORE_THRESHOLD": "0"}
    args = [sys.executable, "-m", "vitcow_assets_tests.tiny_sam3_cli", "run", str(video), "--backend", "sam3", "--frames-per-clip", "3", "--json", "--no-progress"]
    done = subprocess.run(args, env=cli_env(tmp_path / "home", env), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "torchvision::nms" not in done.stderr
    (video_report,) = json.loads(done.stdout)["videos"]
    meta = pq.read_schema(video_report["masks_table"]).metadata
    assert meta[b"vitcow.segmenter"].decode().startswith("sam3/") and meta[b"vitcow.checkpoint"].decode() == tiny_checkpoint


def test_a_junk_checkpoint_fails_in_one_line_naming_the_file_in_a_fresh_process(tmp_path):
    junk = tmp_path / "sam3.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 100)
    video = write_video(tmp_path / "pen.mp4", frames=8, width=W, height=H)
    done = run_cli(["run", str(video), "--backend", "sam3"], tmp_path / "home", {"VITCOW_SAM3_CHECKPOINT": str(junk)})
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(junk) in lines[0] and "VITCOW_SAM3_CHECKPOINT" in lines[0], done.stderr
