"""What the embedding tests and benchmark feed the encoder: small crop videos of seeded
content (``write_crop``), and tiny random VideoMAE checkpoints in every layout the encoder
loads, all from the same weights: a transformers ``VideoMAEForPreTraining`` (or ``VideoMAEForVideoClassification``)
built and saved with transformers, and the same tensors written in the original VideoMAE
layout (pre-training checkpoint with its decoder, fine-tuning checkpoint with its head,
under ``model`` or ``module``, with the training ``args``).

The original names are written here from the VideoMAE sources' own module names (``blocks``,
``attn.qkv`` = query, key, value rows, ``attn.q_bias``/``v_bias``, ``mlp.fc1`` ...), the
opposite direction of the encoder's loading plan, so the two are checked against each other.
Every tensor is random (LayerNorm weights near 1), so a swapped or dropped tensor changes
the embeddings.
"""

import argparse
from pathlib import Path

import numpy as np

from vitcow_assets.media.video import VideoWriter

from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable

make_torch_stack_importable()

import torch  # noqa: E402
from transformers import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification  # noqa: E402

#: the tiny shape the tests use: width 128 = 2 heads of VideoMAE's head width 64
TINY = {"hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 256, "num_hidden_layers": 3, "image_size": 32, "patch_size": 16,
        "num_frames": 4, "tubelet_size": 2, "decoder_hidden_size": 64, "decoder_num_attention_heads": 2, "decoder_intermediate_size": 128,
        "decoder_num_hidden_layers": 2, "layer_norm_eps": 1e-6}
#: original VideoMAE block names -> transformers layer names (without the qkv matrix)
_BLOCK = {
    "norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense",
}


def tiny_config(**overrides) -> VideoMAEConfig:
    return VideoMAEConfig(**{**TINY, "use_mean_pooling": False, **overrides})


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter random (seeded): weights and biases small, norm weights near 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            noise = torch.randn(param.shape, generator=generator)
            is_norm_weight = "norm" in name and name.endswith("weight")
            param.copy_(1.0 + 0.1 * noise if is_norm_weight else 0.05 * noise)
    return model.eval()


def pretraining_model(seed: int = 0, **overrides) -> VideoMAEForPreTraining:
    torch.manual_seed(seed)
    return randomise(VideoMAEForPreTraining(tiny_config(**overrides)), seed)


def classification_model(seed: int = 0, **overrides) -> VideoMAEForVideoClassification:
    torch.manual_seed(seed)
    config = tiny_config(use_mean_pooling=True, num_labels=5, **overrides)
    return randomise(VideoMAEForVideoClassification(config), seed)


