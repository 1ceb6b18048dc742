"""The SAM3 backend on transformers' implementation (``Sam3VideoModel`` with
``Sam3VideoProcessor``'s text prompts and post-processing): the only module that knows
transformers' SAM3 session and outputs. Plain PyTorch, so it runs wherever torch runs.

It reads the ``sam3`` settings (``Sam3Settings``: checkpoint, device, GPUs, thresholds,
object cap, input resize) and is loaded like the ``sam3`` backend: once per process, on a
leased device (``segmenters.model_pool``), one session per clip, closed on every exit.

What differs from Meta's predictor (docs/sam3-implementations.md):

- **Several texts in one session** (``several_texts_per_session``): every text query of a
  plan is answered by one pass over the clip; each object's ``prompts`` entry names the text
  that found it (transformers' ``prompt_to_obj_ids``).
- **Text prompts only.** transformers' video model detects from text; box exemplars and
  clicks (refining or adding an object) are refused before any clip is decoded
  (``check_plan``). Removing an object hides it from the clip's results; transformers still
  tracks it, so it still takes part in its non-overlap rule.
- **The model input** is the project's own (``segmenters.sam3.prepare_clip``, exactly as
  Meta's loader makes it, or resized on the device), not transformers' video processor.
- **Post-processing** (mask NMS, hole filling) runs on the CPU code of
  ``sam3_transformers_kernels`` where transformers would download kernels from the Hub.
- **Precision**: float32 on the CPU; on CUDA the weights and session are bfloat16
  (transformers' documented use), where Meta's predictor runs float32 weights under
  bfloat16 autocast.
"""

import contextlib
import importlib.metadata
from collections.abc import Iterator, Sequence

import numpy as np

from vitcow_assets.core.detections import Detections
from vitcow_assets.core.prompts import BoxQuery, PointStep, PromptPlan
from vitcow_assets.segmenters import accelerators
from vitcow_assets.segmenters.base import FrameResult, PromptError, SegmenterBase, SegmenterConfigError
from vitcow_assets.media.video import FrameScale
from vitcow_assets.segmenters.sam3 import (
    Sam3Frames, Sam3Settings, cut_to_boxes, find_bpe_path, input_frame_scale, pixels_to_input, planes_to_input, prepare_clip,
)
from vitcow_assets.segmenters.sam3_transformers_loading import build_model, inspect_for_transformers, transformers_version
from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable

#: the model's input normalisation (SAM3's: mean and std 0.5 in every channel)
IMAGE_MEAN = IMAGE_STD = (0.5, 0.5, 0.5)
#: transformers' "no cap" on objects (its configuration's default)
NO_CAP = 10000
#: what the backend refuses in a prompt plan, and why
CANNOT = "transformers' SAM3 video model takes text prompts only (use --backend sam3 for box exemplars and clicks)"


