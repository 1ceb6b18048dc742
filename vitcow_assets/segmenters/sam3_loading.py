"""Building SAM3's video predictor from a checkpoint onto one device, every failure one line
saying what failed (``SegmenterConfigError``).

The order is chosen so that the cheap checks come first:

1. the checkpoint is inspected (``segmenters.checkpoints``): missing, unreadable, not a
   checkpoint, a transformers model (``--backend sam3-transformers`` runs it), or a SAM 3.1
   multiplex checkpoint where the installed sam3 has no SAM 3.1, fail here, in a second;
2. the model is built by ``sam3``'s own ``build_sam3_video_model`` without weights (one whole
   model, whatever rank the process's environment names), and the file's tensor names and
   shapes are compared with the model's: a file that is not this SAM3 names its first
   missing and unexpected keys;
3. the tensors (PyTorch file, memory-mapped, or safetensors) are copied in one at a time (no
   second copy of the weights in memory), then the model moves to its device: out of GPU
   memory names the device and its free memory;
4. on the device, SAM3's mask NMS and connected components run once on a few values: on CUDA
   that makes Triton build its kernels now, so a host without a C compiler or the Python
   headers fails at load, not on its first clip.

A SAM 3.1 multiplex checkpoint goes to Meta's own builder instead (``segmenters.sam3_multiplex``:
checked after loading, since that builder loads with ``strict=False``), then step 4.

The predictor is SAM3's own ``Sam3VideoPredictor`` around the loaded model
(``LoadedPredictor``: the attributes its constructor sets, without the construction that
would load the file again).
"""

import contextlib
import logging
import warnings

from vitcow_assets.core.checkpoint_kinds import RELEASE_PREFIXES, CheckpointKind, key_differences, shown
from vitcow_assets.segmenters import accelerators
from vitcow_assets.segmenters.base import SegmenterConfigError
from vitcow_assets.segmenters.checkpoints import CheckpointError, CheckpointInfo, inspect_checkpoint, iter_tensors, tensor_shapes

#: what each other layout is, and why the sam3 backend does not load it
REFUSED = {
    CheckpointKind.TRANSFORMERS: (
        "is a Hugging Face transformers SAM3 model (keys detector_model.*, for transformers' Sam3VideoModel): the sam3 backend "
        "(Meta's package) loads Meta's release layout (sam3.pt: keys detector.* and tracker.*); run it with --backend "
        "sam3-transformers (or auto)"
    ),
    CheckpointKind.SAM31_MULTIPLEX: (
        "is a SAM 3.1 multiplex checkpoint (keys tracker.model.*): the installed sam3 has no SAM 3.1 (no "
        "build_sam3_multiplex_video_predictor; no PyPI release has it): install sam3 from its repository "
        "(docs/sam3-implementations.md), or use SAM3's release checkpoint (sam3.pt)"
    ),
}


def _refuse(path: str, reason: str) -> SegmenterConfigError:
    return SegmenterConfigError(f"SAM3 checkpoint {path!r} {reason}", setting="checkpoint")


def inspect_sam3_checkpoint(path: str | None) -> CheckpointInfo:
    """Step 1: the checkpoint, if it is a file (or folder) of a layout the backend loads."""
    if not path:
        raise SegmenterConfigError("the sam3 backend needs a checkpoint: the path of a SAM3 .pt (or .safetensors) file", setting="checkpoint")
    try:
        info = inspect_checkpoint(path)
    except CheckpointError as exc:
        raise _refuse(path, str(exc).removeprefix(repr(path)).strip()) from None
    if info.kind in REFUSED and not (info.kind is CheckpointKind.SAM31_MULTIPLEX and _has_multiplex()):
        raise _refuse(path, f"({info.format}) {REFUSED[info.kind]}")
    if info.kind is CheckpointKind.NOT_SAM3:  # told without building SAM3 (860M parameters)
        absent = " and ".join(f"{p}*" for p in RELEASE_PREFIXES if not any(k.startswith(p) for k in info.keys))
        others = sorted(k for k in info.keys if not k.startswith(RELEASE_PREFIXES))
        raise _refuse(path, f"is not a SAM3 checkpoint: missing every {absent} tensor" + (f"; unexpected {shown(others)}" if others else ""))
    return info


def _has_multiplex() -> bool:
    from vitcow_assets.segmenters.sam3_multiplex import has_multiplex

    return has_multiplex()


def check_tensors(path: str, model_state: dict, file_shapes: dict[str, tuple[int, ...]]) -> None:
    """Step 2: the file's tensors are the model's, name for name and shape for shape."""
    differences = key_differences(model_state, file_shapes)
    if differences:
        raise _refuse(path, f"is not a SAM3 checkpoint sam3 0.1.4 can load: {differences}")
    for name, tensor in model_state.items():
        if file_shapes[name] != tuple(tensor.shape):
            raise _refuse(path, f"does not fit this SAM3: {name} is {file_shapes[name]} in the file, {tuple(tensor.shape)} in the model")


