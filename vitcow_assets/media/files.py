"""Atomic file and folder writes.

Every output is written under a temporary name in its final folder and renamed into place
only once complete, so a crash never leaves a file that looks finished but is not.
Temporary names start with ``.tmp-`` and name their owner: ``.tmp-<host>-<pid>-<random>-<name>``
(host: a short tag of the host name). The next write of the same output removes those an
interrupted write left behind, but only those whose owner process is gone: a concurrent run
writing the same output keeps its working files.
"""

import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from vitcow_assets.runtime.processes import host_tag, pid_alive

TEMP_PREFIX = ".tmp-"

#: a temporary of another host is swept only when it has not changed for this long
FOREIGN_TEMP_MAX_AGE_S = 24 * 3600


def _temp_sibling(path: Path, temp_dir: Path | None = None) -> Path:
    return (temp_dir or path.parent) / f"{TEMP_PREFIX}{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:6]}-{path.name}"


def _temp_is_orphaned(temp: Path, name: str) -> bool:
    """True for a temporary of ``name`` whose writer is gone (a crash, ``kill -9``)."""
    match = re.fullmatch(rf"{re.escape(TEMP_PREFIX)}(?:([0-9a-f]{{6}})-(\d+)-)?[0-9a-f]{{6,8}}-{re.escape(name)}", temp.name)
    if match is None:
        return False
    host, pid = match.groups()
    if host is None:
        return True  # the older name without an owner: from before owners were recorded
    try:
        modified = temp.lstat().st_mtime
    except OSError:
        return False
    if host != host_tag():
        return time.time() - modified > FOREIGN_TEMP_MAX_AGE_S
    return not pid_alive(int(pid), started_by=modified)


def _temporaries_of(path: Path, folder: Path) -> list[Path]:
    """Names ``.tmp-*-<name>`` in ``folder`` (what ``glob`` would find, without its cost)."""
    suffix = f"-{path.name}"
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if e.name.startswith(TEMP_PREFIX) and e.name.endswith(suffix)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _sweep_stale(path: Path, temp_dir: Path | None = None) -> None:
    """Remove temporaries of earlier, interrupted writes of ``path``; never a live writer's."""
    for stale in _temporaries_of(path, temp_dir or path.parent):
        if not _temp_is_orphaned(stale, path.name):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _temp_for(path: Path, temp_dir: Path | None = None) -> Path:
    """A fresh temporary name beside ``path`` (or in ``temp_dir``; folders made, stale
    temporaries swept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
    _sweep_stale(path, temp_dir)
    return _temp_sibling(path, temp_dir)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, temp_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    ``temp_dir`` (a folder on the same file system) holds the temporary instead: in a folder
    of many thousand files (the registry), sweeping stale temporaries beside ``path`` would
    list them all at every write."""
    path = Path(path)
    tmp = _temp_for(path, Path(temp_dir) if temp_dir is not None else None)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``path`` (old contents removed)."""
    path = Path(path)
    tmp = _temp_for(path)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = _temp_sibling(path)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
