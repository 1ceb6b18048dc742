"""Building transformers' SAM3 video model (``Sam3VideoModel``) and what it needs beside it
(a tokenizer, ``Sam3VideoProcessor``'s post-processing) from a checkpoint, onto one device;
every failure one line saying what failed (``SegmenterConfigError``, setting ``checkpoint``).

Checkpoints it takes (``core.checkpoint_kinds``, told in a second by ``segmenters.checkpoints``):

- a transformers model folder (``config.json`` + ``model.safetensors``, as the gated
  ``facebook/sam3`` repository holds it), or its ``model.safetensors`` with ``config.json``
  beside it: loaded by ``from_pretrained`` from local files only, then every weight of the
  model checked to have come from the file (none missing, none of another shape, none left
  over);
- Meta's release layout (``sam3.pt``, or the same tensors as ``.safetensors``): converted
  tensor by tensor (``segmenters.sam3_conversion``) into a model of the ``transformers_config``
  setting's sizes (default: transformers' SAM3 configuration, the released model's), names and
  shapes checked against the model before a strict load.

SAM 3.1 multiplex checkpoints and anything else are refused. The tokenizer is the folder's
own where it has one, else CLIP's made from the BPE file open_clip ships (``bpe_path``).
"""

import contextlib
import importlib.metadata
import json
import warnings
from pathlib import Path

from vitcow_assets.core.checkpoint_kinds import CheckpointKind, key_differences, shown
from vitcow_assets.segmenters import accelerators
from vitcow_assets.segmenters.base import SegmenterConfigError
from vitcow_assets.segmenters.checkpoints import CheckpointError, CheckpointInfo, inspect_checkpoint, read_state_dict, transformers_folder
from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable

#: the config.json ``model_type`` of transformers' SAM3 video model
MODEL_TYPE = "sam3_video"
#: files a transformers folder keeps its tokenizer in (any one of them)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
REFUSED = {
    CheckpointKind.SAM31_MULTIPLEX: (
        "is a SAM 3.1 multiplex checkpoint: transformers has no SAM 3.1; run it with --backend sam3 and a sam3 installed from "
        "its repository (docs/sam3-implementations.md)"
    ),
}


def transformers_version() -> str:
    return importlib.metadata.version("transformers")


def refuse(path: str, reason: str) -> SegmenterConfigError:
    return SegmenterConfigError(f"SAM3 checkpoint {path!r} {reason}", setting="checkpoint")


def inspect_for_transformers(path: str | None) -> tuple[CheckpointInfo, str | None]:
    """The checkpoint and its transformers folder (None: a release layout to convert); a
    missing, unreadable or unusable one refused in one line."""
    if not path:
        raise SegmenterConfigError(
            "the sam3-transformers backend needs a checkpoint: a transformers SAM3 model folder, or SAM3's release file", setting="checkpoint"
        )
    try:
        info = inspect_checkpoint(path)
    except CheckpointError as exc:
        raise refuse(path, str(exc).removeprefix(repr(path)).strip()) from None
    if info.kind in REFUSED:
        raise refuse(path, f"({info.format}) {REFUSED[info.kind]}")
    if info.kind is CheckpointKind.NOT_SAM3:
        raise refuse(path, f"is not a SAM3 checkpoint ({info.format}; keys {shown(sorted(info.keys))})")
    if info.kind is CheckpointKind.SAM3_RELEASE:
        return info, None
    folder = transformers_folder(info)
    if folder is None:
        raise refuse(path, "holds transformers' SAM3 tensors (detector_model.*) but no config.json beside it: point to the model folder")
    return info, folder


