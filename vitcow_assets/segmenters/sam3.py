"""The SAM3 video predictor backend: the only module that knows SAM3's request and
response dictionaries (``sam3`` 0.1.4, Meta's package).

Frames are the project's own decoded frames, made into SAM3's input on the decode thread
(``prepare_clip``; SAM3's own ``.mp4`` loader forgets to divide by 255), by the ``resize``
setting: ``swscale`` (the default) has the decoder scale each frame straight from its
planes to the 1008 px input (bicubic, ``media.video.FrameScale``: no full-size RGB frame
is made), scaled to [-1, 1] as SAM3 does when the session starts, on the device; ``pil``
resizes full-size RGB frames and scales them exactly as SAM3 does it for PIL images,
value for value, on the CPU; ``bilinear`` only copies full-size frames into one tensor,
resized on the GPU when the session starts. A session holds one clip (about 6 MB of input
per frame at fp16), so memory is bounded by clip length.

Conversions at this edge: point and box prompts arrive in pixels of the frame and leave
normalised to [0, 1] (boxes as top-left ``x, y, w, h``); masks come back at frame size, are
cut at once to their pixels' box (``core.masks.BoxMasks``: a clip's masks then take the
animals' area, not frames' area) and boxes are those pixel boxes as ``xyxy`` (SAM3's boxes
use an inclusive far edge), dropping objects whose mask is empty on a frame.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import gc
import importlib.metadata
import math
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from vitcow_assets.core.checkpoint_kinds import CheckpointKind
from vitcow_assets.core.settings import check, setting
from vitcow_assets.core.detections import Detections
from vitcow_assets.core.masks import BoxMasks
from vitcow_assets.media.video import FrameScale, ScaledFrame, rgb_to_scaled
from vitcow_assets.segmenters import accelerators
from vitcow_assets.segmenters.base import FrameResult, PromptError, SegmenterBase, SegmenterConfigError
from vitcow_assets.segmenters.sam3_loading import build_predictor, inspect_sam3_checkpoint
from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable


#: how frames become SAM3's input: ``planes_to_input`` (swscale), ``frames_to_input`` (pil)
#: or ``pixels_to_input`` (bilinear)
RESIZES = ("swscale", "pil", "bilinear")
#: swscale's filter for ``resize`` ``swscale``: bicubic, as PIL's resize in SAM3's loader
SWSCALE_FILTER = "bicubic"


@dataclasses.dataclass(frozen=True)
class Sam3Settings:
    """The SAM3 backend's settings (environment ``VITCOW_SAM3_<FIELD>``, flags ``--sam3-<field>``).

    ``hotstart_delay``: SAM3 holds back and may drop objects during the first N frames of a
    session (15 by default in the package); on 20-frame clips that removes objects found on
    the first frame, so the default here is 0 (every detection is kept)."""

    checkpoint: str | None = setting(
        None, "SAM3 checkpoint: Meta's release file (sam3.pt, or the same tensors as .safetensors), a SAM 3.1 multiplex file, or a "
        "transformers model (folder with config.json, or its model.safetensors); with backend auto, setting it chooses the "
        "implementation (docs/sam3-implementations.md)"
    )
    device: str = setting("auto", "auto, cuda or cpu (cpu: tests and smoke runs only)", choices=("auto", "cuda", "cpu"))
    gpus: tuple[int, ...] = setting(
        (), "GPUs this host's steps share out, one model each (indices, comma-separated; unset: every visible GPU); with device "
        "cpu, simulated devices cpu:N (tests)"
    )
    bpe_path: str | None = setting(None, "CLIP BPE vocabulary file (default: the one open_clip ships)")
    score_threshold: float = setting(0.5, "detection score to keep an object", aliases=("--score-threshold",))
    new_object_threshold: float = setting(0.7, "detection score to start a new object", aliases=("--new-object-threshold",))
    hotstart_delay: int = setting(0, "frames SAM3 may hold back new objects at a session's start (see above)")
    max_objects: int = setting(0, "at most N objects per clip and query, lowest scores dropped first (0: no cap)", aliases=("--max-objects",))
    compile: bool = setting(
        False, "torch.compile SAM3's detector and tracker, warmed up at load for 0 to max_objects objects (CUDA only; needs "
        "max_objects; see below)", aliases=("--compile",)
    )
    resize: str = setting(
        "swscale", "how frames become the model's input: swscale (the decoder scales each frame straight to the input size, "
        "bicubic, no full-size RGB frame: the fast CPU path), pil (full-size RGB frames resized as SAM3's own loader does, "
        "value for value, on the CPU) or bilinear (antialiased bilinear, as SAM3's training resizes, on the GPU: the CPU "
        "only copies full-size frames); see docs/performance.md for their differences",
        choices=RESIZES,
    )
    transformers_config: str | None = setting(
        None, "sam3-transformers only: the config.json giving the model's sizes when the checkpoint is Meta's release layout "
        "(converted on load; default: transformers' SAM3 configuration, that of the released sam3.pt)"
    )
    transformers_parity: bool = setting(
        True, "sam3-transformers only: where transformers' pipeline departs from Meta's (the detector's prompt, new objects' "
        "masks entering the tracker), do as Meta's does (docs/sam3-implementations.md); false: transformers as it is"
    )

    def __post_init__(self) -> None:
        check("max_objects", self.max_objects >= 0, f"max_objects must be 0 (no cap) or more, got {self.max_objects}")
        for name in ("score_threshold", "new_object_threshold"):
            check(name, getattr(self, name) >= 0, f"{name} must be >= 0 (above 1: nothing passes), got {getattr(self, name)}")
        check("hotstart_delay", self.hotstart_delay >= 0, f"hotstart_delay must be >= 0, got {self.hotstart_delay}")
        check("resize", self.resize in RESIZES, f"resize must be one of {', '.join(RESIZES)}, got {self.resize!r}")
        check("gpus", all(i >= 0 for i in self.gpus), f"gpus are indices from 0, got {','.join(map(str, self.gpus))}")
        check("gpus", len(set(self.gpus)) == len(self.gpus), f"gpus must not repeat, got {','.join(map(str, self.gpus))}")
        check(
            "compile", not self.compile or self.max_objects > 0,
            "compile needs max_objects above 0: SAM3 compiles its tracker for each object count, warmed up at load for 0 to max_objects",
        )


def find_bpe_path() -> str:
    """CLIP's BPE vocabulary, shipped by open_clip (the sam3 wheel lacks it)."""
    try:
        import open_clip
    except ImportError:
        raise SegmenterConfigError("the sam3 backend needs open_clip_torch for its BPE vocabulary: pip install 'vitcow_assets[sam3]'") from None
    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise SegmenterConfigError(f"BPE vocabulary not found at {path}", setting="bpe_path")
    return str(path)


