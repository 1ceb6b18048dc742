"""The registered encoder checkpoints: one JSON file per partition key of ``crop_embeddings``
under ``<home>/checkpoints``, found by key or by sha256.

A checkpoint is registered by its bytes: its key is its file (or folder) name made plain
plus the first ``KEY_SHA_CHARS`` hex digits of its sha256, so other bytes under the same name
are another partition, and the same bytes registered again (from anywhere) are the same one,
its path updated to where they are now. The asset reads the checkpoint from the registered
path and refuses it when the bytes there are no longer the registered ones.
"""

import dataclasses
import json
import os
from pathlib import Path

from vitcow_assets.core.names import plain_name
from vitcow_assets.encoders.checkpoints import checkpoint_files, checkpoint_sha256
from vitcow_assets.footage.layout import StorageRoot, check_partition_key
from vitcow_assets.media.files import atomic_file

KEY_SHA_CHARS = 12
#: characters of the name kept in the key (before ``-<sha>``)
KEY_NAME_CHARS = 48


@dataclasses.dataclass(frozen=True)
class RegisteredCheckpoint:
    key: str
    sha256: str
    path: str
    layout: str  # "original" or "transformers"
    #: sha256 of each file of the checkpoint, by name
    files: dict

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def record(self) -> dict:
        """What the embeddings table's metadata says of it (not the path: the same bytes
        elsewhere are the same checkpoint)."""
        return {"sha256": self.sha256, "layout": self.layout, "files": dict(sorted(self.files.items()))}


def checkpoint_key(path: str | os.PathLike, sha256: str) -> str:
    """The partition key of the checkpoint at ``path`` with these bytes."""
    path = Path(path)
    name = plain_name(path.name if path.is_dir() else path.stem, KEY_NAME_CHARS) or "checkpoint"
    return check_partition_key(f"{name}-{sha256[:KEY_SHA_CHARS]}")


class CheckpointRegistry:
    def __init__(self, root: StorageRoot) -> None:
        self.root = root
        self.folder = root.checkpoints

    def get(self, key: str) -> RegisteredCheckpoint | None:
        try:
            return RegisteredCheckpoint(**json.loads((self.folder / f"{check_partition_key(key)}.json").read_text()))
        except FileNotFoundError:
            return None

    def all(self) -> list[RegisteredCheckpoint]:
        return [RegisteredCheckpoint(**json.loads(p.read_text())) for p in sorted(self.folder.glob("*.json"))] if self.folder.is_dir() else []

    def entry_for(self, path: str | os.PathLike) -> RegisteredCheckpoint:
        """What registering the checkpoint at ``path`` records (hashed, or its remembered
        digest), without recording it: the same bytes keep the key they were given first."""
        files = checkpoint_files(path)
        sha256, digests = checkpoint_sha256(files, self.root.checkpoint_digests)
        known = next((c for c in self.all() if c.sha256 == sha256), None)
        key = known.key if known else checkpoint_key(files.path, sha256)
        return RegisteredCheckpoint(key, sha256, str(files.path), files.layout, digests)

    def save(self, entry: RegisteredCheckpoint) -> RegisteredCheckpoint:
        if entry != self.get(entry.key):
            with atomic_file(self.folder / f"{entry.key}.json") as tmp:
                tmp.write_text(json.dumps(entry.as_dict(), indent=2, sort_keys=True))
        return entry

    def register(self, path: str | os.PathLike) -> RegisteredCheckpoint:
        """Register the checkpoint at ``path``; its entry."""
        return self.save(self.entry_for(path))

    def verified(self, key: str) -> RegisteredCheckpoint:
        """The registration of ``key`` once the bytes at its path are still the registered
        ones; ``ValueError`` in one line otherwise."""
        entry = self.get(key)
        if entry is None:
            raise ValueError(f"no checkpoint is registered as {key} (vitcow eval embed CHECKPOINT registers one)")
        sha256, _ = checkpoint_sha256(checkpoint_files(entry.path), self.root.checkpoint_digests)
        if sha256 != entry.sha256:
            raise ValueError(f"checkpoint {entry.path} changed since it was registered as {key} (sha256 {sha256[:12]}, registered {entry.sha256[:12]}): register it again")
        return entry
