"""SAM 3.1 (object multiplex) in the ``sam3`` backend, where the installed ``sam3`` has it:
the only module that knows ``build_sam3_multiplex_video_predictor`` and how SAM 3.1's
requests differ from SAM3's. No PyPI release of ``sam3`` (up to 0.1.4) has SAM 3.1; Meta's
repository does (docs/sam3-implementations.md says how to install it).

- **Building.** Meta's builder, given the checkpoint, loads it with ``strict=False`` and only
  prints what did not fit; here the file's tensor names and shapes are then compared with the
  model's, and a checkpoint that leaves any model weight unloaded (or holds tensors the model
  has no place for) is refused in one line. FlashAttention-3 is used only on CUDA and only
  where ``flash_attn_interface`` imports (Meta's default is to use it on every GPU); real-valued
  rotary tables (``use_rope_real``, for ``torch.compile``) only when compiling, else the
  complex ones the release file holds.
- **Settings.** The project's thresholds, hot-start delay and object cap are handed to
  SAM 3.1 as they are (its own defaults differ: detection 0.4, new object 0.65, at most 16
  objects; ``max_objects`` 0 means no cap, as for SAM3).
- **Frames** are the project's prepared clip (``segmenters.sam3.prepare_clip``), handed to
  SAM 3.1's ``init_state`` as to SAM3's.
- **Requests.** ``start_session`` passes an ``offload_state_to_cpu`` flag SAM 3.1's model does
  not take (issue 544): dropped on the way; ``remove_object`` takes ``frame_index`` (the frame whose results come back;
  the object leaves every frame); ``close_session`` answers with ``gpu_mem``; a session
  expires ``SESSION_EXPIRY_S`` after its last use in Meta's predictor, so a session is refused
  well before that (a clip's session lives seconds; one that did not would lose its state).
"""

import contextlib
import importlib.metadata
import importlib.util
import inspect
import io
import time

from vitcow_assets.core.checkpoint_kinds import key_differences
from vitcow_assets.segmenters import accelerators
from vitcow_assets.segmenters.base import SegmenterConfigError
from vitcow_assets.segmenters.checkpoints import CheckpointInfo, tensor_shapes
from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable

#: Meta's SAM 3.1 session expiry (``session_expiration_sec``)
SESSION_EXPIRY_S = 1200
#: the rotary tables' names (the ViT's), computed from the model's sizes
ROTARY_TABLES = ("freqs_cis", "freqs_cis_real", "freqs_cis_imag")
#: how long before expiry a session stops taking requests
EXPIRY_MARGIN_S = 120
BUILDER = "build_sam3_multiplex_video_predictor"


def has_multiplex() -> bool:
    """Whether the installed ``sam3`` builds SAM 3.1 (Meta's repository since 2026-03)."""
    if importlib.util.find_spec("sam3") is None:
        return False
    make_torch_stack_importable()  # sam3's builder imports torchvision
    try:
        import sam3.model_builder as builder
    except ImportError:
        return False
    return hasattr(builder, BUILDER)


def sam3_version() -> str:
    return importlib.metadata.version("sam3")


def use_fa3(device_name: str) -> bool:
    """FlashAttention-3 only on CUDA and only where its module imports."""
    return device_name.startswith("cuda") and importlib.util.find_spec("flash_attn_interface") is not None


def computed_from_config(name: str) -> bool:
    """A rotary table: a buffer the model computes from its sizes (complex ``freqs_cis`` in the
    release file; real and imaginary parts when built with ``use_rope_real``), not a weight."""
    return name.endswith(ROTARY_TABLES)


