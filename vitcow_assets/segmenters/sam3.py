"""The SAM3 video predictor backend: the only module that knows SAM3's request and
response dictionaries (``sam3`` 0.1.4, Meta's package).

Frames are the project's own decoded RGB frames, handed over in memory as PIL images: SAM3
resizes them to its 1008 px input and scales them to [-1, 1] itself (its own ``.mp4``
loader forgets to divide by 255). A session holds one clip (about 6 MB of input per frame
at fp16), so memory is bounded by clip length.

Conversions at this edge: point and box prompts arrive in pixels of the frame and leave
normalised to [0, 1] (boxes as top-left ``x, y, w, h``); masks come back at frame size and
boxes are recomputed from them as pixel ``xyxy`` (SAM3's boxes use an inclusive far edge),
dropping objects whose mask is empty on a frame.
"""

import contextlib
import dataclasses
import importlib.metadata
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from vitcow_assets.core.geometry import masks_to_xyxy
from vitcow_assets.core.detections import Detections
from vitcow_assets.segmenters.base import FrameResult, PromptError, SegmenterConfigError


@dataclasses.dataclass(frozen=True)
class Sam3Settings:
    """``hotstart_delay``: SAM3 holds back and may drop objects during the first N frames
    of a session (15 by default in the package); on 20-frame clips that removes objects
    found on the first frame, so the default here is 0 (every detection is kept)."""

    checkpoint: str
    device: str = "auto"
    gpus: tuple[int, ...] = ()
    bpe_path: str | None = None
    score_threshold: float = 0.5
    new_object_threshold: float = 0.7
    hotstart_delay: int = 0


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


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cuda", "cpu"):
        raise SegmenterConfigError(f"device must be auto, cuda or cpu, got {device!r}", setting="device")
    if device == "cuda" and not torch.cuda.is_available():
        raise SegmenterConfigError("device is cuda but no CUDA GPU is visible: use cpu or a GPU machine", setting="device")
    return device


class Sam3Segmenter:
    uses_text_prompts = True

    def __init__(self, settings: Sam3Settings) -> None:
        self.settings = settings
        self.checkpoint = settings.checkpoint
        try:
            self.name = f"sam3/{importlib.metadata.version('sam3')}"
            import torch  # noqa: F401
        except (importlib.metadata.PackageNotFoundError, ImportError):
            raise SegmenterConfigError("the sam3 backend needs the sam3 package: pip install 'vitcow_assets[sam3]'") from None
        self.device = _resolve_device(settings.device)
        if self.device == "cpu":
            from vitcow_assets.segmenters.sam3_cpu import cpu_mode

            self._mode = cpu_mode
        else:
            self._mode = contextlib.nullcontext
        bpe = settings.bpe_path or find_bpe_path()
        try:
            with self._mode():
                if len(settings.gpus) > 1:
                    from sam3.model_builder import build_sam3_video_predictor

                    self.predictor = build_sam3_video_predictor(
                        checkpoint_path=settings.checkpoint, bpe_path=bpe, gpus_to_use=list(settings.gpus)
                    )
                else:
                    from sam3.model.sam3_video_predictor import Sam3VideoPredictor

                    self.predictor = Sam3VideoPredictor(checkpoint_path=settings.checkpoint, bpe_path=bpe)
        except Exception as exc:  # torch.load and the builder raise many kinds; all mean "bad checkpoint"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SegmenterConfigError(
                f"cannot load SAM3 checkpoint {settings.checkpoint!r} ({type(exc).__name__}: {first[:200]})", setting="checkpoint"
            ) from None
        model = self.predictor.model
        model.score_threshold_detection = settings.score_threshold
        model.new_det_thresh = settings.new_object_threshold
        model.hotstart_delay = settings.hotstart_delay

    def request(self, request: dict) -> dict:
        with self._mode():
            return self.predictor.handle_request(request)

    def stream(self, request: dict) -> Iterator[dict]:
        with self._mode():
            yield from self.predictor.handle_stream_request(request)

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
        images = [Image.fromarray(f) for f in frames]
        self.session_id = segmenter.request({"type": "start_session", "resource_path": images})["session_id"]
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
        if outputs is None or len(outputs["out_obj_ids"]) == 0:
            return Detections.empty(self.height, self.width)
        masks = np.asarray(outputs["out_binary_masks"], dtype=bool)
        keep = masks.reshape(len(masks), -1).any(axis=1)
        masks = masks[keep]
        return Detections(
            xyxy=masks_to_xyxy(masks),
            masks=masks,
            scores=np.asarray(outputs["out_probs"], dtype=np.float32)[keep],
            object_ids=np.asarray(outputs["out_obj_ids"], dtype=np.int64)[keep],
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._segmenter.request({"type": "close_session", "session_id": self.session_id})

    def __enter__(self) -> "Sam3Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_checkpoint(checkpoint: str | None) -> str:
    """The checkpoint path if it names a readable file; else a one-line error about it."""
    if not checkpoint:
        raise SegmenterConfigError("the sam3 backend needs a checkpoint: the path of a SAM3 .pt file", setting="checkpoint")
    if not os.path.isfile(checkpoint):
        raise SegmenterConfigError(f"SAM3 checkpoint {checkpoint!r} does not exist or is not a file", setting="checkpoint")
    if not os.access(checkpoint, os.R_OK):
        raise SegmenterConfigError(f"SAM3 checkpoint {checkpoint!r} is not readable", setting="checkpoint")
    return checkpoint


def load_sam3(checkpoint: str | None, device: str = "auto", **options) -> Sam3Segmenter:
    """Build the predictor once; every failure is a one-line ``SegmenterConfigError``."""
    checkpoint = check_checkpoint(checkpoint)
    return Sam3Segmenter(Sam3Settings(checkpoint=checkpoint, device=device, **options))