#: what a ``Sam3Frames``' tensor holds (``Sam3Frames.kind``)
TENSOR_KINDS = ("input", "planes", "pixels")


class Sam3Frames(list):
    """One clip's frames (as a list) with ``tensor``, made on the decode thread
    (``Sam3Segmenter.prepare_frames``) so that starting a session only hands the tensor to
    the device. Slicing keeps the two in step. ``kind`` says what ``tensor`` holds:
    ``input``, the model's input itself (``float16 (N, 3, S, S)``: ``resize`` ``pil``);
    ``planes``, the model's input before SAM3's scaling (``uint8 (N, 3, S, S)`` RGB planes:
    ``resize`` ``swscale``, scaled on the device, ``planes_to_input``); ``pixels``, the
    frames' pixels (``uint8 (N, H, W, 3)``: ``resize`` ``bilinear``, resized on the device,
    ``pixels_to_input``). Both uint8 kinds are in pinned memory where CUDA is. The frames
    are ``(H, W, 3) uint8`` RGB arrays, or, with ``swscale``, ``SourceFrame``s: the size of
    source frames never made at full size (a session's prompts and masks are in the
    source frame's pixels)."""

    def __init__(self, frames, tensor, kind: str = "input") -> None:
        if kind not in TENSOR_KINDS:
            raise ValueError(f"kind must be one of {', '.join(TENSOR_KINDS)}, got {kind!r}")
        super().__init__(frames)
        self.tensor = tensor
        self.kind = kind

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sam3Frames(list.__getitem__(self, index), self.tensor[index], self.kind)
        return list.__getitem__(self, index)