def check_loaded(path: str, model_state: dict, file_shapes: dict[str, tuple[int, ...]]) -> None:
    """Every model tensor came from the file, with its shape, and nothing in the file was left
    over (rotary tables aside: ``computed_from_config``); ``file_shapes``: the file's tensor
    shapes (``checkpoints.tensor_shapes``)."""
    model_state = {k: v for k, v in model_state.items() if not computed_from_config(k)}
    file_shapes = {k: v for k, v in file_shapes.items() if not computed_from_config(k)}
    differences = key_differences(model_state, file_shapes)
    if differences:
        raise SegmenterConfigError(f"SAM 3.1 checkpoint {path!r} leaves model weights unloaded or does not fit: {differences}", setting="checkpoint")
    for name, tensor in model_state.items():
        if tuple(file_shapes[name]) != tuple(tensor.shape):
            raise SegmenterConfigError(
                f"SAM 3.1 checkpoint {path!r} does not fit this SAM 3.1: {name} is {tuple(file_shapes[name])} in the file, "
                f"{tuple(tensor.shape)} in the model", setting="checkpoint",
            )


def build_multiplex_predictor(info: CheckpointInfo, bpe: str, device_name: str, max_objects: int, compile_model: bool):
    """Meta's ``Sam3MultiplexVideoPredictor`` with the checkpoint's weights, checked; run it in
    the backend's mode (the CPU mapping, or the GPU under bfloat16 autocast)."""
    from sam3.model_builder import build_sam3_multiplex_video_predictor

    with contextlib.redirect_stdout(io.StringIO()):  # its prints of what strict=False left: checked below instead
        predictor = build_sam3_multiplex_video_predictor(
            checkpoint_path=info.path, bpe_path=bpe, max_num_objects=max_objects, use_fa3=use_fa3(device_name),
            use_rope_real=compile_model, compile=compile_model, warm_up=False, session_expiration_sec=SESSION_EXPIRY_S, async_loading_frames=False,
        )
    check_loaded(info.path, predictor.model.state_dict(), tensor_shapes(info))
    predictor.model.to(accelerators.torch_device(device_name)).eval()
    _take_every_start_session_flag(predictor.model)
    return predictor


def _take_every_start_session_flag(model) -> None:
    """Meta's ``start_session`` hands ``init_state`` an ``offload_state_to_cpu`` flag that SAM
    3.1's model does not take (a ``TypeError`` on every session; facebookresearch/sam3 issue
    544): where it does not, the flag (always False here) is dropped on the way."""
    init_state = model.init_state
    if "offload_state_to_cpu" in inspect.signature(init_state).parameters:
        return

    def init_state_without_state_offload(*args, offload_state_to_cpu=False, **kwargs):
        return init_state(*args, **kwargs)

    model.init_state = init_state_without_state_offload


def share_prepared_input_hook() -> None:
    """SAM 3.1's ``init_state`` takes the project's prepared clip as SAM3's does: its module
    gets the loader SAM3's module was given (``segmenters.sam3``; anything else still goes to
    Meta's own loader)."""
    import sam3.model.sam3_multiplex_tracking as multiplex_tracking
    import sam3.model.sam3_video_inference as video_inference

    multiplex_tracking.load_resource_as_video_frames = video_inference.load_resource_as_video_frames


class MultiplexRequests:
    """What the backend's requests need for SAM 3.1: ``remove_object`` with ``frame_index`` (0,
    the clip's first frame: the object leaves every frame either way), and each session's
    last use, a request refused when its session is close to Meta's expiry."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.last_use: dict[str, float] = {}

    def before(self, request: dict) -> dict:
        kind, session = request.get("type"), request.get("session_id")
        if session is not None and kind != "close_session":
            idle = self.clock() - self.last_use.get(session, self.clock())
            if idle > SESSION_EXPIRY_S - EXPIRY_MARGIN_S:
                raise RuntimeError(
                    f"SAM 3.1 session idle for {idle:.0f} s, within {EXPIRY_MARGIN_S} s of its {SESSION_EXPIRY_S} s expiry: the clip's "
                    "session lost its state; use shorter clips (frames_per_clip)"
                )
            self.last_use[session] = self.clock()
        if kind == "close_session":
            self.last_use.pop(session, None)
        if kind == "remove_object":
            return {**request, "frame_index": request.get("frame_index", 0)}
        return request

    def after(self, request: dict, response: dict) -> dict:
        """A new session's id starts its clock."""
        if request.get("type") == "start_session" and "session_id" in response:
            self.last_use[response["session_id"]] = self.clock()
        return response
