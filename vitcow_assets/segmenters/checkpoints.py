"""Checkpoint files and folders, read just enough to say what they are
(``core.checkpoint_kinds``), then their tensors: for the SAM3 backend, and for later
backends (transformers' SAM3, SAM 3.1) that load other layouts.

``inspect_checkpoint(path)`` tells, in a second whatever the file's size, its format and
kind: a PyTorch file (``torch.save``'s zip, opened memory-mapped and tensors only), a
safetensors file (its JSON header holds the names), or a folder (a transformers model:
``config.json`` and ``model.safetensors`` or a sharded index). Missing, unreadable and
unknown files are a ``CheckpointError`` whose message is one line naming the path.
``tensor_shapes`` and ``iter_tensors`` read a PyTorch or safetensors file's shapes, then its
tensors one at a time (``{"model": ...}`` unwrapped), so that loading never holds a second
copy of the weights; ``read_state_dict`` returns them all at once. torch and safetensors are
imported only when a file is read.
"""

import dataclasses
import functools
import json
import os
import struct
from pathlib import Path

from vitcow_assets.core.checkpoint_kinds import CheckpointKind, checkpoint_kind, shown

PYTORCH, SAFETENSORS, FOLDER = "pytorch", "safetensors", "folder"
_ZIP_MAGIC = b"PK\x03\x04"
#: a safetensors header larger than this is not one (the format caps it at 100 MB)
_MAX_SAFETENSORS_HEADER = 100 << 20
#: files a transformers model folder holds its weights in
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


class CheckpointError(ValueError):
    """The path is not a checkpoint file that can be read; the message is one line."""


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    path: str
    #: ``pytorch``, ``safetensors`` or ``folder``
    format: str
    kind: CheckpointKind
    #: the tensor names (for a PyTorch file, of the unwrapped state dict)
    keys: tuple[str, ...]
    #: a PyTorch file holding ``{"model": state_dict}``
    wrapped: bool = False

    @property
    def label(self) -> str:
        """``SAM3 release checkpoint (safetensors)``: the kind and the format, for messages."""
        return f"{self.kind.value} ({self.format})"


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """What ``path`` holds (see the module); ``CheckpointError`` when it cannot be told."""
    path = str(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path!r} does not exist")
    if os.path.isdir(path):
        return _inspect_folder(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as exc:
        raise CheckpointError(f"{path!r} is not readable ({exc.strerror or type(exc).__name__})") from None
    if head.startswith(_ZIP_MAGIC):
        return _inspect_pytorch(path)
    keys = _safetensors_keys(path, head)
    if keys is not None:
        return CheckpointInfo(path, SAFETENSORS, checkpoint_kind(keys), keys)
    raise CheckpointError(f"{path!r} is neither a PyTorch checkpoint (torch.save) nor a safetensors file ({os.path.getsize(path)} bytes)")


def _inspect_pytorch(path: str) -> CheckpointInfo:
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as exc:  # zipfile, pickle and torch errors: all mean "not a readable checkpoint"
        raise CheckpointError(f"{path!r} is not a PyTorch checkpoint torch can read ({type(exc).__name__}: {_first_line(exc)})") from None
    wrapped = isinstance(loaded, dict) and isinstance(loaded.get("model"), dict)
    state = loaded["model"] if wrapped else loaded
    if not isinstance(state, dict):
        raise CheckpointError(f"{path!r} holds a {type(state).__name__}, not a state dict of tensors")
    keys = tuple(str(k) for k in state)
    return CheckpointInfo(path, PYTORCH, checkpoint_kind(keys), keys, wrapped)


def _safetensors_keys(path: str, head: bytes) -> tuple[str, ...] | None:
    """The tensor names of a safetensors file (header: 8-byte little-endian length, then JSON),
    or None when the file is not one."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (length,) = struct.unpack("<Q", head[:8])
    if length > min(_MAX_SAFETENSORS_HEADER, os.path.getsize(path) - 8):
        return None
    with open(path, "rb") as handle:
        handle.seek(8)
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return None
    return tuple(k for k in header if k != "__metadata__") if isinstance(header, dict) else None


def _inspect_folder(path: str) -> CheckpointInfo:
    folder = Path(path)
    weights = next((folder / name for name in TRANSFORMERS_WEIGHTS if (folder / name).is_file()), None)
    if (folder / "config.json").is_file() and weights is not None:
        if weights.name.endswith(".index.json"):
            keys = tuple(json.loads(weights.read_text()).get("weight_map", {}))
        else:
            with open(weights, "rb") as handle:
                keys = _safetensors_keys(str(weights), handle.read(9)) or ()
        return CheckpointInfo(path, FOLDER, checkpoint_kind(keys), keys)
    inside = sorted(p.name for p in folder.iterdir())[:5]
    raise CheckpointError(f"{path!r} is a folder, not a checkpoint file or a transformers model folder (it holds: {shown(inside) or 'nothing'})")


def kind_of(path: str | os.PathLike) -> CheckpointKind:
    """``inspect_checkpoint(path).kind``, told once per version of the file or folder (its
    modification time and size): choosing a backend asks it often."""
    stat = os.stat(path) if os.path.exists(path) else None
    if stat is None:
        raise CheckpointError(f"{str(path)!r} does not exist")
    return _kind(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _kind(path: str, mtime_ns: int, size: int) -> CheckpointKind:
    return inspect_checkpoint(path).kind


def transformers_folder(info: CheckpointInfo) -> str | None:
    """The transformers model folder of a checkpoint: the folder itself, or the folder of a
    ``model.safetensors`` whose ``config.json`` sits beside it; None for anything else."""
    if info.format == FOLDER:
        return info.path
    folder = Path(info.path).parent
    if info.format == SAFETENSORS and (folder / "config.json").is_file():
        return str(folder)
    return None


def tensor_shapes(info: CheckpointInfo) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape, read without loading the tensors (safetensors: its header;
    PyTorch: the memory-mapped file)."""
    if info.format == SAFETENSORS:
        from safetensors import safe_open

        with safe_open(info.path, framework="pt", device="cpu") as handle:
            return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
    return {k: tuple(v.shape) for k, v in read_state_dict(info).items()}


def iter_tensors(info: CheckpointInfo):
    """``(name, tensor)`` one at a time, on the CPU: a model can take them in with no second
    copy of the whole file in memory (a PyTorch file stays memory-mapped; a safetensors file
    is read tensor by tensor)."""
    if info.format == SAFETENSORS:
        from safetensors import safe_open

        with safe_open(info.path, framework="pt", device="cpu") as handle:
            for name in handle.keys():
                yield name, handle.get_tensor(name)
        return
    yield from read_state_dict(info).items()


def read_state_dict(info: CheckpointInfo) -> dict:
    """The tensors of a PyTorch or safetensors checkpoint, on the CPU (a PyTorch file stays
    memory-mapped until the tensors are copied into a model)."""
    if info.format == PYTORCH:
        import torch

        loaded = torch.load(info.path, map_location="cpu", mmap=True, weights_only=True)
        return loaded["model"] if info.wrapped else loaded
    if info.format == SAFETENSORS:
        from safetensors.torch import load_file

        return load_file(info.path, device="cpu")
    raise CheckpointError(f"{info.path!r}: a {info.format} is not read as one state dict")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
