"""What the SAM3 backend knows of accelerators without holding a model: which device kind a
setting means here, the devices a step may lease (``runtime.device_leases``), what a device
has free, and how a failure on the CUDA side reads, in one line.

- **Devices.** ``cuda`` devices are the visible GPUs (or those ``gpus`` names), each leased
  by its UUID, which ``CUDA_VISIBLE_DEVICES`` does not renumber, so two workers that each see
  "their" GPU as ``cuda:0`` never take the same one. With ``device cpu`` (tests and smoke
  runs), ``gpus`` names simulated devices ``cpu:N``: leased the same way, run on the CPU.
- **Failures.** Out of GPU memory names the device, its free and total memory and the
  settings that lower what a clip needs; CUDA asked for but missing says whether torch is a
  CPU build or sees no GPU; Triton unable to build SAM3's kernels (no C compiler, no Python
  headers) says what the host or image lacks.

torch is imported only inside the functions that need it.
"""

import os
import sys
import traceback

from vitcow_assets.runtime.device_leases import Device
from vitcow_assets.runtime.processes import host_tag
from vitcow_assets.segmenters.base import SegmenterConfigError

GIB = 1 << 30
#: what lowers the memory a clip needs on the device: the settings' flags
MEMORY_SETTINGS = "--frames-per-clip (frames held by one session) and --sam3-max-objects (objects tracked at once)"
#: what a host or image needs for Triton to build SAM3's kernels at first use
TRITON_NEEDS = "the host or image needs a C compiler and the Python headers (Debian/Ubuntu: apt-get install gcc python3-dev; or set CC)"
_TRITON_SIGNS = ("failed to find c compiler", "python.h", "triton.knobs.build")


class AcceleratorError(RuntimeError):
    """The accelerator failed mid-run in a way the host must fix; the message is one line."""


def cuda_unavailable_reason() -> str:
    """Why torch sees no CUDA GPU here, in a few words."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (no driver or no device{where})"


def resolve_kind(device: str, gpus: tuple[int, ...]) -> str:
    """``cuda`` or ``cpu`` for the ``device`` setting (``auto``, ``cuda``, ``cpu``)."""
    import torch

    if device not in ("auto", "cuda", "cpu"):
        raise SegmenterConfigError(f"device must be auto, cuda or cpu, got {device!r}", setting="device")
    if device == "cpu" or (device == "auto" and not gpus and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        asked = "device cuda" if device == "cuda" else f"gpus {','.join(map(str, gpus))}"
        raise SegmenterConfigError(f"SAM3 {asked} asked for but CUDA is unavailable: {cuda_unavailable_reason()}; use a GPU host, or device cpu", setting="device" if device == "cuda" else "gpus")
    return "cuda"


def lease_candidates(device: str, gpus: tuple[int, ...]) -> list[Device] | None:
    """The devices a step may lease for ``device`` and ``gpus``: every visible GPU (or those
    named); simulated ``cpu:N`` devices for ``gpus`` on the CPU; None (no lease) for a plain
    CPU run."""
    if resolve_kind(device, gpus) == "cpu":
        return [Device(f"cpu:{i}", f"{host_tag()}-cpu{i}") for i in gpus] or None
    import torch

    count = torch.cuda.device_count()
    wrong = [i for i in gpus if not 0 <= i < count]
    if wrong:
        raise SegmenterConfigError(f"gpus {','.join(map(str, wrong))} not visible: this host shows {count} GPU(s), 0 to {count - 1}", setting="gpus")
    return [Device(f"cuda:{i}", _gpu_key(i)) for i in (gpus or range(count))]


def _gpu_key(index: int) -> str:
    """The GPU's UUID (stable whatever ``CUDA_VISIBLE_DEVICES`` says), or a host-tagged index."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return f"GPU-{uuid}" if uuid is not None else f"{host_tag()}-cuda{index}"


def torch_device(name: str) -> str:
    """The torch device a leased name runs on: ``cuda:1`` as it is, ``cpu:0`` (simulated) on ``cpu``."""
    return "cpu" if name.startswith("cpu") else name


def memory_line(name: str) -> str:
    """``cuda:1 (NVIDIA H100 80GB HBM3): 0.4 GiB free of 79.1 GiB``; for the CPU only its name."""
    torch = sys.modules.get("torch")
    if torch is None or not name.startswith("cuda") or not torch.cuda.is_available():
        return name
    index = int(name.split(":")[1]) if ":" in name else torch.cuda.current_device()
    try:
        free, total = torch.cuda.mem_get_info(index)
        gpu = torch.cuda.get_device_name(index)
    except Exception:  # a device in a bad state: its name is still worth saying
        return name
    return f"{name} ({gpu}): {free / GIB:.1f} GiB free of {total / GIB:.1f} GiB"


def out_of_memory_message(what: str, name: str) -> str:
    """One line for an out-of-memory while ``what`` (``loading SAM3``) on device ``name``."""
    return f"out of GPU memory {what} on {memory_line(name)}; lower what a clip needs with {MEMORY_SETTINGS}, or free the GPU (another process may hold it)"


def is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def is_kernel_build_error(exc: BaseException) -> bool:
    """True when Triton failed to build a kernel or its launcher (no C compiler, no
    ``Python.h``): told from the message or from Triton's build code in the traceback."""
    for error in _chain(exc):
        text = str(error).lower()
        if any(sign in text for sign in _TRITON_SIGNS):
            return True
        modules = {frame.f_globals.get("__name__", "") for frame, _ in traceback.walk_tb(error.__traceback__)}
        if any(m.startswith(("triton.runtime.build", "triton.backends")) for m in modules) and type(error).__name__ in ("CalledProcessError", "RuntimeError"):
            return True
    return False


def kernel_build_message(exc: BaseException, name: str) -> str:
    first = next((str(e).strip().splitlines()[0] for e in _chain(exc) if str(e).strip()), type(exc).__name__)
    return f"Triton could not build SAM3's GPU kernels on {name} ({type(exc).__name__}: {first[:160]}): {TRITON_NEEDS}"


def explain(exc: BaseException, name: str, what: str) -> str | None:
    """The one-line message for a recognised accelerator failure during ``what``, else None."""
    if is_out_of_memory(exc):
        return out_of_memory_message(what, name)
    if is_kernel_build_error(exc):
        return kernel_build_message(exc, name)
    return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
