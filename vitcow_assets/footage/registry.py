"""The registry of source videos: one JSON file per partition key under ``<home>/registry``.

Registering decides a file's partition key: the same path keeps its key (changed bytes are
new footage for the same partition); the same bytes under another name are a duplicate of
the partition that already has them; a new name whose key is taken by other bytes gets the
key with a short hash of its content appended.

Two indexes make that decision without reading every record (a year of footage is about
100,000 of them): ``index/path/<hh>/<sha256 of the path>`` and ``index/sha256/<hh>/<sha256>``
each hold a partition key. They are written before the record, and a key read from them
counts only when its record says the same, so an index entry left by a crash never
misleads; a registry written before the indexes existed gets them once, on first use.
Temporaries go to ``registry/.tmp``, so that no write lists the folder of records.
"""

import dataclasses
import datetime as dt
import hashlib
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


INDEX = "index"
#: written once every record is in the indexes
INDEX_COMPLETE = "complete"


class Registry:
    def __init__(self, storage: StorageRoot) -> None:
        self.folder = storage.registry
        self.index = self.folder / INDEX
        self.temp = self.folder / ".tmp"

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

    # -- the indexes --------------------------------------------------------------------

    def _entry(self, kind: str, digest: str) -> Path:
        return self.index / kind / digest[:2] / digest

    def _indexed(self, kind: str, digest: str) -> Registration | None:
        try:
            key = self._entry(kind, digest).read_text().strip()
            return self.get(key)
        except (FileNotFoundError, ValueError):
            return None

    def _write_entry(self, kind: str, digest: str, key: str) -> None:
        with atomic_file(self._entry(kind, digest), temp_dir=self.temp) as tmp:
            tmp.write_text(key)

    def _index(self, registration: Registration, keep_sha256: bool) -> None:
        self._write_entry("path", _digest(registration.source_path), registration.key)
        if not keep_sha256:
            self._write_entry("sha256", registration.sha256, registration.key)

    def _ensure_index(self) -> None:
        """Index a registry written before the indexes (once): the first record of each
        sha256 in key order, as registering found it."""
        if (self.index / INDEX_COMPLETE).exists():
            return
        seen: set[str] = set()
        for registration in self.all():
            self._index(registration, keep_sha256=registration.sha256 in seen)
            seen.add(registration.sha256)
        self.index.mkdir(parents=True, exist_ok=True)
        (self.index / INDEX_COMPLETE).touch()

    def by_source(self, source_path: str) -> Registration | None:
        """The registration of ``source_path`` (an absolute path or a URI), if any."""
        self._ensure_index()
        found = self._indexed("path", _digest(source_path))
        return found if found is not None and found.source_path == source_path else None

    def by_sha256(self, sha256: str) -> Registration | None:
        """A registration holding these bytes now, if any."""
        self._ensure_index()
        found = self._indexed("sha256", sha256)
        return found if found is not None and found.sha256 == sha256 else None

    # -- registering --------------------------------------------------------------------

    def _save(self, registration: Registration) -> None:
        with atomic_file(self._path(registration.key), temp_dir=self.temp) as tmp:
            tmp.write_text(json.dumps(registration.as_dict(), indent=2))

    def register(self, source: str | os.PathLike, sha256: str, size: int | None = None, source_name: str | None = None) -> RegisterOutcome:
        """Register a local file, or a remote one by its URI (``sftp://``, ``s3://``, with
        ``size``)."""
        remote = is_url(str(source))
        source_path = str(source) if remote else str(Path(source).absolute())
        if size is None:
            size = Path(source_path).stat().st_size
        by_path = self.by_source(source_path)
        if by_path is not None and by_path.sha256 == sha256:
            return RegisterOutcome(by_path, "unchanged")
        same_bytes = self.by_sha256(sha256)
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
        self._index(registration, keep_sha256=same_bytes is not None)  # before the record: see above
        self._save(registration)
        return RegisterOutcome(registration, status)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
