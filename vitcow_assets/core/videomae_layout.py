"""VideoMAE checkpoints as their tensors name them: which layout a state dict is in, the
encoder's shape read from its tensors and its config, and the plan that renames its encoder
tensors to transformers' ``VideoMAEModel`` keys. Decoder and classifier tensors are
recognised and set aside (counted, never loaded); any other tensor, and any encoder tensor
the plan needs but does not find, is an error naming it.

Two layouts:

- **original** (MCG-NJU/VideoMAE's training scripts): a pre-training checkpoint holds
  ``encoder.*`` (``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.q_bias,attn.v_bias,
  attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``) beside ``decoder.*``, ``encoder_to_decoder``
  and ``mask_token``; a fine-tuning checkpoint holds the same encoder names without the
  prefix, with ``fc_norm`` (mean pooling) or ``norm`` (first token) and a ``head``. Either may
  sit under a ``model`` or ``module`` key (with the training ``args`` beside it) and carry a
  DDP ``module.`` prefix. Its attention projection is one ``qkv`` matrix (query, key, value
  rows in that order) with separate query and value biases and no key bias.
- **transformers**: a folder with ``config.json`` (``VideoMAEConfig``) and the weights of a
  ``VideoMAEModel`` (keys as the model names them), ``VideoMAEForPreTraining`` or
  ``VideoMAEForVideoClassification`` (``videomae.`` prefix); folders saved by older
  transformers name the attention biases ``q_bias`` / ``v_bias``.

The original layout has no config: depth, width, MLP width, patch, tubelet and biases come
from the tensors' names and shapes; attention heads, frames and image size from the training
``args`` the checkpoint carries (``model`` name, ``num_frames``, ``input_size``), else from the
VideoMAE family's definitions (heads by width; another width: heads of VideoMAE's head width
64) and VideoMAE's defaults (16 frames, 224 px), and the spec records where each value came from.

Pure: names, shapes and plain dicts in; a plan out (the tensors stay in ``encoders``).
"""

import dataclasses
import re
from collections.abc import Mapping

ARCHITECTURE = "videomae"
#: how the token features become one vector: their mean (after the encoder's final norm
#: where it has one), their mean through the fine-tuned ``fc_norm``, or the first token (the
#: original fine-tuning model without mean pooling)
POOLINGS = ("mean", "fc_norm", "first_token")
#: VideoMAE's data loaders normalise with ImageNet's mean and standard deviation
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the original code builds every LayerNorm with ``eps=1e-6``
ORIGINAL_NORM_EPS = 1e-6
#: transformers builds the classifier's ``fc_norm`` as ``nn.LayerNorm(hidden)``: torch's default eps
TRANSFORMERS_FC_NORM_EPS = 1e-5
#: VideoMAE's input defaults (its training scripts' ``--num_frames`` and ``--input_size``)
DEFAULT_FRAMES, DEFAULT_IMAGE_SIZE = 16, 224
#: the VideoMAE ViT family (modeling_pretrain / modeling_finetune): model size -> (width, heads)
FAMILY = {"small": (384, 6), "base": (768, 12), "large": (1024, 16), "huge": (1280, 16), "giant": (1408, 16)}
#: the head width of VideoMAE-S/B/L (384/6, 768/12, 1024/16): heads of another width where no args say
HEAD_WIDTH = 64
#: names printed in one error line before "and N more"
NAMES_SHOWN = 5