class SourceFrame:
    """Stands for a source frame that was never made at full size (``resize`` ``swscale``:
    the decoder scaled it straight to the model's input): its ``shape`` ``(H, W, 3)``, which
    is all a session needs of it. Its pixels do not exist: turning it into an array fails."""

    __slots__ = ("shape",)

    def __init__(self, height: int, width: int) -> None:
        self.shape = (int(height), int(width), 3)

    def __array__(self, *args, **kwargs):
        raise TypeError(f"a {self.shape[1]}x{self.shape[0]} source frame scaled by the decoder has no full-size pixels (sam3 resize swscale)")

    def __repr__(self) -> str:
        return f"SourceFrame(height={self.shape[0]}, width={self.shape[1]})"


def input_frame_scale(resize: str, image_size: int) -> FrameScale | None:
    """What a SAM3 backend asks of the decoder: with ``resize`` ``swscale``, frames straight
    at the model's input size; else full-size RGB frames (None)."""
    return FrameScale(image_size, image_size, SWSCALE_FILTER) if resize == "swscale" else None


def prepare_clip(frames: Sequence, image_size: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize: str = "swscale") -> Sam3Frames:
    """One clip made ready for a session (see ``Sam3Frames``): with ``swscale`` the
    decoder's ``ScaledFrame``s gathered into one tensor of planes (``scaled_to_planes``;
    SAM3's scaling follows on the device; full-size RGB arrays are scaled by the same
    swscale filter first, for callers that hold such frames); with ``pil`` the model input
    from full-size RGB frames (``frames_to_input``); with ``bilinear`` the pixels only
    (``frames_to_pixels``), the frames then being views of them, so the decoded frames can
    go."""
    if resize == "swscale":
        scale = FrameScale(image_size, image_size, SWSCALE_FILTER)
        frames = [f if isinstance(f, ScaledFrame) else rgb_to_scaled(f, scale) for f in frames]
        sources = [SourceFrame(f.source_height, f.source_width) for f in frames]
        return Sam3Frames(sources, scaled_to_planes(frames, image_size), "planes")
    if resize == "pil":
        return Sam3Frames(frames, frames_to_input(frames, image_size, mean, std))
    if resize == "bilinear":
        pixels = frames_to_pixels(frames)
        return Sam3Frames(list(pixels.numpy()), pixels, "pixels")
    raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")


def frames_to_input(frames: Sequence[np.ndarray], image_size: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), workers: int | None = None):
    """The model input for one clip, ``float16 (N, 3, S, S)`` on the CPU, exactly as SAM3
    0.1.4 makes it from a list of PIL images (``sam3.model.io_utils.load_resource_as_video_frames``:
    PIL's resize, divide by 255, float16, minus mean, over std), value for value.

    After the resize each 8-bit value of a channel maps to one float16, so that part is a
    256-entry table per channel made once with SAM3's own operations (``normalise_table``)
    and looked up (``cv2.LUT``), at a fraction of the cost of float16 arithmetic on the CPU.
    Frames are prepared on ``workers`` threads (default: the CPUs this process may use; PIL
    and OpenCV release the GIL); each frame is independent, so the count changes nothing."""
    import torch

    table = normalise_table(tuple(float(v) for v in mean), tuple(float(v) for v in std)).view(np.uint16)
    out = np.empty((len(frames), 3, image_size, image_size), np.uint16)  # float16 bits
    one = functools.partial(_prepare_one, frames=frames, out=out, table=table, image_size=image_size)
    workers = min(len(frames), workers or len(os.sched_getaffinity(0)))
    if workers > 1:
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="vitcow-prepare") as pool:
            list(pool.map(one, range(len(frames))))
    else:
        for i in range(len(frames)):
            one(i)
    return torch.from_numpy(out.view(np.float16))


def _prepare_one(i: int, frames, out: np.ndarray, table: np.ndarray, image_size: int) -> None:
    """Frame ``i`` resized by PIL (SAM3's call) and looked up into ``out[i]``."""
    import cv2
    from PIL import Image

    image = Image.fromarray(frames[i])
    if image.mode != "RGB":
        image = image.convert("RGB")  # SAM3 converts; an RGB image would only be copied
    resized = np.asarray(image.resize((image_size, image_size)))
    for channel, plane in enumerate(cv2.split(resized)):
        cv2.LUT(plane, table[channel], dst=out[i, channel])


