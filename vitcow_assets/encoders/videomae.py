"""The VideoMAE encoder on a device: transformers' ``VideoMAEModel`` built from the spec read
from a checkpoint (``core.videomae_layout``), every encoder tensor loaded strictly, pooled as
the checkpoint's own model pools, run deterministically. The decoder is never built.

Deterministic: torch's deterministic algorithms on, a fixed CPU thread count while it runs
(restored after), TF32 off on CUDA, cuBLAS's workspace pinned, and every batch padded to the
same size so a crop's embedding never depends on the crops beside it. The bytes then depend
on the checkpoint, the input, the settings and the library versions (``runtime_record``).

Imports torch and transformers when imported: reach it through ``encoders.load_encoder``.
"""

import contextlib
import os
from pathlib import Path

import numpy as np

from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable

make_torch_stack_importable()  # transformers imports torchvision, which needs it beside CPU torch

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import VideoMAEConfig, VideoMAEModel  # noqa: E402

from vitcow_assets.core.videomae_layout import CheckpointError, EncoderSpec, LoadPlan  # noqa: E402
from vitcow_assets.encoders.checkpoints import Tensors, checkpoint_files, read_checkpoint  # noqa: E402
from vitcow_assets.encoders.settings import EncoderSettings  # noqa: E402

#: transformers' attention implementation (PyTorch's scaled_dot_product_attention)
ATTENTION = "sdpa"
#: cuBLAS needs a fixed workspace for deterministic results (set before CUDA starts)
CUBLAS_WORKSPACE = ":4096:8"


class DeviceError(ValueError):
    """The device the settings name is not here; one line."""


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when there is a GPU, else the CPU; a named CUDA device that is not
    there is one line."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"encoder device {device}: no CUDA device here (use cpu or auto)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"encoder device {device}: only {torch.cuda.device_count()} CUDA device(s)")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        return torch.device("cuda", index)
    return torch.device("cpu")


def _config(spec: EncoderSpec) -> VideoMAEConfig:
    config = VideoMAEConfig(
        image_size=spec.image_size, patch_size=spec.patch, num_channels=3, num_frames=spec.frames, tubelet_size=spec.tubelet,
        hidden_size=spec.dim, num_hidden_layers=spec.depth, num_attention_heads=spec.heads, intermediate_size=spec.mlp_dim,
        hidden_act="gelu", layer_norm_eps=spec.layer_norm_eps, qv_bias=spec.qkv_bias, use_mean_pooling=not spec.final_norm,
    )
    config._attn_implementation = ATTENTION
    return config


def _tensor(tensors: Tensors, take) -> torch.Tensor:
    value = tensors[take.source]
    return value[take.rows[0]: take.rows[1]] if take.rows else value


def build_model(plan: LoadPlan, tensors: Tensors) -> tuple[VideoMAEModel, torch.nn.LayerNorm | None]:
    """The encoder (and its ``fc_norm``, when it pools through one) with every tensor of the
    plan loaded strictly: a key missing or left over on either side fails."""
    spec = plan.spec
    with torch.random.fork_rng(devices=[]):  # the random initialisation is overwritten; leave the caller's RNG alone
        model = VideoMAEModel(_config(spec))
        fc_norm = torch.nn.LayerNorm(spec.dim, eps=spec.fc_norm_eps) if spec.pooling == "fc_norm" else None
    state = {t.target: _tensor(tensors, t).to(torch.float32) for t in plan.takes}
    encoder_state = {k: v for k, v in state.items() if not k.startswith("fc_norm.")}
    _load_strict(model, encoder_state)
    if fc_norm is not None:
        _load_strict(fc_norm, {k.removeprefix("fc_norm."): v for k, v in state.items() if k.startswith("fc_norm.")})
    return model.eval(), (fc_norm.eval() if fc_norm is not None else None)


def _load_strict(module: torch.nn.Module, state: dict) -> None:
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:  # the plan matches transformers' model: this is a transformers change
        raise CheckpointError(f"transformers {transformers.__version__} VideoMAEModel: missing {missing[:5]}, unexpected {unexpected[:5]}")
    module.load_state_dict(state, strict=True)


@contextlib.contextmanager
def deterministic(threads: int):
    """Torch pinned for reproducible results while the block runs, restored after."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before[2:]


class VideoEncoder:
    """One checkpoint's encoder on one device: ``embed`` turns clips into embeddings."""

    def __init__(self, plan: LoadPlan, tensors: Tensors, settings: EncoderSettings, sha256: str | None = None) -> None:
        self.plan, self.spec, self.settings, self.sha256 = plan, plan.spec, settings, sha256
        self.device = resolve_device(settings.device)
        with deterministic(settings.threads):
            model, fc_norm = build_model(plan, tensors)
            self.model = model.to(self.device)
            self.fc_norm = fc_norm.to(self.device) if fc_norm is not None else None
        self._mean = torch.tensor(self.spec.mean, dtype=torch.float32, device=self.device).view(1, 1, 3, 1, 1)
        self._std = torch.tensor(self.spec.std, dtype=torch.float32, device=self.device).view(1, 1, 3, 1, 1)

    @classmethod
    def load(cls, path: str | os.PathLike, settings: EncoderSettings, sha256: str | None = None) -> "VideoEncoder":
        plan, tensors = read_checkpoint(checkpoint_files(Path(path)))
        return cls(plan, tensors, settings, sha256)

    @property
    def dim(self) -> int:
        return self.spec.dim

    def runtime_record(self) -> dict:
        """What the bytes of the embeddings depend on beside the checkpoint and the input."""
        device = self.device.type + (f" ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else "")
        return {"device": device, "batch_size": self.settings.batch_size, "threads": self.settings.threads, "dtype": "float32",
                "attention": ATTENTION, "deterministic": True, "tf32": False, "torch": torch.__version__, "transformers": transformers.__version__}

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings (n, dim) float32 of ``clips`` (n, frames, size, size, 3) uint8 RGB, run in
        batches of exactly ``batch_size`` (the last one padded with black clips)."""
        spec, size = self.spec, self.settings.batch_size
        if clips.ndim != 5 or clips.shape[1:] != (spec.frames, spec.image_size, spec.image_size, 3) or clips.dtype != np.uint8:
            raise ValueError(f"clips must be uint8 (n, {spec.frames}, {spec.image_size}, {spec.image_size}, 3), got {clips.dtype} {clips.shape}")
        out = []
        with deterministic(self.settings.threads), torch.inference_mode():
            for start in range(0, len(clips), size):
                part = clips[start: start + size]
                padded = np.zeros((size, *part.shape[1:]), np.uint8)
                padded[: len(part)] = part
                out.append(self._forward(torch.from_numpy(padded))[: len(part)])
        return np.concatenate(out) if out else np.zeros((0, spec.dim), np.float32)

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        pixels = batch.to(self.device).permute(0, 1, 4, 2, 3).to(torch.float32).div(255.0)
        pixels = (pixels - self._mean) / self._std
        tokens = self.model(pixel_values=pixels).last_hidden_state
        if self.spec.pooling == "first_token":
            pooled = tokens[:, 0]
        else:
            pooled = tokens.mean(dim=1)
            if self.fc_norm is not None:
                pooled = self.fc_norm(pooled)
        return pooled.to("cpu", torch.float32).numpy()
