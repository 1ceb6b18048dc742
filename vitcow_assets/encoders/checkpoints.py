"""What a checkpoint path holds: its files (one file in the original VideoMAE layout, or a
transformers folder's ``config.json``, ``preprocessor_config.json`` and weights), its sha256,
and its tensors with the plan that loads the encoder from them (``core.videomae_layout``).

Torch pickles (``.pth``, ``.pt``, ``.bin``, ``.ckpt``) are read with ``weights_only``: tensors,
containers and the training ``args`` (an ``argparse.Namespace``) and nothing else, so a
checkpoint can never run code. ``.safetensors`` files are read lazily (only the encoder's
tensors are ever read). torch and safetensors are imported when tensors are read, not before.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from vitcow_assets.core.videomae_layout import CheckpointError, LoadPlan, plan_original, plan_transformers, unwrap
from vitcow_assets.encoders.digests import cached_sha256

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"
CONFIG, PREPROCESSOR = "config.json", "preprocessor_config.json"
#: a transformers folder's weights, in the order they are looked for (an index: shards)
FOLDER_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclasses.dataclass(frozen=True)
class CheckpointFiles:
    """The files one checkpoint is made of."""

    path: Path
    layout: str  # "original" (one file) or "transformers" (a folder)
    weights: tuple[Path, ...]
    config: Path | None = None
    preprocessor: Path | None = None
    index: Path | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file whose bytes make the checkpoint, sorted by name."""
        named = [*self.weights, self.config, self.preprocessor, self.index]
        return tuple(sorted((p for p in named if p is not None), key=lambda p: p.name))


def checkpoint_files(path: str | os.PathLike) -> CheckpointFiles:
    """The files of the checkpoint at ``path``; one line where it cannot be one."""
    path = Path(path).absolute()
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    if path.is_dir():
        return _folder_files(path)
    if path.suffix.lower() not in (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX):
        raise CheckpointError(f"{path}: not a checkpoint ({', '.join((*TORCH_SUFFIXES, SAFETENSORS_SUFFIX))} file, or a transformers folder)")
    return CheckpointFiles(path, "original", (path,))


def _folder_files(path: Path) -> CheckpointFiles:
    config = path / CONFIG
    if not config.is_file():
        raise CheckpointError(f"{path}: a folder without {CONFIG} (a transformers checkpoint folder holds config.json and the weights)")
    found = next((path / name for name in FOLDER_WEIGHTS if (path / name).is_file()), None)
    if found is None:
        raise CheckpointError(f"{path}: no weights ({', '.join(FOLDER_WEIGHTS)})")
    preprocessor = path / PREPROCESSOR if (path / PREPROCESSOR).is_file() else None
    if not found.name.endswith(".index.json"):
        return CheckpointFiles(path, "transformers", (found,), config, preprocessor)
    shards = sorted(set(_json(found).get("weight_map", {}).values()))
    missing = [s for s in shards if not (path / s).is_file()]
    if not shards or missing:
        raise CheckpointError(f"{found}: shard(s) missing: {', '.join(missing) or '(the index names none)'}")
    return CheckpointFiles(path, "transformers", tuple(path / s for s in shards), config, preprocessor, found)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None


def checkpoint_sha256(files: CheckpointFiles, cache_dir: str | os.PathLike) -> tuple[str, dict[str, str]]:
    """The checkpoint's sha256 and each file's: a single file's own; a folder's is the
    sha256 of ``<sha256>  <name>`` lines of its files, sorted by name."""
    digests = {p.name: cached_sha256(p, cache_dir) for p in files.files}
    if files.layout == "original":
        return digests[files.path.name], digests
    lines = "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode()).hexdigest(), digests


class Tensors:
    """The checkpoint's tensors by key: their shapes, and each tensor when asked for (a
    safetensors file reads only the tensors asked for)."""

    def __init__(self, shapes: Mapping[str, tuple], get) -> None:
        self.shapes = dict(shapes)
        self._get = get

    def __getitem__(self, key: str):
        return self._get(key)


def read_checkpoint(files: CheckpointFiles) -> tuple[LoadPlan, Tensors]:
    """The load plan of the checkpoint's encoder and its tensors; one line if it is not a
    VideoMAE encoder that can be loaded whole."""
    if files.layout == "transformers":
        tensors = _merged([_tensors_of(p) for p in files.weights])
        preprocessor = _json(files.preprocessor) if files.preprocessor else None
        return plan_transformers(tensors.shapes, _json(files.config), preprocessor), tensors
    if files.path.suffix.lower() == SAFETENSORS_SUFFIX:
        tensors = _safetensors(files.path)
        return plan_original(tensors.shapes), tensors
    state, args = unwrap(_torch_load(files.path))
    tensors = _in_memory(state, files.path)
    return plan_original(tensors.shapes, args), tensors


def _tensors_of(path: Path) -> Tensors:
    if path.name.endswith(SAFETENSORS_SUFFIX):
        return _safetensors(path)
    state, _ = unwrap(_torch_load(path))
    return _in_memory(state, path)


def _merged(parts: list[Tensors]) -> Tensors:
    owner = {key: part for part in parts for key in part.shapes}
    return Tensors({k: v for part in parts for k, v in part.shapes.items()}, lambda key: owner[key][key])


def _safetensors(path: Path) -> Tensors:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None

    def get(key: str):
        with safe_open(str(path), framework="pt") as handle:
            return handle.get_tensor(key)

    return Tensors(shapes, get)


def _torch_load(path: Path):
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise CheckpointError(f"{path}: holds objects other than tensors and training args ({found.group(1)}), not unpickled") from None
        reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc).strip())
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({reason.group(1).strip() if reason else 'not a pickle'})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    return loaded


def _in_memory(state: Mapping, path: Path) -> Tensors:
    import torch

    others = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if others:
        raise CheckpointError(f"{path}: its state dict holds non-tensor entries {', '.join(others[:5])}")
    return Tensors({k: tuple(v.shape) for k, v in state.items()}, state.__getitem__)