def scaled_to_planes(frames: Sequence[ScaledFrame], image_size: int):
    """One clip's frames the decoder scaled to ``S × S`` (``media.video.frame_to_scaled``) as
    one ``uint8 (N, 3, S, S)`` tensor of RGB planes, in pinned memory where CUDA is: a copy,
    half the bytes of the float16 input, which ``planes_to_input`` makes on the device."""
    import torch

    planes = torch.empty((len(frames), 3, image_size, image_size), dtype=torch.uint8, pin_memory=torch.cuda.is_available())
    array = planes.numpy()
    for i, frame in enumerate(frames):
        for channel, plane in enumerate(frame.planes):
            if plane.shape != (image_size, image_size):
                raise ValueError(f"frames were scaled to {plane.shape[1]}x{plane.shape[0]}, the model takes {image_size} px")
            array[i, channel] = plane
    return planes


def planes_to_input(planes, mean, std, device, chunk: int = 4):
    """The model input (``float16 (N, 3, S, S)`` on ``device``) from ``scaled_to_planes``'
    tensor: each 8-bit value looked up, on ``device``, in the 256-entry table per channel
    of SAM3's own divide, mean and std (``normalise_table``), so the values are those
    SAM3's loader makes of the same planes, value for value; ``chunk`` frames at a time."""
    import torch

    table = torch.from_numpy(normalise_table(tuple(float(v) for v in mean), tuple(float(v) for v in std)).copy()).to(device)
    out = torch.empty(planes.shape, dtype=torch.float16, device=device)
    for i in range(0, len(planes), chunk):
        values = planes[i : i + chunk].to(device, non_blocking=True).long()
        for channel in range(3):
            out[i : i + chunk, channel] = table[channel][values[:, channel]]
    return out


def frames_to_pixels(frames: Sequence[np.ndarray]):
    """The clip's frames as one ``uint8 (N, H, W, 3)`` tensor, in pinned memory where CUDA is
    (so that the copy to the GPU is a DMA the model's thread does not wait on)."""
    import torch

    height, width = frames[0].shape[:2]
    pixels = torch.empty((len(frames), height, width, 3), dtype=torch.uint8, pin_memory=torch.cuda.is_available())
    array = pixels.numpy()
    for i, frame in enumerate(frames):
        array[i] = frame
    return pixels


def pixels_to_input(pixels, image_size: int, mean, std, device, chunk: int = 4):
    """The model input (``float16 (N, 3, S, S)`` on ``device``) from ``frames_to_pixels``'s
    tensor, on ``device``: antialiased bilinear resize (torchvision's, as SAM3's training
    transforms and image processor resize), divide by 255, minus mean, over std, in float32
    outside autocast; ``chunk`` frames at a time."""
    import torch

    device = torch.device(device)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device)[:, None, None]
    std_t = torch.tensor(std, dtype=torch.float32, device=device)[:, None, None]
    out = torch.empty((len(pixels), 3, image_size, image_size), dtype=torch.float16, device=device)
    with torch.autocast(device_type=out.device.type, enabled=False):  # out's: the CPU mapping may have moved it
        for i in range(0, len(pixels), chunk):
            x = pixels[i : i + chunk].to(device, non_blocking=True).permute(0, 3, 1, 2).float()
            x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
            out[i : i + chunk] = x.div_(255.0).sub_(mean_t).div_(std_t)
    return out