class Sam3TransformersSegmenter(SegmenterBase):
    family = "sam3"
    uses_text_prompts = True
    several_texts_per_session = True

    def __init__(self, settings: Sam3Settings, device: str | None = None) -> None:
        """``device``: the leased device (``cuda:1``, or ``cpu:0`` simulated); None: the device
        setting's kind."""
        self.settings = settings
        self.checkpoint = settings.checkpoint
        try:
            self.name = f"sam3-transformers/{transformers_version()}"
        except importlib.metadata.PackageNotFoundError:
            raise SegmenterConfigError("the sam3-transformers backend needs transformers: pip install 'vitcow_assets[sam3]'") from None
        self.device = device or accelerators.resolve_kind(settings.device, settings.gpus)
        self.dtype = "float32" if self.device.startswith("cpu") else "bfloat16"
        bpe = settings.bpe_path or find_bpe_path()
        self.model, self.processor = build_model(settings.checkpoint, settings.transformers_config, bpe, self.device, self.dtype)
        self.model.score_threshold_detection = settings.score_threshold
        self.model.new_det_thresh = settings.new_object_threshold
        self.model.hotstart_delay = settings.hotstart_delay
        self.model.max_num_objects = settings.max_objects if settings.max_objects > 0 else NO_CAP
        self.image_size = int(self.model.config.image_size)
        from vitcow_assets.segmenters import sam3_transformers_kernels, sam3_transformers_parity

        sam3_transformers_kernels.install()
        if settings.transformers_parity:
            missing = sam3_transformers_parity.missing_internals(self.model)
            if missing:
                raise SegmenterConfigError(
                    f"transformers {transformers_version()} lacks what Meta's-way parity replaces ({', '.join(missing)}; written for 5.24): "
                    "install transformers==5.24.0 or turn parity off", setting="transformers_parity",
                )
            sam3_transformers_parity.install(self.model)

    @property
    def torch_device(self) -> str:
        return accelerators.torch_device(self.device)

    def settings_record(self) -> dict[str, str]:
        """The settings, plus what they resolved to here (``compile`` and ``resize`` bilinear
        are the sam3 backend's; the input is resized as ``resize`` says)."""
        return {
            **super().settings_record(),
            "sam3.implementation": self.name,
            "sam3.device": self.device,
            "sam3.precision": self.dtype,
            "sam3.transformers_parity": "on" if self.settings.transformers_parity else "off",
            "sam3.compile": "off (sam3 backend only)" if self.settings.compile else "off",
        }

    def device_report(self) -> str:
        return accelerators.memory_line(self.device)

    def frame_scale(self) -> FrameScale | None:
        return input_frame_scale(self.settings.resize, self.image_size)

    def prepare_frames(self, frames: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """The model input for one clip, made on the calling (decode) thread, as for the sam3 backend."""
        return prepare_clip(frames, self.image_size, IMAGE_MEAN, IMAGE_STD, self.settings.resize)

    def check_plan(self, plan: PromptPlan) -> None:
        for i, query in enumerate(plan.queries):
            if isinstance(query, BoxQuery):
                raise PromptError(f"{plan.source}: query {i + 1} is a box exemplar: {CANNOT}")
        for step in plan.steps:
            if isinstance(step, PointStep):
                raise PromptError(f"{plan.source}: clicks for object {step.object_id} on frame {step.frame}: {CANNOT}")

    def model_input(self, frames: Sequence[np.ndarray]):
        """``(N, 3, S, S)`` on the device in the model's dtype, from prepared or plain frames."""
        import torch

        prepared = frames if isinstance(frames, Sam3Frames) else prepare_clip(frames, self.image_size, IMAGE_MEAN, IMAGE_STD, "pil")
        images, kind = prepared.tensor, prepared.kind
        if kind == "pixels":  # full-size pixels, resized on the device
            images = pixels_to_input(images, self.image_size, IMAGE_MEAN, IMAGE_STD, self.torch_device)
        elif images.shape[-1] != self.image_size:
            raise ValueError(f"frames were prepared at {images.shape[-1]} px, the model takes {self.image_size} px")
        elif kind == "planes":  # the decoder's planes at the input size, scaled to [-1, 1] on the device
            images = planes_to_input(images, IMAGE_MEAN, IMAGE_STD, self.torch_device)
        return images.to(self.torch_device, dtype=getattr(torch, self.dtype))

    def start_session(self, frames: Sequence[np.ndarray]) -> "Sam3TransformersSession":
        return Sam3TransformersSession(self, frames)


class Sam3TransformersSession:
    """One clip in a ``Sam3VideoInferenceSession``: its text prompts, the objects hidden
    (removed), and one forward pass over the clip per ``propagate``."""

    def __init__(self, segmenter: Sam3TransformersSegmenter, frames: Sequence[np.ndarray]) -> None:
        from transformers.models.sam3_video.modeling_sam3_video import Sam3VideoInferenceSession

        if len(frames) == 0:
            raise ValueError("a session needs at least one frame")
        self._segmenter = segmenter
        self.height, self.width = frames[0].shape[:2]
        self.frames = len(frames)
        with self._explained():
            device = segmenter.torch_device
            self.session = Sam3VideoInferenceSession(
                video=segmenter.model_input(frames), video_height=self.height, video_width=self.width, inference_device=device,
                inference_state_device=device, video_storage_device=device, dtype=segmenter.model.dtype,
            )
        self._removed: set[int] = set()
        self._closed = False

    @contextlib.contextmanager
    def _explained(self):
        try:
            yield
        except Exception as exc:
            if accelerators.is_kernel_build_error(exc):
                raise accelerators.AcceleratorError(accelerators.kernel_build_message(exc, self._segmenter.device)) from None
            raise

    def add_text_prompt(self, text: str, clip_frame: int = 0) -> None:
        self.add_text_prompts([text], clip_frame)

    def add_text_prompts(self, texts: Sequence[str], clip_frame: int = 0) -> None:
        """Detect every instance of each text on every frame of the clip (a text prompt has no
        frame in transformers); replaces the session's texts and objects."""
        if self.session.prompts:
            self.reset()
        self._segmenter.processor.add_text_prompt(inference_session=self.session, text=list(texts))

    def add_box_prompt(self, xyxy, clip_frame: int, text: str | None = None) -> None:
        raise PromptError(f"a box exemplar: {CANNOT}")

    def add_point_prompt(self, points, labels, clip_frame: int, object_id: int) -> None:
        raise PromptError(f"clicks for object {object_id}: {CANNOT}")

    def remove_object(self, object_id: int) -> None:
        """Hide ``object_id`` from this clip's results (checked to exist when they are made)."""
        self._removed.add(int(object_id))

    def reset(self) -> None:
        self.session.reset_state()
        self._removed.clear()

    def _outputs(self) -> Iterator[tuple[int, dict]]:
        """transformers' per-frame outputs, post-processed; its code runs only inside ``next``."""
        model, processor = self._segmenter.model, self._segmenter.processor
        items = model.propagate_in_video_iterator(inference_session=self.session, start_frame_idx=0)
        try:
            while True:
                with self._explained():
                    try:
                        out = next(items)
                    except StopIteration:
                        return
                    processed = processor.postprocess_outputs(self.session, out)
                yield int(out.frame_idx), processed
        finally:
            items.close()

    def propagate(self) -> Iterator[FrameResult]:
        """Results in clip order (transformers propagates forwards from the first frame)."""
        if self._closed:
            raise RuntimeError("session is closed")
        seen: set[int] = set()
        done = 0
        for clip_frame, processed in self._outputs():
            for frame in range(done, clip_frame):  # frames transformers gave nothing for
                yield FrameResult(frame, Detections.empty(self.height, self.width))
            detections = detections_from_processed(processed, self.height, self.width)
            seen.update(int(i) for i in detections.object_ids)
            yield FrameResult(clip_frame, detections.select(~np.isin(detections.object_ids, list(self._removed))))
            done = clip_frame + 1
        for frame in range(done, self.frames):
            yield FrameResult(frame, Detections.empty(self.height, self.width))
        missing = sorted(self._removed - seen)
        if missing:
            raise PromptError(f"object(s) {missing} to remove are not in this clip (ids here: {sorted(seen)})")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.session = None  # the clip's frames, features and memories go with it

    def __enter__(self) -> "Sam3TransformersSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detections_from_processed(processed: dict, height: int, width: int) -> Detections:
    """``Sam3VideoProcessor.postprocess_outputs``' frame (``object_ids``, ``scores``, ``masks``
    at frame size, ``prompt_to_obj_ids``) as ``Detections``: masks cut to their pixels' box at
    once, empty ones dropped, each object labelled with the text that found it."""
    ids = processed["object_ids"].cpu().numpy().astype(np.int64)
    if len(ids) == 0:
        return Detections.empty(height, width)
    text_of = {int(i): text for text, found in processed["prompt_to_obj_ids"].items() for i in found}
    masks = cut_to_boxes(processed["masks"].cpu().numpy().astype(bool, copy=False))
    keep = np.array([crop.size > 0 for crop in masks.crops], dtype=bool)
    masks = masks.select(keep)
    return Detections(
        xyxy=masks.crop_xyxy(), masks=masks, scores=processed["scores"].float().cpu().numpy()[keep], object_ids=ids[keep],
        prompts=np.array([text_of.get(int(i), "") for i in ids[keep]], dtype=object),
    )


def load_sam3_transformers(settings: Sam3Settings, device: str | None = None) -> Sam3TransformersSegmenter:
    """Build the model once, on ``device`` (a leased device name) or the device setting's
    kind; every failure is a one-line ``SegmenterConfigError``."""
    inspect_for_transformers(settings.checkpoint)  # a bad path fails before torch is even imported
    make_torch_stack_importable()
    return Sam3TransformersSegmenter(settings, device)
