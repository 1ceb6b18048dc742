"""Failures that say what failed: each injected on the CPU with SAM3's real builder at test
size, each one line, the same in ``vitcow run`` (exit 2) and in the Dagster step's failure.

Also: a release-layout checkpoint saved as ``.safetensors`` (as mirrors redistribute it) or
wrapped as ``{"model": ...}`` loads like ``sam3.pt`` and gives the same masks.
"""

import importlib.util
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

if importlib.util.find_spec("sam3") is None:
    pytest.skip("sam3 is not installed", allow_module_level=True)

import torch  # noqa: E402

from vitcow_assets import cli  # noqa: E402
from vitcow_assets.definitions import build_resources, defs  # noqa: E402
from vitcow_assets.defs.resources import forget_cached_models  # noqa: E402
from vitcow_assets.segmenters import accelerators, sam3_loading  # noqa: E402
from vitcow_assets.segmenters.base import SegmenterConfigError  # noqa: E402
from vitcow_assets.segmenters.sam3 import Sam3Settings, find_bpe_path, load_sam3  # noqa: E402
from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install  # noqa: E402
from vitcow_assets.segmenters.sam3_multiplex import has_multiplex  # noqa: E402
from vitcow_assets_tests.helpers import register  # noqa: E402
from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint  # noqa: E402
from vitcow_testbed.synthetic import background, render, write_video  # noqa: E402