@functools.lru_cache(maxsize=8)
def normalise_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``float16 (3, 256)``: what SAM3's loader makes of each 8-bit value in each channel,
    computed with its operations in its order (``/ 255.0`` in float64, to float16, ``-=``
    mean, ``/=`` std, in float16)."""
    import torch

    mean_t = torch.tensor(mean, dtype=torch.float16)[:, None, None]
    std_t = torch.tensor(std, dtype=torch.float16)[:, None, None]
    values = np.broadcast_to(np.arange(256, dtype=np.uint8), (3, 1, 256)) / 255.0
    image = torch.from_numpy(values).to(dtype=torch.float16)
    image -= mean_t
    image /= std_t
    table = image[:, 0, :].numpy().copy()
    table.flags.writeable = False
    return table


_HOOKED = False


def _install_prepared_input_hook() -> None:
    """Let ``init_state`` take a ``Sam3Frames`` as its resource: its ready tensor is used
    instead of converting PIL images again on the model's thread. Any other resource goes
    to SAM3's own loader unchanged. A module attribute set at run time, not a source edit."""
    global _HOOKED
    if _HOOKED:
        return
    import sam3.model.sam3_video_inference as video_inference
    import torch

    original = video_inference.load_resource_as_video_frames

    def load_resource_as_video_frames(resource_path, image_size, offload_video_to_cpu, *args, **kwargs):
        if isinstance(resource_path, Sam3Frames):
            images, kind = resource_path.tensor, resource_path.kind
            mean, std = kwargs.get("img_mean", (0.5, 0.5, 0.5)), kwargs.get("img_std", (0.5, 0.5, 0.5))
            device = "cpu" if offload_video_to_cpu else "cuda"
            if kind == "pixels":  # resized on the device
                images = pixels_to_input(images, image_size, mean, std, device)
            elif images.shape[-1] != image_size:
                raise ValueError(f"frames were prepared at {images.shape[-1]} px, the model takes {image_size} px")
            elif kind == "planes":  # scaled to [-1, 1] on the device
                images = planes_to_input(images, mean, std, device)
            elif not offload_video_to_cpu:
                images = images.cuda()
            height, width = resource_path[0].shape[:2]
            return images, height, width
        return original(resource_path, image_size, offload_video_to_cpu, *args, **kwargs)

    video_inference.load_resource_as_video_frames = load_resource_as_video_frames
    _HOOKED = True


#: the sam3 modules that draw tqdm progress bars on stderr while a session runs
_SAM3_PROGRESS_MODULES = ("sam3.model.sam3_video_inference", "sam3.model.sam3_tracking_predictor", "sam3.model.io_utils")


def _silence_progress_bars() -> None:
    """SAM3 draws a tqdm bar on stderr for every propagation (``propagate_in_video``, two per
    clip): between ``vitcow run``'s own bar and one-line messages, and from every process of
    a run over several devices, that is noise. Each module's ``tqdm`` name is replaced by one
    that draws nothing (the loops are unchanged). A module attribute set at run time."""
    import importlib

    from tqdm import tqdm

    def quiet(*args, **kwargs):
        kwargs["disable"] = True
        return tqdm(*args, **kwargs)

    for name in _SAM3_PROGRESS_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "tqdm", None) is not None and getattr(module.tqdm, "__name__", "") != "quiet":
            module.tqdm = quiet


def set_max_objects(model, max_objects: int) -> None:
    """Cap objects per session as SAM3's constructor does from ``max_num_objects``
    (its -1, no cap, is stored as 10000); ``max_objects`` 0 means no cap."""
    model.max_num_objects = max_objects if max_objects > 0 else 10000
    model.num_obj_for_compile = math.ceil(max_objects / model.world_size) if max_objects > 0 else 16


def compiled_on(settings: Sam3Settings, device: str) -> bool:
    """Whether SAM3 runs compiled: only when asked for (default off, see
    docs/configuration.md) and on CUDA, where it is warmed up at load."""
    return settings.compile and device.startswith("cuda")


@contextlib.contextmanager
def _on_cuda(index: int | None):
    """SAM3's code on one GPU: ``torch.cuda.device(index)`` makes its hard-coded ``"cuda"``
    and ``.cuda()`` mean that GPU (the current device is per thread), under bfloat16 autocast."""
    import torch

    with torch.cuda.device(index) if index is not None else contextlib.nullcontext():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield


def _device_mode(device: str):
    """The context SAM3's code runs in: the CPU mapping (``cpu``, or a simulated ``cpu:N``),
    or the GPU with bfloat16 autocast. SAM3 enters autocast once, in its tracker's constructor
    on the thread that built it; autocast and the current device are per thread, so each
    request enters them again: right whichever thread calls the model."""
    if device.startswith("cpu"):
        from vitcow_assets.segmenters.sam3_cpu import cpu_mode

        return cpu_mode
    return functools.partial(_on_cuda, int(device.split(":")[1]) if ":" in device else None)