def load_tensors(model, info: CheckpointInfo) -> None:
    """Steps 2 and 3 on the CPU: names and shapes checked, then every tensor copied into the
    model's own, one at a time (as ``load_state_dict(strict=True)`` would, without a second
    copy of the 3.4 GB of weights in memory)."""
    import torch

    model_state = model.state_dict()  # the model's own tensors (shared storage)
    check_tensors(info.path, model_state, tensor_shapes(info))
    with torch.no_grad():
        for name, tensor in iter_tensors(info):
            model_state[name].copy_(tensor)


def _quiet_sam3_info_logs() -> None:
    """SAM3 gives each of its modules a logger printing INFO lines to stderr (e.g. its object
    cap on every build); keep its warnings and errors only."""
    for name in list(logging.root.manager.loggerDict):
        if name == "sam3" or name.startswith("sam3."):
            logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _sam3_quietly(mode):
    with mode(), warnings.catch_warnings():
        # on CPU, SAM3's CUDA autocast decorators say they disable themselves: expected
        warnings.filterwarnings("ignore", message="CUDA is not available", category=UserWarning)
        import sam3.model.sam3_video_predictor  # noqa: F401 - its loggers exist once imported

        _quiet_sam3_info_logs()
        yield


def loaded_predictor_class():
    """``Sam3VideoPredictor`` around a model this module loaded (made once sam3 is importable)."""
    from sam3.model.sam3_video_predictor import Sam3VideoPredictor

    class LoadedPredictor(Sam3VideoPredictor):
        def __init__(self, model) -> None:  # what Sam3VideoPredictor.__init__ sets, with its defaults
            # its base's (the repository's sam3 keeps sessions in Sam3BasePredictor; 0.1.4 has none)
            super(Sam3VideoPredictor, self).__init__()
            self.async_loading_frames = False
            self.video_loader_type = "cv2"
            self.model = model

    return LoadedPredictor


def probe_kernels(device: str) -> None:
    """Step 4: SAM3's mask NMS and connected components once on ``device`` (on CUDA: Triton's
    kernels, built now)."""
    import torch
    from sam3.perflib.connected_components import connected_components
    from sam3.perflib.nms import generic_nms

    ious = torch.tensor([[1.0, 0.8], [0.8, 1.0]], device=device)
    generic_nms(ious, torch.tensor([0.9, 0.5], device=device), 0.5)
    mask = torch.zeros((1, 1, 8, 8), dtype=torch.uint8, device=device)
    mask[..., 2:4, 2:4] = 1
    connected_components(mask)


def as_one_whole_model(model) -> None:
    """Every part of ``model`` that SAM3 shards across ranks told it is rank 0 of 1. SAM3's
    video model and detector read ``RANK`` and ``WORLD_SIZE`` from the environment when
    built, for its multi-GPU predictor (not used here: docs/configuration.md); in a process
    launched as one rank of several (torchrun, a PyTorchJob pod) the model would keep only
    its share of objects and frames and stop at its first collective ("Default process group
    has not been initialized"). The environment itself is left as it is."""
    for module in model.modules():
        if hasattr(module, "world_size"):
            module.rank, module.world_size = 0, 1


def to_device(model, device: str):
    """The loaded model on ``device``, in eval mode (where a GPU too full to hold it says so)."""
    return model.to(device).eval()


def build_predictor(checkpoint: str | None, bpe: str, device_name: str, mode, max_objects: int = 0, compile_model: bool = False):
    """SAM3's predictor (SAM 3.1's for a multiplex checkpoint, where sam3 has it) with the
    checkpoint's weights on ``device_name`` (``cuda:1``, ``cpu``; ``cpu:0`` a simulated device),
    in ``mode`` (the CPU mapping, or the GPU with autocast); every failure one line.
    ``max_objects`` and ``compile_model`` go to SAM 3.1's builder (SAM3's are set afterwards)."""
    info = inspect_sam3_checkpoint(checkpoint)
    device = accelerators.torch_device(device_name)
    step = "building SAM3"
    try:
        with _sam3_quietly(mode):
            import torch

            if info.kind is CheckpointKind.SAM31_MULTIPLEX:
                from vitcow_assets.segmenters.sam3_multiplex import build_multiplex_predictor

                step = "building SAM 3.1"
                predictor = build_multiplex_predictor(info, bpe, device_name, max_objects, compile_model)
            else:
                from sam3.model_builder import build_sam3_video_model

                model = build_sam3_video_model(checkpoint_path=None, load_from_HF=False, bpe_path=bpe, device="cpu")
                as_one_whole_model(model)
                load_tensors(model, info)
                step = "loading SAM3"
                predictor = loaded_predictor_class()(to_device(model, device))
            step = "running SAM3's first kernels"
            with torch.inference_mode():
                probe_kernels(device)
            return predictor
    except SegmenterConfigError:
        raise
    except Exception as exc:
        explained = accelerators.explain(exc, device_name, step.replace("building", "loading"))
        if explained is not None:
            raise SegmenterConfigError(explained) from None  # the host's or the GPU's state, not a setting
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(info.path, f"could not be loaded ({step}: {type(exc).__name__}: {first[:200]})") from None
