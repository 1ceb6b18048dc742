"""The explicit CPU path for SAM3 (``device="cpu"``): for tests and smoke runs only.

Meta's ``sam3`` 0.1.4 assumes CUDA throughout. Nothing here is used on a GPU: the SAM3
backend enters ``cpu_mode()`` only when its device is ``cpu``. What it does, and why:

- torchvision from PyPI next to a CPU torch cannot register its C++ ops: see
  ``torch_imports`` (also used on every device, before open_clip is imported);
- torchvision's Python ``roi_align`` fallback is lazily ``torch.compile``d (seconds per new
  shape): the uncompiled function is used;
- the CPU connected-components helper fails on a batch of zero masks: it gets a guard;
- the predictor asks ``torch.cuda`` for device properties and counts (SAM 3.1's modules for
  device 0's compute capability when imported): CPU answers;
- a ``TorchFunctionMode`` maps cuda devices to cpu, makes ``.cuda()``/``.pin_memory()``
  no-ops (and ``pin_memory=True`` allocations plain ones) and keeps float32 where the code
  casts to bfloat16.
"""

import contextlib
import sys
import types

import torch
from torch.overrides import TorchFunctionMode

from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable

_installed = False


def _is_cuda(device) -> bool:
    if isinstance(device, torch.device):
        return device.type == "cuda"
    return isinstance(device, str) and device.startswith("cuda")


class CudaToCpu(TorchFunctionMode):
    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.Tensor.cuda, torch.Tensor.pin_memory):
            return args[0]
        if _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        if kwargs.get("dtype") is torch.bfloat16:
            kwargs["dtype"] = torch.float32
        if kwargs.get("pin_memory"):  # SAM 3.1 allocates pinned buffers for its outputs
            kwargs["pin_memory"] = False
        if func is torch.Tensor.to:
            args = tuple("cpu" if _is_cuda(a) else torch.float32 if a is torch.bfloat16 else a for a in args)
        return func(*args, **kwargs)


def install() -> None:
    """Patch what ``sam3`` needs to import and run on CPU; idempotent."""
    global _installed
    if _installed:
        return
    make_torch_stack_importable()
    import torchvision.ops.roi_align  # noqa: F401

    roi_align_module = sys.modules["torchvision.ops.roi_align"]
    roi_align_module._roi_align = getattr(roi_align_module._roi_align, "__wrapped__", roi_align_module._roi_align)

    import sam3.perflib.connected_components as components

    original = components.connected_components_cpu

    def connected_components_cpu(masks):
        if masks.shape[0] == 0:
            empty = torch.zeros_like(masks, dtype=torch.int64)
            return empty, empty.clone()
        return original(masks)

    components.connected_components_cpu = connected_components_cpu

    import sam3.model.sam3_video_predictor as video_predictor

    video_predictor.Sam3VideoPredictor._get_torch_and_gpu_properties = lambda self: f"torch {torch.__version__} (cpu)"
    if not torch.cuda.is_available():
        torch.cuda.current_device = lambda: 0
        torch.cuda.device_count = lambda: 1
        torch.cuda.set_device = lambda *a, **k: None
        # SAM 3.1's modules ask for device 0's compute capability when imported (to turn TF32 on)
        torch.cuda.get_device_properties = lambda *a, **k: types.SimpleNamespace(major=0, minor=0, name="cpu", total_memory=0)
        # SAM 3.1's close_session reports GPU memory, catching only RuntimeError (a CPU torch asserts)
        torch.cuda.mem_get_info = lambda *a, **k: (0, 0)
    _installed = True


@contextlib.contextmanager
def cpu_mode():
    """Run SAM3 calls on CPU (thread-local: enter it in the thread that calls SAM3)."""
    install()
    with CudaToCpu():
        yield