_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")
#: original block tensor -> VideoMAEModel layer tensor (the qkv matrix is split apart)
_BLOCK_NAMES = {
    "norm1.weight": "layernorm_before.weight", "norm1.bias": "layernorm_before.bias",
    "attn.proj.weight": "attention.output.dense.weight", "attn.proj.bias": "attention.output.dense.bias",
    "norm2.weight": "layernorm_after.weight", "norm2.bias": "layernorm_after.bias",
    "mlp.fc1.weight": "intermediate.dense.weight", "mlp.fc1.bias": "intermediate.dense.bias",
    "mlp.fc2.weight": "output.dense.weight", "mlp.fc2.bias": "output.dense.bias",
}
_QKV_BIASES = {"attn.q_bias": "attention.attention.query.bias", "attn.v_bias": "attention.attention.value.bias"}
_QKV_ROWS = ("attention.attention.query.weight", "attention.attention.key.weight", "attention.attention.value.weight")
#: older transformers names of the attention biases (transformers renames them on load too)
_OLD_TRANSFORMERS_NAMES = {"attention.attention.q_bias": "attention.attention.query.bias", "attention.attention.v_bias": "attention.attention.value.bias"}
#: tensors that are recognised and left out, by the group the load reports them under
_ORIGINAL_SET_ASIDE = (("decoder.", "decoder"), ("encoder_to_decoder.", "decoder"), ("mask_token", "decoder"), ("head.", "classifier head"))
_TRANSFORMERS_SET_ASIDE = (("decoder.", "decoder"), ("encoder_to_decoder.", "decoder"), ("mask_token", "decoder"), ("classifier.", "classifier head"))


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as a VideoMAE encoder; the message is one line."""


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What the encoder is, read from the checkpoint (``sources``: where each value came from)."""

    layout: str  # "original" or "transformers"
    kind: str  # "pretraining", "finetuning" or "encoder" (neither decoder nor classifier)
    depth: int
    dim: int
    heads: int
    mlp_dim: int
    patch: int
    tubelet: int
    frames: int
    image_size: int
    qkv_bias: bool
    final_norm: bool  # the LayerNorm after the last block (VideoMAE's ``norm``)
    pooling: str
    layer_norm_eps: float
    fc_norm_eps: float | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sources: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise CheckpointError(f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if self.dim % self.heads:
            raise CheckpointError(f"width {self.dim} does not split into {self.heads} attention heads")
        if self.frames % self.tubelet or self.image_size % self.patch:
            raise CheckpointError(f"{self.frames} frames of {self.image_size} px do not divide into tubelets of {self.tubelet} and patches of {self.patch}")

    @property
    def tokens(self) -> int:
        """Tokens the encoder sees per clip: (frames / tubelet) × (image size / patch)²."""
        return (self.frames // self.tubelet) * (self.image_size // self.patch) ** 2

    def record(self) -> dict:
        """The spec as plain JSON values (what the embeddings table's metadata holds)."""
        out = {"architecture": ARCHITECTURE, **dataclasses.asdict(self)}
        out["mean"], out["std"], out["sources"] = list(self.mean), list(self.std), dict(self.sources)
        return out


@dataclasses.dataclass(frozen=True)
class Take:
    """One tensor of the loaded encoder: ``target`` (a ``VideoMAEModel`` key, or ``fc_norm.*``)
    is the checkpoint's ``source``, or rows ``rows[0]:rows[1]`` of it (the split qkv matrix)."""

    target: str
    source: str
    rows: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    """How to load one checkpoint's encoder: its spec, every tensor taken, and the tensors
    recognised and left out by group (``{"decoder": 26, "classifier head": 2}``)."""

    spec: EncoderSpec
    takes: tuple[Take, ...]
    ignored: dict[str, int]


def _names(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def model_keys(spec: EncoderSpec) -> dict[str, tuple[int, ...]]:
    """Every tensor the encoder loads (``VideoMAEModel``'s state dict, plus ``fc_norm.*`` when
    it pools through it) with its shape."""
    d = spec.dim
    keys = {
        "embeddings.patch_embeddings.projection.weight": (d, 3, spec.tubelet, spec.patch, spec.patch),
        "embeddings.patch_embeddings.projection.bias": (d,),
    }
    for i in range(spec.depth):
        layer = {
            "layernorm_before.weight": (d,), "layernorm_before.bias": (d,),
            **{name: (d, d) for name in _QKV_ROWS},
            **({name: (d,) for name in _QKV_BIASES.values()} if spec.qkv_bias else {}),
            "attention.output.dense.weight": (d, d), "attention.output.dense.bias": (d,),
            "layernorm_after.weight": (d,), "layernorm_after.bias": (d,),
            "intermediate.dense.weight": (spec.mlp_dim, d), "intermediate.dense.bias": (spec.mlp_dim,),
            "output.dense.weight": (d, spec.mlp_dim), "output.dense.bias": (d,),
        }
        keys.update({f"encoder.layer.{i}.{name}": shape for name, shape in layer.items()})
    if spec.final_norm:
        keys.update({"layernorm.weight": (d,), "layernorm.bias": (d,)})
    if spec.pooling == "fc_norm":
        keys.update({"fc_norm.weight": (d,), "fc_norm.bias": (d,)})
    return keys


def _original_names(spec: EncoderSpec) -> list[Take]:
    """The encoder's tensors in the original naming (no prefix): where each target comes from."""
    d = spec.dim
    takes = [Take("embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight"), Take("embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias")]
    for i in range(spec.depth):
        layer = f"encoder.layer.{i}."
        takes += [Take(layer + target, f"blocks.{i}.attn.qkv.weight", (k * d, (k + 1) * d)) for k, target in enumerate(_QKV_ROWS)]
        if spec.qkv_bias:
            takes += [Take(layer + target, f"blocks.{i}.{name}") for name, target in _QKV_BIASES.items()]
        takes += [Take(layer + target, f"blocks.{i}.{name}") for name, target in _BLOCK_NAMES.items()]
    if spec.final_norm:
        takes += [Take("layernorm.weight", "norm.weight"), Take("layernorm.bias", "norm.bias")]
    if spec.pooling == "fc_norm":
        takes += [Take("fc_norm.weight", "fc_norm.weight"), Take("fc_norm.bias", "fc_norm.bias")]
    return takes


def _resolve(spec: EncoderSpec, takes: list[Take], present: Mapping[str, str], shapes: Mapping[str, tuple], prefix: str = "") -> LoadPlan:
    """The plan, once every encoder tensor is present with its shape and nothing else is.

    ``takes`` name their sources in the layout's own naming without prefixes; ``present``
    maps those names to the checkpoint's (prefixed) keys for every tensor not set aside.
    Missing and unexpected tensors are named in one line, as the checkpoint names them
    (missing ones in the layout's naming, with the encoder's ``prefix``)."""
    wanted = {t.source for t in takes}
    missing = sorted(prefix + n for n in wanted - set(present))
    unexpected = sorted(present[n] for n in set(present) - wanted)
    problems = []
    if missing:
        problems.append(f"missing encoder key(s) {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected key(s) {_names(unexpected)}")
    if problems:
        raise CheckpointError("; ".join(problems) + f" (for a depth-{spec.depth}, width-{spec.dim} VideoMAE encoder)")
    shapes_wanted = model_keys(spec)
    resolved = []
    for take in takes:
        source = present[take.source]
        got = tuple(shapes[source])
        rows_ok = take.rows is None or (len(got) == 2 and got[0] == 3 * spec.dim)
        got = (take.rows[1] - take.rows[0], *got[1:]) if take.rows and rows_ok else got
        if not rows_ok or got != shapes_wanted[take.target]:
            raise CheckpointError(f"{source} has shape {tuple(shapes[source])}, which does not fit {take.target} {shapes_wanted[take.target]} of a width-{spec.dim} encoder")
        resolved.append(dataclasses.replace(take, source=source))
    return LoadPlan(spec, tuple(resolved), {})


def unwrap(checkpoint: Mapping) -> tuple[Mapping, Mapping | None]:
    """The state dict inside a loaded checkpoint (under ``model`` or ``module`` when wrapped)
    and the training ``args`` beside it (None without)."""
    for key in ("model", "module"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            return inner, _args_dict(checkpoint.get("args"))
    return checkpoint, None


def _args_dict(args) -> Mapping | None:
    if isinstance(args, Mapping):
        return args
    return dict(vars(args)) if hasattr(args, "__dict__") else None


def _set_aside(names: list[str], rules, prefix: str) -> tuple[dict[str, str], dict[str, int]]:
    """``{name without prefix: key}`` of the candidate encoder tensors, and the count of
    recognised non-encoder tensors by group."""
    present, ignored = {}, {}
    for key in names:
        name = key[len(prefix):] if prefix and key.startswith(prefix) else key
        group = next((g for start, g in rules if name.startswith(start)), None)
        if group is not None:
            ignored[group] = ignored.get(group, 0) + 1
        elif name in present:
            raise CheckpointError(f"{present[name]} and {key} both name the encoder tensor {name}")
        else:
            present[name] = key
    return present, ignored


def _depth(names, pattern: re.Pattern) -> int:
    found = [int(m.group(1)) for n in names if (m := pattern.match(n))]
    return max(found) + 1 if found else 0


def _shape(shapes: Mapping[str, tuple], key: str | None, what: str) -> tuple:
    if key is None or key not in shapes:
        raise CheckpointError(f"no {what} tensor: not a VideoMAE checkpoint")
    return tuple(shapes[key])


def _heads(dim: int, args: Mapping | None) -> tuple[int, str]:
    """Attention heads of the original layout: from the training args' model name, else the
    family member of this width; one line where neither tells."""
    name = str((args or {}).get("model") or "")
    for size, (width, heads) in FAMILY.items():
        if re.search(rf"(^|_){size}(_|$)", name):
            if width != dim:
                raise CheckpointError(f"args.model {name!r} is a width-{width} model but the checkpoint's tensors are width {dim}")
            return heads, f"args.model {name}"
    for size, (width, heads) in FAMILY.items():
        if width == dim:
            return heads, f"VideoMAE-{size} (width {dim})"
    if dim % HEAD_WIDTH == 0:
        return dim // HEAD_WIDTH, f"width {dim} / VideoMAE's head width {HEAD_WIDTH} (no args.model)"
    raise CheckpointError(f"cannot tell the attention heads of a width-{dim} encoder: its args name no VideoMAE model size ({', '.join(FAMILY)}); convert it to a transformers folder with a config.json")


def _from_args(args: Mapping | None, name: str, default: int, what: str) -> tuple[int, str]:
    value = (args or {}).get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return default, f"VideoMAE default {what} (the checkpoint does not say)"
    return int(value), f"args.{name}"


def _original_kind(prefix: str, ignored: Mapping[str, int]) -> str:
    if prefix == "encoder." or ignored.get("decoder"):
        return "pretraining"
    return "finetuning" if ignored.get("classifier head") else "encoder"


def _original_present(keys: list[str]) -> tuple[dict[str, str], dict[str, int], str]:
    """The candidate encoder tensors by their name without prefixes (a DDP ``module.``, a
    pre-training model's ``encoder.``, a ``backbone.``) -> their key; the tensors set aside
    by group; and the prefix the encoder's names carry."""
    ddp = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    keyed = {k[len(ddp):]: k for k in keys}
    names = list(keyed)
    prefix = next((p for p in ("encoder.", "backbone.") if any(n.startswith(p) for n in names)), "")
    present, ignored = _set_aside(names, _ORIGINAL_SET_ASIDE, prefix)
    return {name: keyed[stripped] for name, stripped in present.items()}, ignored, prefix


def _original_spec(shapes: Mapping[str, tuple], present: Mapping[str, str], kind: str, args: Mapping | None) -> EncoderSpec:
    patch = _shape(shapes, present.get("patch_embed.proj.weight"), "patch_embed.proj.weight (patch embedding)")
    if len(patch) != 5 or patch[1] != 3 or patch[3] != patch[4]:
        raise CheckpointError(f"patch_embed.proj.weight has shape {patch}: not a VideoMAE tubelet embedding (width, 3, tubelet, patch, patch)")
    dim, tubelet, size = patch[0], patch[2], patch[3]
    fc1 = _shape(shapes, present.get("blocks.0.mlp.fc1.weight"), "blocks.0.mlp.fc1.weight (first MLP)")
    heads, heads_from = _heads(dim, args)
    frames, frames_from = _from_args(args, "num_frames", DEFAULT_FRAMES, "frames")
    image_size, image_from = _from_args(args, "input_size", DEFAULT_IMAGE_SIZE, "image size")
    given_tubelet = (args or {}).get("tubelet_size")
    if given_tubelet is not None and int(given_tubelet) != tubelet:
        raise CheckpointError(f"args.tubelet_size {given_tubelet} disagrees with the patch embedding's tubelet {tubelet}")
    pooling = "fc_norm" if "fc_norm.weight" in present else "first_token" if kind == "finetuning" else "mean"
    shapes_note, normalisation = "tensor shapes", "VideoMAE's ImageNet normalisation"
    return EncoderSpec(
        layout="original", kind=kind, depth=_depth(present, _BLOCK), dim=dim, heads=heads, mlp_dim=fc1[0], patch=size, tubelet=tubelet,
        frames=frames, image_size=image_size, qkv_bias="blocks.0.attn.q_bias" in present, final_norm="norm.weight" in present,
        pooling=pooling, layer_norm_eps=ORIGINAL_NORM_EPS, fc_norm_eps=ORIGINAL_NORM_EPS if pooling == "fc_norm" else None,
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
        sources=(("depth", "tensor names (blocks.N)"), ("dim", shapes_note), ("mlp_dim", shapes_note), ("patch", shapes_note), ("tubelet", shapes_note),
                 ("heads", heads_from), ("frames", frames_from), ("image_size", image_from), ("pooling", _pooling_note(pooling)),
                 ("layer_norm_eps", "VideoMAE's LayerNorm(eps=1e-6)"), ("mean", normalisation), ("std", normalisation)),
    )


def plan_original(shapes: Mapping[str, tuple], args: Mapping | None = None) -> LoadPlan:
    """The plan for a state dict in the original VideoMAE layout (``shapes``: key -> shape,
    already unwrapped from ``model``/``module``; ``args``: the training arguments, if saved)."""
    present, ignored, prefix = _original_present(list(shapes))
    spec = _original_spec(shapes, present, _original_kind(prefix, ignored), args)
    plan = _resolve(spec, _original_names(spec), present, shapes, prefix)
    return dataclasses.replace(plan, ignored=ignored)


def _pooling_note(pooling: str) -> str:
    return {
        "fc_norm": "fc_norm present: the fine-tuned model's mean of tokens through fc_norm",
        "first_token": "fine-tuned without fc_norm: the model's first token after its final norm",
        "mean": "no classifier: the mean of the encoder's tokens (after its final norm where present)",
    }[pooling]


def _square(value, what: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise CheckpointError(f"config.json {what} {list(value)} is not square")
        value = value[0]
    return int(value)


def _config_value(config: Mapping, *names, default=None):
    for name in names:
        if name in config:
            return config[name]
    return default


def plan_transformers(shapes: Mapping[str, tuple], config: Mapping, preprocessor: Mapping | None = None) -> LoadPlan:
    """The plan for a transformers folder's weights (``shapes``) and its ``config.json``
    (``preprocessor``: its ``preprocessor_config.json``, for the normalisation, if any)."""
    if config.get("model_type", ARCHITECTURE) != ARCHITECTURE:
        raise CheckpointError(f"config.json model_type is {config.get('model_type')!r}, not {ARCHITECTURE!r}")
    if config.get("hidden_act", "gelu") != "gelu" or config.get("num_channels", 3) != 3:
        raise CheckpointError("config.json: only VideoMAE encoders with GELU and 3 input channels are supported")
    keys = list(shapes)
    prefix = "videomae." if any(k.startswith("videomae.") for k in keys) else ""
    present, ignored = _set_aside(keys, _TRANSFORMERS_SET_ASIDE, prefix)
    present = {_renamed_bias(n): k for n, k in present.items()}
    depth_in_weights = _depth(present, _LAYER)
    spec = _transformers_spec(config, present, ignored, preprocessor)
    if depth_in_weights != spec.depth:
        raise CheckpointError(f"config.json says {spec.depth} layers but the weights hold {depth_in_weights}")
    takes = [Take(target, target) for target in model_keys(spec)]
    plan = _resolve(spec, takes, present, shapes, prefix)
    return dataclasses.replace(plan, ignored=ignored)


def _renamed_bias(name: str) -> str:
    for old, new in _OLD_TRANSFORMERS_NAMES.items():
        if name.endswith(old):
            return name[: -len(old)] + new
    return name


def _transformers_spec(config: Mapping, present: Mapping[str, str], ignored: Mapping[str, int], preprocessor: Mapping | None) -> EncoderSpec:
    architectures = " ".join(config.get("architectures") or [])
    classifier = bool(ignored.get("classifier head")) or "Classification" in architectures
    kind = "pretraining" if ignored.get("decoder") or "PreTraining" in architectures else "finetuning" if classifier else "encoder"
    mean_pooling = bool(config.get("use_mean_pooling", True))
    pooling = "fc_norm" if "fc_norm.weight" in present else "first_token" if classifier else "mean"
    mean = tuple(_config_value(preprocessor or {}, "image_mean", default=IMAGENET_MEAN))
    std = tuple(_config_value(preprocessor or {}, "image_std", default=IMAGENET_STD))
    normalisation = "preprocessor_config.json" if preprocessor and "image_mean" in preprocessor else "ImageNet (no preprocessor_config.json)"
    return EncoderSpec(
        layout="transformers", kind=kind,
        depth=int(config.get("num_hidden_layers", 12)), dim=int(config.get("hidden_size", 768)), heads=int(config.get("num_attention_heads", 12)),
        mlp_dim=int(config.get("intermediate_size", 3072)), patch=_square(config.get("patch_size", 16), "patch_size"),
        tubelet=int(config.get("tubelet_size", 2)), frames=int(config.get("num_frames", DEFAULT_FRAMES)),
        image_size=_square(config.get("image_size", DEFAULT_IMAGE_SIZE), "image_size"),
        qkv_bias=bool(_config_value(config, "qv_bias", "qkv_bias", default=True)), final_norm=not mean_pooling, pooling=pooling,
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)), fc_norm_eps=TRANSFORMERS_FC_NORM_EPS if pooling == "fc_norm" else None,
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        sources=(("architecture", architectures or "(config names none)"), ("shape", "config.json (checked against the weights)"),
                 ("pooling", _pooling_note(pooling)), ("mean", normalisation), ("std", normalisation)),
    )
