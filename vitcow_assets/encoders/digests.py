"""The sha256 of large files that seldom change (checkpoints), computed once per version of a
file and remembered in a small JSON file per path, so that each step process and each
``vitcow eval`` command does not read a gigabyte checkpoint again.

A version of a file is its real path, size and modification time (ns): a file copied over
or renamed into place is another version and is hashed again. A file that changes while it
is read is not remembered. Entries are written atomically (``media.files``).
"""

import hashlib
import json
import os
from pathlib import Path

from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file

_MEMO: dict[tuple, str] = {}


def file_version(path: str | os.PathLike) -> tuple[str, int, int]:
    """``(real path, size, mtime_ns)`` of ``path``."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return real, stat.st_size, stat.st_mtime_ns


def cached_sha256(path: str | os.PathLike, cache_dir: str | os.PathLike) -> str:
    """The sha256 of ``path``'s bytes: remembered in this process, else in ``cache_dir`` for
    the same version of the file, else read now and remembered."""
    version = file_version(path)
    if version in _MEMO:
        return _MEMO[version]
    entry = Path(cache_dir) / (hashlib.sha256(version[0].encode()).hexdigest()[:24] + ".json")
    digest = _read_entry(entry, version)
    if digest is None:
        digest = sha256_file(version[0])
        if file_version(path) == version:
            with atomic_file(entry) as tmp:
                tmp.write_text(json.dumps(dict(zip(("path", "size", "mtime_ns"), version), sha256=digest), indent=1))
    _MEMO[version] = digest
    return digest


def _read_entry(entry: Path, version: tuple) -> str | None:
    try:
        record = json.loads(entry.read_text())
    except (OSError, ValueError):
        return None
    return record.get("sha256") if [record.get(k) for k in ("path", "size", "mtime_ns")] == list(version) else None