class Sam3Segmenter(SegmenterBase):
    family = "sam3"
    uses_text_prompts = True

    def __init__(self, settings: Sam3Settings, device: str | None = None) -> None:
        """``device``: the leased device (``cuda:1``, or ``cpu:0`` simulated); None: the device
        setting's kind (``cuda``: the current GPU, or ``cpu``)."""
        self.settings = settings
        self.checkpoint = settings.checkpoint
        try:
            self.name = f"sam3/{importlib.metadata.version('sam3')}"
            make_torch_stack_importable()  # before open_clip, timm or sam3 import torchvision
        except (importlib.metadata.PackageNotFoundError, ImportError):
            raise SegmenterConfigError("the sam3 backend needs the sam3 package: pip install 'vitcow_assets[sam3]'") from None
        self.device = device or accelerators.resolve_kind(settings.device, settings.gpus)
        self._mode = _device_mode(self.device)
        bpe = settings.bpe_path or find_bpe_path()
        self.compiled = compiled_on(settings, self.device)
        self.multiplex = inspect_sam3_checkpoint(settings.checkpoint).kind is CheckpointKind.SAM31_MULTIPLEX
        self.predictor = build_predictor(settings.checkpoint, bpe, self.device, self._mode, settings.max_objects, self.compiled)
        model = self.predictor.model
        model.score_threshold_detection = settings.score_threshold
        model.new_det_thresh = settings.new_object_threshold
        model.hotstart_delay = settings.hotstart_delay
        if not self.multiplex:  # SAM 3.1's builder took the cap (its buckets size the compile cache)
            set_max_objects(model, settings.max_objects)
        if settings.compile and not self.compiled:
            warnings.warn("sam3 compile is CUDA only (torch.compile max-autotune): ignored on cpu", stacklevel=2)
        model.compile_model = self.compiled
        self.image_size = int(model.image_size)
        _install_prepared_input_hook()
        _silence_progress_bars()
        self._requests = None
        if self.multiplex:
            from vitcow_assets.segmenters import sam3_multiplex

            self.name = f"sam3.1/{importlib.metadata.version('sam3')}"
            sam3_multiplex.share_prepared_input_hook()
            self._requests = sam3_multiplex.MultiplexRequests()
        if self.compiled:
            self._warm_up()
        # SAM3's close_session runs a full gc.collect() for every session, i.e. every clip,
        # while the accelerator waits. Freezing what is alive now (the model, imported
        # modules: hundreds of thousands of objects) keeps those collections to what the
        # sessions made; frozen objects are still freed by reference counting.
        gc.freeze()

    def _warm_up(self) -> None:
        """Compile for every object count a clip can have (0 to ``max_objects``) now, at load:
        SAM3 compiles its tracker with ``dynamic=False``, so a count first seen mid-run would
        stop that clip for a max-autotune compilation."""
        try:
            with self._mode():
                self.predictor.model.warm_up_compilation()
        except Exception as exc:
            explained = accelerators.explain(exc, self.device, "compiling SAM3")
            if explained is None:
                raise
            raise SegmenterConfigError(explained) from None

    def settings_record(self) -> dict[str, str]:
        """The settings, plus what they resolved to on this machine."""
        compiled = "on" if self.compiled else ("off (requested; cuda only)" if self.settings.compile else "off")
        return {
            **super().settings_record(),
            "sam3.device": self.device,
            "sam3.precision": "bf16-autocast" if self.device.startswith("cuda") else "fp32",
            "sam3.implementation": self.name,
            "sam3.compile": compiled,
        }

    def device_report(self) -> str:
        return accelerators.memory_line(self.device)

    def frame_scale(self) -> FrameScale | None:
        return input_frame_scale(self.settings.resize, self.image_size)

    def prepare_frames(self, frames: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """The model input for one clip (frames as ``frame_scale`` asked for them), made on
        the calling (decode) thread."""
        model = self.predictor.model
        return prepare_clip(frames, self.image_size, model.image_mean, model.image_std, self.settings.resize)

    def request(self, request: dict) -> dict:
        if self._requests is not None:  # SAM 3.1's request fields and session expiry
            request = self._requests.before(request)
        with self._mode(), self._explained():
            response = self.predictor.handle_request(request)
        return response if self._requests is None else self._requests.after(request, response)

    @contextlib.contextmanager
    def _explained(self):
        """Triton failing to build a kernel mid-run reads as what the host lacks (out of
        memory goes on as it is: the caller retries the clip in halves)."""
        try:
            yield
        except Exception as exc:
            if accelerators.is_kernel_build_error(exc):
                raise accelerators.AcceleratorError(accelerators.kernel_build_message(exc, self.device)) from None
            raise

    def stream(self, request: dict) -> Iterator[dict]:
        """The mode (CPU mapping or autocast) is entered only while SAM3's code runs, never
        across a ``yield``: the caller's code between items runs outside it, and a stream
        abandoned half-way cannot leave it entered."""
        if self._requests is not None:
            request = self._requests.before(request)
        items = self.predictor.handle_stream_request(request)
        try:
            while True:
                with self._mode(), self._explained():
                    try:
                        item = next(items)
                    except StopIteration:
                        return
                yield item
        finally:
            with self._mode():
                items.close()

    def start_session(self, frames: Sequence[np.ndarray]) -> "Sam3Session":
        return Sam3Session(self, frames)


class Sam3Session:
    def __init__(self, segmenter: Sam3Segmenter, frames: Sequence[np.ndarray]) -> None:
        from PIL import Image

        if len(frames) == 0:
            raise ValueError("a session needs at least one frame")
        self._segmenter = segmenter
        self.height, self.width = frames[0].shape[:2]
        self.frames = len(frames)
        resource = frames if isinstance(frames, Sam3Frames) else [Image.fromarray(f) for f in frames]
        self.session_id = segmenter.request({"type": "start_session", "resource_path": resource})["session_id"]
        self._known_ids: set[int] = set()
        self._propagated = False
        self._closed = False

    # -- prompts ---------------------------------------------------------------------
    def _add(self, **fields) -> None:
        response = self._segmenter.request({"type": "add_prompt", "session_id": self.session_id, **fields})
        self._known_ids.update(int(i) for i in response["outputs"]["out_obj_ids"])

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        self._known_ids.clear()  # a text prompt restarts the session's objects
        self._propagated = False
        self._add(frame_index=clip_frame, text=text)

    def add_text_prompts(self, texts: Sequence[str], clip_frame: int = 0) -> None:
        """One text only: Meta's predictor takes one text per session (the stage runs a
        session per text query)."""
        if len(texts) != 1:
            raise PromptError(f"the sam3 backend takes one text per session, got {len(texts)}: run one session per text")
        self.add_text_prompt(texts[0], clip_frame)

    def add_box_prompt(self, xyxy: Sequence[float], clip_frame: int, text: str | None = None) -> None:
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        x1, x2 = np.clip([x1, x2], 0, self.width) / self.width
        y1, y2 = np.clip([y1, y2], 0, self.height) / self.height
        self._known_ids.clear()
        self._propagated = False
        self._add(
            frame_index=clip_frame,
            text=text or "visual",
            bounding_boxes=[[float(x1), float(y1), float(x2 - x1), float(y2 - y1)]],
            bounding_box_labels=[1],
        )

    def _track_once(self) -> None:
        """SAM3 refines and removes only on frames it has processed: track the query first."""
        if not self._propagated:
            for _ in self._frames_out():
                pass

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        self._track_once()
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2) / [self.width, self.height]
        self._add(frame_index=clip_frame, points=xy.tolist(), point_labels=[int(v) for v in labels], obj_id=int(object_id))

    def remove_object(self, object_id: int) -> None:
        self._track_once()
        if int(object_id) not in self._known_ids:
            raise PromptError(f"object {object_id} is not in this clip (ids here: {sorted(self._known_ids)})")
        self._segmenter.request({"type": "remove_object", "session_id": self.session_id, "obj_id": int(object_id)})
        self._known_ids.discard(int(object_id))

    def reset(self) -> None:
        self._segmenter.request({"type": "reset_session", "session_id": self.session_id})
        self._known_ids.clear()
        self._propagated = False

    # -- results ---------------------------------------------------------------------
    def _frames_out(self) -> Iterator[tuple[int, dict]]:
        request = {"type": "propagate_in_video", "session_id": self.session_id, "propagation_direction": "both"}
        for item in self._segmenter.stream(request):
            outputs = item["outputs"]
            self._known_ids.update(int(i) for i in outputs["out_obj_ids"])
            yield int(item["frame_index"]), outputs
        self._propagated = True

    def propagate(self) -> Iterator[FrameResult]:
        """Results in clip order, each handed on as soon as every earlier frame's is out.

        SAM3 propagates from the prompted frame forwards, then backwards: with the query on
        the clip's first frame (the usual case) every frame streams straight through; frames
        before a later prompted frame wait (as bare outputs) until the backward pass
        reaches them."""
        if self._closed:
            raise RuntimeError("session is closed")
        waiting: dict[int, dict] = {}
        next_frame = 0
        for clip_frame, outputs in self._frames_out():
            waiting[clip_frame] = outputs
            while next_frame in waiting:
                yield FrameResult(next_frame, self._detections(waiting.pop(next_frame)))
                next_frame += 1
        for clip_frame in range(next_frame, self.frames):  # frames SAM3 gave nothing for
            yield FrameResult(clip_frame, self._detections(waiting.pop(clip_frame, None)))

    def _detections(self, outputs: dict | None) -> Detections:
        return detections_from_outputs(outputs, self.height, self.width)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._segmenter.request({"type": "close_session", "session_id": self.session_id})

    def __enter__(self) -> "Sam3Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detections_from_outputs(outputs: dict | None, height: int, width: int) -> Detections:
    """One frame's SAM3 outputs (``out_obj_ids``, ``out_probs``, ``out_binary_masks`` at
    frame size) as ``Detections``: each frame-sized mask is cut to its pixels' box at once
    (``cut_to_boxes``), so only the crops outlive this call; objects whose mask is empty are
    dropped; boxes are the crops' pixel boxes."""
    if outputs is None or len(outputs["out_obj_ids"]) == 0:
        return Detections.empty(height, width)
    masks = cut_to_boxes(np.asarray(outputs["out_binary_masks"], dtype=bool))
    keep = np.array([crop.size > 0 for crop in masks.crops], dtype=bool)
    masks = masks.select(keep)
    return Detections(
        xyxy=masks.crop_xyxy(),
        masks=masks,
        scores=np.asarray(outputs["out_probs"], dtype=np.float32)[keep],
        object_ids=np.asarray(outputs["out_obj_ids"], dtype=np.int64)[keep],
    )