W, H = 160, 120
TRITON_ERROR = "Failed to find C compiler. Please specify via CC environment variable or set triton.knobs.build.impl."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A test-size SAM3 checkpoint (``sam3.pt``'s layout) and its state dict."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("sam3") / "sam3.pt"
    install()
    with tiny_builder():
        with cpu_mode():
            write_tiny_checkpoint(path, find_bpe_path())
        yield path, torch.load(path, weights_only=True)
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fresh_models():
    """No model loaded by an earlier test stands in for the one a test loads (or breaks)."""
    forget_cached_models()
    yield
    forget_cached_models()


def both_ways(tmp_path, monkeypatch, capsys, checkpoint, **env) -> tuple[str, str]:
    """The line ``vitcow run`` prints (exit 2 asserted) and the description of the failed
    ``object_masks`` step, with the same settings."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    video = write_video(tmp_path / "pen.mp4", frames=8, width=W, height=H)
    home = tmp_path / "home"
    settings = {"VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "VITCOW_SAM3_CHECKPOINT": str(checkpoint),
                "VITCOW_SAM3_DEVICE": "cpu", **env}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert cli.main(["run", str(video), "--backend", "sam3", "--no-progress", "--no-clip-files"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vitcow: "), lines
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        result = defs.resolve_job_def("process_video").execute_in_process(
            instance=instance, partition_key=key, resources=build_resources(backend="sam3", home=str(home)), raise_on_error=False
        )
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "object_masks"
    return lines[0].removeprefix("vitcow: "), failure.step_failure_data.user_failure_data.description


def test_a_missing_checkpoint(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere" / "sam3.pt"
    line, step = both_ways(tmp_path, monkeypatch, capsys, missing)
    assert line == step == f"SAM3 checkpoint {str(missing)!r} does not exist (set VITCOW_SAM3_CHECKPOINT or --sam3-checkpoint)"


def test_a_file_that_is_no_checkpoint(tmp_path, monkeypatch, capsys):
    junk = tmp_path / "sam3.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 100)
    line, step = both_ways(tmp_path, monkeypatch, capsys, junk)
    assert line == step
    assert f"{str(junk)!r} is neither a PyTorch checkpoint (torch.save) nor a safetensors file (1700 bytes)" in line


def test_a_checkpoint_of_another_model_names_missing_and_unexpected_keys(tmp_path, monkeypatch, capsys, tiny):
    other = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(2, 2)}, other)
    line, step = both_ways(tmp_path, monkeypatch, capsys, other)
    assert line == step
    assert line.endswith(f"{str(other)!r} is not a SAM3 checkpoint: missing every detector.* and tracker.* tensor; unexpected layer.weight "
                         "(set VITCOW_SAM3_CHECKPOINT or --sam3-checkpoint)")
    # a SAM3 file short of its tracker and with a stray tensor: the first few of each named
    _, state = tiny
    partial = {k: v for k, v in state.items() if not k.startswith("tracker.sam_mask_decoder.")} | {"detector.extra": torch.zeros(1)}
    torch.save(partial, other)
    line, _ = both_ways(tmp_path / "again", monkeypatch, capsys, other)
    missing = sorted(k for k in state if k.startswith("tracker.sam_mask_decoder."))
    assert f"missing {', '.join(missing[:3])} (+{len(missing) - 3} more); unexpected detector.extra" in line


def test_a_transformers_model_file_or_folder_says_what_it_is(tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    folder = tmp_path / "sam3-hf"
    folder.mkdir()
    save_file({"detector_model.vision_encoder.weight": torch.zeros(2), "tracker_model.memory.weight": torch.zeros(2)}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"model_type": "sam3_video", "architectures": ["Sam3VideoModel"]}))
    for target, form in ((folder / "model.safetensors", "safetensors"), (folder, "folder")):
        line, step = both_ways(tmp_path / form, monkeypatch, capsys, target)
        assert line == step
        assert f"SAM3 checkpoint {str(target)!r} ({form}) is a Hugging Face transformers SAM3 model (keys detector_model.*" in line
        assert "run it with --backend sam3-transformers (or auto)" in line


@pytest.mark.skipif(has_multiplex(), reason="the installed sam3 builds SAM 3.1 (tested in test_sam31.py)")
def test_a_sam31_multiplex_checkpoint_says_so_where_sam3_has_no_sam31(tmp_path, monkeypatch, capsys):
    multiplex = tmp_path / "sam3.1_multiplex.pt"
    torch.save({"detector.backbone.vision_backbone.trunk.pos_embed": torch.zeros(1), "tracker.model.sam_mask_decoder.w": torch.zeros(1)}, multiplex)
    line, step = both_ways(tmp_path, monkeypatch, capsys, multiplex)
    assert line == step
    assert f"{str(multiplex)!r} (pytorch) is a SAM 3.1 multiplex checkpoint (keys tracker.model.*): the installed sam3 has no SAM 3.1" in line
    assert "install sam3 from its repository (docs/sam3-implementations.md)" in line


def test_out_of_gpu_memory_names_the_device_and_the_settings_that_lower_it(tmp_path, monkeypatch, capsys, tiny):
    def too_full(model, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.38 GiB")

    monkeypatch.setattr(sam3_loading, "to_device", too_full)
    line, step = both_ways(tmp_path, monkeypatch, capsys, tiny[0], VITCOW_SAM3_GPUS="1")  # the simulated device cpu:1
    assert line == step
    assert line.startswith("out of GPU memory loading SAM3 on cpu:1; lower what a clip needs with --frames-per-clip")
    assert "--sam3-max-objects" in line and "cannot load" not in line and "checkpoint" not in line


def test_out_of_gpu_memory_on_a_gpu_gives_its_free_and_total_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (int(1.25 * 2**30), int(79.1 * 2**30)))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"NVIDIA H100 80GB HBM3 #{index}")
    message = accelerators.explain(torch.cuda.OutOfMemoryError("CUDA out of memory"), "cuda:1", "loading SAM3")
    assert message.startswith("out of GPU memory loading SAM3 on cuda:1 (NVIDIA H100 80GB HBM3 #1): 1.2 GiB free of 79.1 GiB; ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has CUDA")
def test_cuda_asked_for_on_a_host_without_it(tmp_path, monkeypatch, capsys, tiny):
    line, step = both_ways(tmp_path, monkeypatch, capsys, tiny[0], VITCOW_SAM3_DEVICE="cuda")
    assert line == step == (
        f"SAM3 device cuda asked for but CUDA is unavailable: torch {torch.__version__} is a CPU-only build; use a GPU host, "
        "or device cpu (set VITCOW_SAM3_DEVICE or --sam3-device)"
    )


def test_triton_unable_to_build_says_what_the_host_lacks(tmp_path, monkeypatch, capsys, tiny):
    import sam3.perflib.nms as nms

    def no_compiler(*args, **kwargs):
        raise RuntimeError(TRITON_ERROR)

    monkeypatch.setattr(nms, "generic_nms", no_compiler)  # as nms_triton fails on a GPU without cc
    line, step = both_ways(tmp_path, monkeypatch, capsys, tiny[0])
    assert line == step
    assert line.startswith(f"Triton could not build SAM3's GPU kernels on cpu (RuntimeError: {TRITON_ERROR}): the host or image needs a C compiler")
    assert "python3-dev" in line


def test_triton_failing_mid_run_is_one_line_too(tiny, monkeypatch):
    segmenter = load_sam3(Sam3Settings(checkpoint=str(tiny[0]), device="cpu", score_threshold=0.0, new_object_threshold=1.01))
    import sam3.perflib.nms as nms

    monkeypatch.setattr(nms, "generic_nms", lambda *a, **k: (_ for _ in ()).throw(RuntimeError(TRITON_ERROR)))
    frames = [render(i, W, H, bg=background(W, H)) for i in range(2)]
    with pytest.raises(accelerators.AcceleratorError, match="^Triton could not build SAM3's GPU kernels on cpu .*C compiler") as info:
        with segmenter.start_session(frames) as session:
            session.add_text_prompt("cow", 0)
            list(session.propagate())
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not Path("/usr/bin/setpriv").exists(), reason="needs setpriv to read as another user")
def test_an_unreadable_checkpoint(tmp_path):
    """Read as an unprivileged user (root reads anything) through the CLI: exit 2, one line."""
    work = Path(tempfile.mkdtemp(prefix="vitcow-unreadable-"))
    os.chmod(work, 0o777)
    secret = work / "sam3.pt"
    secret.write_bytes(b"PK\x03\x04 secret")
    os.chmod(secret, 0o600)
    video = write_video(work / "pen.mp4", frames=8, width=W, height=H)
    os.chmod(video, 0o644)
    env = {**os.environ, "VITCOW_HOME": str(work / "home"), "DAGSTER_HOME": str(work / "home" / "dagster"), "HOME": str(work),
           "VITCOW_SAM3_CHECKPOINT": str(secret), "VITCOW_SAM3_DEVICE": "cpu"}
    user = [] if os.geteuid() != 0 else ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    done = subprocess.run([*user, sys.executable, "-m", "vitcow_assets.cli", "run", str(video), "--backend", "sam3"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=work)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0] == f"vitcow: SAM3 checkpoint {str(secret)!r} is not readable (Permission denied) (set VITCOW_SAM3_CHECKPOINT or --sam3-checkpoint)"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def _masks(segmenter, frames):
    with segmenter.start_session(frames) as session:
        session.add_text_prompt("cow", 0)
        return {r.clip_frame: r.detections for r in session.propagate()}


def test_the_release_layout_as_safetensors_or_wrapped_loads_like_sam3_pt(tiny, tmp_path):
    from safetensors.torch import save_file

    path, state = tiny
    assert any(t.dtype == torch.complex64 for t in state.values())  # freqs_cis: safetensors keeps complex64
    save_file(state, tmp_path / "sam3.safetensors")
    torch.save({"model": state}, tmp_path / "wrapped.pt")
    frames = [render(i * 4, W, H, bg=background(W, H)) for i in range(4)]
    thresholds = {"device": "cpu", "score_threshold": 0.0, "new_object_threshold": 1.01}
    loaded = [load_sam3(Sam3Settings(checkpoint=str(p), **thresholds)) for p in (path, tmp_path / "sam3.safetensors", tmp_path / "wrapped.pt")]
    with cpu_mode():  # the weights are what SAM3's own loading (load_state_dict, strict) gives, tensor for tensor
        from sam3.model_builder import build_sam3_video_model

        theirs = build_sam3_video_model(checkpoint_path=str(path), load_from_HF=False, bpe_path=find_bpe_path(), device="cpu").state_dict()
    for segmenter in loaded:
        ours = segmenter.predictor.model.state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs)
    results = [_masks(segmenter, frames) for segmenter in loaded]
    reference = results[0]
    assert any(len(d) for d in reference.values())
    for other in results[1:]:
        assert sorted(other) == sorted(reference)
        for i in reference:
            assert np.array_equal(other[i].object_ids, reference[i].object_ids) and np.array_equal(other[i].masks, reference[i].masks)


def test_the_loaded_predictor_sets_what_sam3s_own_constructor_sets():
    """``LoadedPredictor`` skips ``Sam3VideoPredictor.__init__`` (which would load the file
    again): it must set every attribute that constructor sets, so a sam3 upgrade that adds
    one fails here."""
    import ast
    import inspect

    from sam3.model.sam3_video_predictor import Sam3VideoPredictor

    def assigned(function) -> set[str]:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        return {t.attr for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}

    ours = sam3_loading.loaded_predictor_class().__init__
    assert assigned(Sam3VideoPredictor.__init__) == assigned(ours) == {"async_loading_frames", "video_loader_type", "model"}


def test_failures_are_config_errors_naming_the_setting(tiny, tmp_path):
    with pytest.raises(SegmenterConfigError) as info:
        load_sam3(Sam3Settings(checkpoint=str(tmp_path / "missing.pt"), device="cpu"))
    assert info.value.setting == "checkpoint"


def test_a_process_launched_as_one_rank_of_many_still_runs_one_whole_model(tiny, monkeypatch):
    """SAM3's multi-GPU predictor is gone (docs/configuration.md): every model is whole, on
    one device, and needs no process group, even in a process whose environment says it is
    rank 1 of 2 (torchrun, a PyTorchJob pod), which SAM3's constructors read."""
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29591"}.items():
        monkeypatch.setenv(name, value)
    segmenter = load_sam3(Sam3Settings(checkpoint=str(tiny[0]), device="cpu", gpus=(0, 1), score_threshold=0.0, new_object_threshold=1.01), device="cpu:1")
    ranked = [m for m in segmenter.predictor.model.modules() if hasattr(m, "world_size")]
    assert len(ranked) >= 2 and {(m.rank, m.world_size) for m in ranked} == {(0, 1)}  # the video model and its detector
    frames = [render(i * 4, W, H, bg=background(W, H)) for i in range(3)]
    found = _masks(segmenter, frames)
    assert sorted(found) == [0, 1, 2] and any(len(d) for d in found.values())
    assert not torch.distributed.is_initialized()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"]) == ("1", "2")  # the process's environment is not ours to change
