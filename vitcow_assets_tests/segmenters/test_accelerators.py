"""What the SAM3 backend tells of accelerators without a model (``segmenters.accelerators``):
CUDA asked for on a CUDA build of torch that sees no GPU (no driver), GPUs named that the
host does not show, simulated devices, and Triton's build failures told from Triton's own
frames in a traceback. torch's CUDA queries are replaced to stand for a GPU host; the same
lines through ``vitcow run`` and a Dagster step are in ``test_sam3_failures``."""

import subprocess

import pytest

torch = pytest.importorskip("torch")

from vitcow_assets.runtime.processes import host_tag  # noqa: E402
from vitcow_assets.segmenters import accelerators  # noqa: E402
from vitcow_assets.segmenters.base import SegmenterConfigError  # noqa: E402


@pytest.fixture()
def cuda_build_without_a_driver(monkeypatch):
    """A CUDA 13.0 build of torch on a host whose driver is missing: no GPU visible."""
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def test_cuda_asked_for_on_a_cuda_build_without_a_driver_says_so_in_one_line(cuda_build_without_a_driver):
    with pytest.raises(SegmenterConfigError) as info:
        accelerators.resolve_kind("cuda", ())
    assert str(info.value) == (
        f"SAM3 device cuda asked for but CUDA is unavailable: torch {torch.__version__} (CUDA 13.0) sees no GPU "
        "(no driver or no device, CUDA_VISIBLE_DEVICES=''); use a GPU host, or device cpu"
    )
    assert info.value.setting == "device"
    with pytest.raises(SegmenterConfigError, match=r"^SAM3 gpus 0,1 asked for but CUDA is unavailable: .*sees no GPU") as info:
        accelerators.resolve_kind("auto", (0, 1))
    assert info.value.setting == "gpus"
    assert accelerators.resolve_kind("auto", ()) == "cpu"  # auto without GPUs named: the CPU, quietly


def test_gpus_the_host_does_not_show_are_refused_naming_what_it_shows(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(SegmenterConfigError) as info:
        accelerators.lease_candidates("cuda", (1, 2, 5))
    assert str(info.value) == "gpus 2,5 not visible: this host shows 2 GPU(s), 0 to 1" and info.value.setting == "gpus"


def test_every_visible_gpu_is_a_candidate_named_by_its_uuid(monkeypatch):
    class Properties:
        def __init__(self, index: int) -> None:
            self.uuid = f"0000-{index}"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "get_device_properties", Properties)
    every = accelerators.lease_candidates("auto", ())
    assert [(d.name, d.key) for d in every] == [("cuda:0", "GPU-0000-0"), ("cuda:1", "GPU-0000-1"), ("cuda:2", "GPU-0000-2")]
    assert [d.name for d in accelerators.lease_candidates("cuda", (2, 0))] == ["cuda:2", "cuda:0"]


def test_simulated_devices_on_the_cpu_and_no_lease_for_a_plain_cpu_run():
    simulated = accelerators.lease_candidates("cpu", (0, 3))
    assert [(d.name, d.key) for d in simulated] == [("cpu:0", f"{host_tag()}-cpu0"), ("cpu:3", f"{host_tag()}-cpu3")]
    assert accelerators.lease_candidates("cpu", ()) is None
    assert accelerators.torch_device("cpu:3") == "cpu" and accelerators.torch_device("cuda:1") == "cuda:1"


def test_a_failure_inside_tritons_build_code_is_a_kernel_build_error_whatever_it_says():
    """A compiler's exit (no ``Python.h``, say) raised from Triton's build module reads as what the
    host lacks, even when its message says nothing of it; the same error elsewhere does not."""
    namespace = {"__name__": "triton.runtime.build", "subprocess": subprocess}
    exec("def _build():\n    raise subprocess.CalledProcessError(1, ['gcc', 'main.c'])\n", namespace)
    try:
        namespace["_build"]()
    except subprocess.CalledProcessError as exc:
        in_triton = exc
    assert accelerators.is_kernel_build_error(in_triton)
    message = accelerators.explain(in_triton, "cuda:0", "loading SAM3")
    assert message.startswith("Triton could not build SAM3's GPU kernels on cuda:0 (CalledProcessError: Command '['gcc', 'main.c']'")
    assert message.endswith(accelerators.TRITON_NEEDS) and "\n" not in message
    elsewhere = subprocess.CalledProcessError(1, ["gcc", "main.c"])
    assert not accelerators.is_kernel_build_error(elsewhere) and accelerators.explain(elsewhere, "cuda:0", "loading SAM3") is None
    wrapped = RuntimeError("first add_prompt failed")
    wrapped.__cause__ = RuntimeError("fatal error: Python.h: No such file or directory")
    assert accelerators.is_kernel_build_error(wrapped)  # told from the cause's message