_CUT_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_CUT_LOCK = threading.Lock()
_CUT_SPLIT_BYTES = 8 << 20  # below this the masks are scanned on the calling thread


def cut_to_boxes(masks: np.ndarray) -> BoxMasks:
    """``BoxMasks.from_full`` of a frame's masks, which runs on the model's thread: the
    frame-sized masks are scanned once, a share of them on each of a few threads (numpy
    releases the GIL), so that the scan's time on the model's thread shrinks with the CPUs
    the machine has. The crops do not depend on how the masks are shared out."""
    workers = min(len(masks), len(os.sched_getaffinity(0)), 8)
    if workers < 2 or masks.nbytes < _CUT_SPLIT_BYTES:
        return BoxMasks.from_full(masks)
    global _CUT_POOL
    with _CUT_LOCK:
        if _CUT_POOL is None:
            _CUT_POOL = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="sam3-cut")
    shares = np.array_split(np.arange(len(masks)), workers)
    parts = list(_CUT_POOL.map(lambda index: BoxMasks.from_full(masks[index[0] : index[-1] + 1]), shares))
    return BoxMasks.concat(parts, masks.shape[1], masks.shape[2])


def lease_candidates(settings: Sam3Settings):
    """The devices a SAM3 model may be placed on (``accelerators.lease_candidates``)."""
    try:
        return accelerators.lease_candidates(settings.device, settings.gpus)
    except ImportError:
        raise SegmenterConfigError("the sam3 backend needs the sam3 package: pip install 'vitcow_assets[sam3]'") from None


def load_sam3(settings: Sam3Settings, device: str | None = None) -> Sam3Segmenter:
    """Build the predictor once, on ``device`` (a leased device name) or the device setting's
    kind; every failure is a one-line ``SegmenterConfigError`` (``segmenters.sam3_loading``)."""
    inspect_sam3_checkpoint(settings.checkpoint)  # a bad file fails before torchvision is even imported
    make_torch_stack_importable()
    return Sam3Segmenter(settings, device)
