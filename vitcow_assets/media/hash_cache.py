"""The sha256 of large files that seldom change (model checkpoints), computed once per file
version and remembered on disk, so that separate step processes do not each read 3.4 GB.

A model folder (transformers' ``config.json`` + ``model.safetensors`` + tokenizer files) has
one sha256 too: that of its files' names and sha256s (``cached_folder_sha256``).

A file version is its real path, size, modification time (ns) and inode: a new file at the
same path (copied over, or renamed into place) is another version and is hashed again. The
cache is one small JSON file per path in a folder (under the storage root), written
atomically; while one process hashes a file, others wanting the same file wait on a lock
file and then read its result. A file that changes while it is hashed is not remembered.
"""

import fcntl
import hashlib
import json
import os
import threading
from pathlib import Path

from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file

_MEMO: dict[tuple, str] = {}
_MEMO_LOCK = threading.Lock()


def file_version(path: str | os.PathLike) -> tuple[str, int, int, int]:
    """``(real path, size, mtime_ns, inode)`` of ``path`` (``OSError`` if it cannot be read)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return real, stat.st_size, stat.st_mtime_ns, stat.st_ino


def cached_sha256(path: str | os.PathLike, cache: str | os.PathLike) -> str:
    """The sha256 of ``path``'s bytes: this process's memory, else the cache folder's entry
    for the same file version, else read now (once for all processes) and remembered."""
    version = file_version(path)
    with _MEMO_LOCK:
        if version in _MEMO:
            return _MEMO[version]
    folder = Path(cache)
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / (hashlib.sha256(version[0].encode()).hexdigest()[:24] + ".json")
    digest = _read_entry(entry, version)
    if digest is None:
        with open(entry.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process hashes; the others wait, then read
            digest = _read_entry(entry, version)
            if digest is None:
                digest = sha256_file(version[0])
                if file_version(path) == version:
                    _write_entry(entry, version, digest)
    with _MEMO_LOCK:
        _MEMO[version] = digest
    return digest


def cached_folder_sha256(folder: str | os.PathLike, cache: str | os.PathLike) -> str:
    """The sha256 of a model folder: of one line ``<sha256>  <name>`` per regular file at its
    top level (hidden files left out), in name order, each file hashed as ``cached_sha256``."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    lines = "".join(f"{cached_sha256(p, cache)}  {p.name}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _read_entry(entry: Path, version: tuple) -> str | None:
    try:
        record = json.loads(entry.read_text())
    except (OSError, ValueError):
        return None
    same = [record.get(k) for k in ("path", "size", "mtime_ns", "inode")] == list(version)
    return record.get("sha256") if same else None


def _write_entry(entry: Path, version: tuple, digest: str) -> None:
    record = dict(zip(("path", "size", "mtime_ns", "inode"), version), sha256=digest)
    with atomic_file(entry) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