def save_transformers(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


def original_encoder(videomae_state: dict, depth: int) -> dict:
    """The encoder tensors of a transformers ``VideoMAEModel`` state dict in original names."""
    s = videomae_state
    out = {"patch_embed.proj.weight": s["embeddings.patch_embeddings.projection.weight"], "patch_embed.proj.bias": s["embeddings.patch_embeddings.projection.bias"]}
    for i in range(depth):
        layer = f"encoder.layer.{i}."
        attention = layer + "attention.attention."
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([s[attention + "query.weight"], s[attention + "key.weight"], s[attention + "value.weight"]])
        out[f"blocks.{i}.attn.q_bias"] = s[attention + "query.bias"]
        out[f"blocks.{i}.attn.v_bias"] = s[attention + "value.bias"]
        for original, ours in _BLOCK.items():
            for part in ("weight", "bias"):
                out[f"blocks.{i}.{original}.{part}"] = s[f"{layer}{ours}.{part}"]
    if "layernorm.weight" in s:
        out["norm.weight"], out["norm.bias"] = s["layernorm.weight"], s["layernorm.bias"]
    return {k: v.clone() for k, v in out.items()}


def original_pretraining(model: VideoMAEForPreTraining) -> dict:
    """The model as the original pre-training checkpoint names it: ``encoder.*``, the decoder
    (``decoder.blocks.*``, ``decoder.norm``, ``decoder.head``), ``encoder_to_decoder``, ``mask_token``."""
    encoder = original_encoder(model.videomae.state_dict(), model.config.num_hidden_layers)
    state = {f"encoder.{k}": v for k, v in encoder.items()}
    for key, value in model.state_dict().items():
        if key.startswith("decoder."):
            name = key.replace("decoder.decoder_layers.", "decoder.blocks.").replace("decoder.decoder_norm.", "decoder.norm.")
            state[name] = value.clone()
        elif key.startswith(("encoder_to_decoder.", "mask_token")):
            state[key] = value.clone()
    return state


def original_finetuning(model: VideoMAEForVideoClassification) -> dict:
    """The model as the original fine-tuning checkpoint names it: the encoder without prefix,
    ``fc_norm`` and the ``head``."""
    state = original_encoder(model.videomae.state_dict(), model.config.num_hidden_layers)
    state.update({"fc_norm.weight": model.fc_norm.weight.clone(), "fc_norm.bias": model.fc_norm.bias.clone(),
                  "head.weight": model.classifier.weight.clone(), "head.bias": model.classifier.bias.clone()})
    return state


def training_args(model_name: str, config: VideoMAEConfig) -> argparse.Namespace:
    """What VideoMAE's training scripts save beside the weights (the fields the loader reads)."""
    return argparse.Namespace(model=model_name, num_frames=config.num_frames, input_size=config.image_size, tubelet_size=config.tubelet_size, lr=1e-3, epochs=1)


def save_original(state: dict, path: Path, wrapper: str | None = "model", args: argparse.Namespace | None = None) -> Path:
    """``state`` saved as a torch checkpoint: under ``wrapper`` with ``args`` beside it, or bare."""
    payload = state if wrapper is None else {wrapper: state, **({"args": args} if args is not None else {}), "epoch": 1}
    torch.save(payload, path)
    return path


def write_checkpoints(folder: Path, seed: int = 0, **overrides) -> dict[str, Path]:
    """One set of weights in every layout: transformers ``VideoMAEForPreTraining`` and
    ``VideoMAEModel`` folders; the original pre-training checkpoint (decoder included) under
    ``model`` and under ``module``, bare with a DDP ``module.`` prefix, and as safetensors;
    plus a fine-tuned model as a transformers ``VideoMAEForVideoClassification`` folder and
    an original fine-tuning checkpoint (``fc_norm`` + ``head``)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model = pretraining_model(seed, **overrides)
    args = training_args("pretrain_videomae_tiny_patch16", model.config)
    original = original_pretraining(model)
    classifier = classification_model(seed + 1, **overrides)
    paths = {
        "transformers_pretraining": save_transformers(model, folder / "hf_pretraining"),
        "transformers_model": save_transformers(model.videomae, folder / "hf_model"),
        "original_model": save_original(original, folder / "pretrain_model.pth", "model", args),
        "original_module": save_original(original, folder / "pretrain_module.pth", "module", args),
        "transformers_classification": save_transformers(classifier, folder / "hf_classification"),
        "original_finetuning": save_original(original_finetuning(classifier), folder / "finetune.pth", "model", training_args("vit_tiny_patch16", classifier.config)),
    }
    if model.config.num_frames == 16 and model.config.image_size == 224:  # the defaults an args-less checkpoint gets
        paths["original_ddp"] = save_original({f"module.{k}": v for k, v in original.items()}, folder / "pretrain_ddp.pt", None)
        save_file({k: v.contiguous() for k, v in original.items()}, folder / "pretrain.safetensors")
        paths["original_safetensors"] = folder / "pretrain.safetensors"
    return paths


#: side of the crop videos the tests write (the pipeline writes 224)
CROP_SIZE = 48


def write_crop(path: Path, frames: int, seed: int, size: int = CROP_SIZE) -> Path:
    """``frames`` frames of ``size`` px, H.264 as the pipeline writes crops: a square moving
    over a floor, both coloured by ``seed``."""
    rng = np.random.default_rng(seed)
    floor, colour = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, size, size, 2.5) as writer:
        for i in range(frames):
            image = np.empty((size, size, 3), np.uint8)
            image[:] = floor
            x = (3 * i + seed) % (size - 12)
            image[10:22, x: x + 12] = colour
            writer.write(image)
    return path