def _config(folder: str | None, config_path: str | None):
    """The model's configuration: the folder's, the ``transformers_config`` file, or the default."""
    from transformers import Sam3VideoConfig

    source = Path(folder) / "config.json" if folder else Path(config_path) if config_path else None
    if source is None:
        return Sam3VideoConfig()
    try:
        model_type = json.loads(source.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise SegmenterConfigError(f"{str(source)!r} is not a readable config.json ({type(exc).__name__})", "transformers_config") from None
    if model_type != MODEL_TYPE:
        setting = "checkpoint" if folder else "transformers_config"
        raise SegmenterConfigError(f"{str(source)!r} is the config of a {model_type!r} model, not transformers' SAM3 video model ({MODEL_TYPE})", setting)
    return Sam3VideoConfig.from_json_file(str(source))


def _from_folder(info: CheckpointInfo, folder: str):
    """``from_pretrained`` from local files, every model weight checked to come from the file."""
    from transformers import Sam3VideoModel

    config = _config(folder, None)
    model, loading = Sam3VideoModel.from_pretrained(folder, config=config, local_files_only=True, output_loading_info=True)
    missing, unexpected = sorted(loading.get("missing_keys", ())), sorted(loading.get("unexpected_keys", ()))
    mismatched = [str(m[0]) if isinstance(m, tuple) else str(m) for m in loading.get("mismatched_keys", ())]
    if missing or unexpected or mismatched:
        parts = ([f"missing {shown(missing)}"] if missing else []) + ([f"unexpected {shown(unexpected)}"] if unexpected else [])
        parts += [f"of another shape {shown(sorted(mismatched))}"] if mismatched else []
        raise refuse(info.path, f"leaves transformers' SAM3 model weights unloaded: {'; '.join(parts)}")
    return model


def _from_release(info: CheckpointInfo, config_path: str | None):
    """Meta's release tensors converted and loaded strictly into a model of the configured sizes."""
    from transformers import Sam3VideoModel

    from vitcow_assets.segmenters.sam3_conversion import ConversionError, release_to_transformers

    config = _config(None, config_path)
    state = read_state_dict(info)
    try:
        converted, _ = release_to_transformers(state)
    except ConversionError as exc:
        raise refuse(info.path, f"could not be converted to transformers' layout: {exc}") from None
    del state
    model = Sam3VideoModel(config)
    expected = model.state_dict()
    differences = key_differences(expected, converted)
    if differences:
        raise refuse(info.path, f"does not fit transformers' SAM3 model once converted: {differences}")
    for name, tensor in expected.items():
        if tuple(converted[name].shape) != tuple(tensor.shape):
            where = "transformers_config" if config_path else "the default configuration (set transformers_config for other sizes)"
            raise refuse(info.path, f"does not fit the model of {where}: {name} is {tuple(converted[name].shape)} in the file, {tuple(tensor.shape)} in the model")
    model.load_state_dict(converted, strict=True)
    return model


def _tokenizer(folder: str | None, bpe_path: str):
    """The folder's own tokenizer, else CLIP's from the BPE file (SAM3's text encoder's)."""
    from transformers import AutoTokenizer, CLIPTokenizer

    from vitcow_assets.segmenters.sam3_conversion import clip_vocabulary

    if folder and any((Path(folder) / name).is_file() for name in TOKENIZER_FILES):
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    vocab, merges = clip_vocabulary(bpe_path)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def _processor(config, tokenizer):
    """``Sam3VideoProcessor`` for its text prompts and post-processing; the model's input is
    the project's own (``segmenters.sam3.prepare_clip``), so its image and video processors
    only carry the size and the 0.5 mean and std (the video processor's defaults are SAM2's
    1024 px and ImageNet's mean and std)."""
    from transformers import Sam3ImageProcessor, Sam3VideoProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    size = {"height": config.image_size, "width": config.image_size}
    half = [0.5, 0.5, 0.5]
    video = Sam2VideoVideoProcessor(size=size, image_mean=half, image_std=half)
    return Sam3VideoProcessor(image_processor=Sam3ImageProcessor(size=size), video_processor=video, tokenizer=tokenizer)


@contextlib.contextmanager
def _transformers_quietly():
    """transformers' loading logs (its progress bars and INFO lines) kept to errors."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def build_model(checkpoint: str | None, config_path: str | None, bpe_path: str, device_name: str, dtype_name: str):
    """``(model, processor)`` on ``device_name`` (``cuda:1``, ``cpu``, ``cpu:0`` simulated),
    weights in ``dtype_name`` (``float32``, ``bfloat16``); every failure one line."""
    info, folder = inspect_for_transformers(checkpoint)
    make_torch_stack_importable()
    step = "loading transformers' SAM3"
    try:
        import torch

        with _transformers_quietly():
            model = _from_folder(info, folder) if folder else _from_release(info, config_path)
            processor = _processor(model.config, _tokenizer(folder, bpe_path))
        step = "moving transformers' SAM3 to its device"
        model = model.to(accelerators.torch_device(device_name), dtype=getattr(torch, dtype_name)).eval()
        return model, processor
    except SegmenterConfigError:
        raise
    except Exception as exc:
        explained = accelerators.explain(exc, device_name, step)
        if explained is not None:
            raise SegmenterConfigError(explained) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise refuse(info.path, f"could not be loaded ({step}: {type(exc).__name__}: {first[:200]})") from None
