"""The registry of source videos: one JSON file per partition key under ``<home>/registry``.

Registering decides a file's partition key: the same path keeps its key (changed bytes are
new footage for the same partition); the same bytes under another name are a duplicate of
the partition that already has them; a new name whose key is taken by other bytes gets the
key with a short hash of its content appended.
"""

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from urllib.parse import unquote

from vitcow_assets.media.files import atomic_file
from vitcow_assets.remote.locations import is_url
from vitcow_assets.footage.layout import StorageRoot, check_partition_key, partition_key_for


@dataclasses.dataclass(frozen=True)
class Registration:
    key: str
    source_path: str
    sha256: str
    size: int
    registered_at: str
    #: 1 for the first bytes registered under this key, +1 each time they change
    revision: int = 1
    #: name of the landing source it came from (``VITCOW_LANDING=name=URL``), if named
    source_name: str | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RegisterOutcome:
    registration: Registration
    #: ``new``: first time; ``changed``: same path, new bytes; ``unchanged``: same path and
    #: bytes; ``duplicate``: these bytes are registered under another path
    status: str


class Registry:
    def __init__(self, storage: StorageRoot) -> None:
        self.folder = storage.registry

    def _path(self, key: str) -> Path:
        return self.folder / f"{check_partition_key(key)}.json"

    def get(self, key: str) -> Registration | None:
        try:
            data = json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        return Registration(**data)

    def all(self) -> list[Registration]:
        if not self.folder.exists():
            return []
        return [Registration(**json.loads(p.read_text())) for p in sorted(self.folder.glob("*.json"))]

    def _save(self, registration: Registration) -> None:
        with atomic_file(self._path(registration.key)) as tmp:
            tmp.write_text(json.dumps(registration.as_dict(), indent=2))

    def register(self, source: str | os.PathLike, sha256: str, size: int | None = None, source_name: str | None = None) -> RegisterOutcome:
        """Register a local file, or a remote one by its URI (``sftp://``, ``s3://``, with
        ``size``)."""
        remote = is_url(str(source))
        source_path = str(source) if remote else str(Path(source).absolute())
        if size is None:
            size = Path(source_path).stat().st_size
        entries = self.all()
        by_path = next((e for e in entries if e.source_path == source_path), None)
        if by_path is not None and by_path.sha256 == sha256:
            return RegisterOutcome(by_path, "unchanged")
        same_bytes = next((e for e in entries if e.sha256 == sha256), None)
        if same_bytes is not None and by_path is None:
            return RegisterOutcome(same_bytes, "duplicate")
        if by_path is not None:
            key, status, revision = by_path.key, "changed", by_path.revision + 1
        else:
            key, status, revision = partition_key_for(unquote(source_path.rsplit("/", 1)[-1]) if remote else Path(source_path).name), "new", 1
            if self.get(key) is not None:
                key = f"{key}-{sha256[:8]}"
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        registration = Registration(key, source_path, sha256, size, now, revision, source_name)
        self._save(registration)
        return RegisterOutcome(registration, status)
