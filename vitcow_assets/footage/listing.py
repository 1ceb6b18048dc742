"""What a source holds: its video files (or, locally, prompt files), one file type for all.

A source is a local folder, an SFTP folder or an S3 prefix (``remote.locations``). The same
rules everywhere: video extensions only, nothing hidden (no component of the path below the
source starting with ``.``, as rsync and browsers name files while copying them), no empty
files. Locally also: only regular files this process may read, no links that lead outside
the folder or nowhere, links to folders not followed; one odd entry never stops a listing.

Whether a listed file has finished arriving is ``core.settle``'s rule, not this module's.
"""

import dataclasses
import datetime as dt
import os
import posixpath
import stat
from pathlib import Path

from vitcow_assets.core.prompts import PROMPT_SUFFIXES
from vitcow_assets.footage.layout import VIDEO_EXTENSIONS
from vitcow_assets.remote.filesystems import connect_error
from vitcow_assets.remote.locations import Location


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One listed file. ``uri``: its absolute path (local) or URL (remote), which is what the
    registry and the settle cursor know it by; ``fs_path``: the path its file system uses."""

    uri: str
    fs_path: str
    size: int
    mtime_ns: int
    #: the landing source it was found in (``VITCOW_LANDING=name=URL``), if any
    source: str | None = None

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]

    @property
    def name(self) -> str:
        return posixpath.basename(self.fs_path)

    @property
    def is_local(self) -> bool:
        return not self.uri.startswith(("sftp://", "s3://"))


def _wanted(name: str, prompt_files: bool) -> bool:
    if name.startswith("."):
        return False
    return name.endswith(PROMPT_SUFFIXES) if prompt_files else Path(name).suffix.lower() in VIDEO_EXTENSIONS


def local_file(path: str | os.PathLike, source: str | None = None, allow_empty: bool = False) -> SourceFile | None:
    """A readable, non-empty (or, with ``allow_empty``, any) regular file as a
    ``SourceFile``; None for anything else."""
    path = Path(os.path.normpath(Path(path).absolute()))
    try:
        info = path.stat()
    except (OSError, RuntimeError):  # a dangling link, a link loop, a vanished file
        return None
    if not stat.S_ISREG(info.st_mode) or (info.st_size <= 0 and not allow_empty) or not os.access(path, os.R_OK):
        return None
    return SourceFile(str(path), str(path), info.st_size, info.st_mtime_ns, source)


def list_local(folder: str | os.PathLike, source: str | None = None, prompt_files: bool = False) -> list[SourceFile]:
    """Video files (or prompt files) under ``folder``, recursively, sorted by path."""
    root = Path(folder).absolute()
    if not root.is_dir():
        return []
    real_root = root.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda error: None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not _wanted(name, prompt_files):
                continue
            try:
                if real_root not in path.resolve(strict=True).parents:
                    continue
            except (OSError, RuntimeError):
                continue
            file = local_file(path, source)
            if file is not None:
                found.append(file)
    return found


def info_mtime_ns(info: dict) -> int:
    """The modification time (ns) in an fsspec ``info`` dict (SFTP ``mtime``, S3 ``LastModified``); 0 when absent."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    return 0


def _remote_entries(fs, location: Location) -> dict:
    root = location.fs_path
    try:
        if hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()
        if location.scheme == "s3" or fs.isdir(root):
            return fs.find(root, detail=True)
        return {root: fs.info(root)}
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise connect_error(location, exc) from None


def list_remote(fs, location: Location, source: str | None = None) -> list[SourceFile]:
    """Video files under ``location`` (recursively), or the one file it names; sorted.
    Raises ``ConnectError`` when the listing fails."""
    base = location.fs_path.rstrip("/")
    files = []
    for path, info in sorted(_remote_entries(fs, location).items()):
        if info.get("type", "file") != "file":
            continue
        relative = path[len(base):].lstrip("/") if path.startswith(base) else posixpath.basename(path)
        parts = relative.split("/") if relative else [posixpath.basename(path)]
        if any(p.startswith(".") for p in parts) or not _wanted(posixpath.basename(path), False):
            continue
        size = int(info.get("size") or 0)
        if size > 0:
            files.append(SourceFile(location.uri_of(path), path, size, info_mtime_ns(info), source))
    return files
