"""One place that makes torch, torchvision and open_clip importable together, called before
anything imports them (the SAM3 backend calls it first thing).

PyPI's torchvision wheels are CUDA builds; beside the CPU torch the README installs
(``torch==2.13.0`` CPU), torchvision's C++ operators do not load and ``import torchvision``
raises ``operator torchvision::nms does not exist``. open_clip (whose BPE vocabulary SAM3
needs) and timm import torchvision, so without this any SAM3 checkpoint, good or bad, fails
on a machine without a GPU before it is even read. Defining the two operator schemas
torchvision looks up (``nms``, ``qnms``) before its first import lets the rest of it
(transforms, ``masks_to_boxes``, the Python ``roi_align`` fallback) import and work;
``torchvision.ops.nms`` itself stays unavailable there. Where torchvision imports as it is
(CUDA torch on a GPU host, or a matching CPU build), nothing is changed.

``sam3.model.edt`` imports triton when it is imported and serves only training; where triton
is not installed (a CPU install), a stand-in module takes its place, whose one function says
it needs triton. Every other sam3 module imports unchanged.
"""

import sys
import types

_library = None  # the schema definitions must stay alive


def _stand_in_for_sam3_edt() -> None:
    try:
        import triton  # noqa: F401
    except ImportError:
        edt = types.ModuleType("sam3.model.edt")

        def edt_triton(*args, **kwargs):
            raise NotImplementedError("sam3's edt_triton needs triton (a CUDA install)")

        edt.edt_triton = edt_triton
        sys.modules.setdefault("sam3.model.edt", edt)


def make_torch_stack_importable() -> None:
    """Import torchvision, defining its missing operator schemas if it fails, and stand in
    for ``sam3.model.edt`` without triton; idempotent."""
    global _library
    _stand_in_for_sam3_edt()
    if _library is not None or "torchvision.ops" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        import torch

        library = torch.library.Library("torchvision", "DEF")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _library = library
        import torchvision  # noqa: F401
    else:
        _library = False  # imports as it is: nothing to keep
