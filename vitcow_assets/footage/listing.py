"""The landing folder: which files are videos, which have finished arriving.

Shared by the sensor and the nightly schedule; no Dagster here.
"""

import dataclasses
import os
import stat
from pathlib import Path

from vitcow_assets.core.prompts import PROMPT_SUFFIXES
from vitcow_assets.footage.layout import VIDEO_EXTENSIONS


@dataclasses.dataclass(frozen=True)
class LandedFile:
    path: str
    size: int
    mtime_ns: int

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]


def scan_landing(folder: str | os.PathLike, prompt_files: bool = False) -> list[LandedFile]:
    """Video files (or, with ``prompt_files``, prompt files) under ``folder``, recursively,
    sorted by path.

    Hidden files (``.name``, as rsync and browsers use while copying), other extensions,
    empty files, anything but regular files, links that lead outside the folder or nowhere
    (a loop), and entries this process may not read are left out: one odd entry never stops
    the scan. Links to folders are not followed.
    """
    root = Path(folder).absolute()
    if not root.is_dir():
        return []
    real_root = root.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda error: None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            wanted = name.endswith(PROMPT_SUFFIXES) if prompt_files else path.suffix.lower() in VIDEO_EXTENSIONS
            if name.startswith(".") or not wanted:
                continue
            try:
                if real_root not in path.resolve(strict=True).parents:
                    continue
                info = path.stat()
            except (OSError, RuntimeError):  # a dangling link, a link loop, a vanished file
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size > 0 and os.access(path, os.R_OK):
                found.append(LandedFile(str(path), info.st_size, info.st_mtime_ns))
    return found


def is_settled(file: LandedFile, previous_signature: list[int] | None, now_s: float, settle_seconds: float) -> bool:
    """A file has finished arriving when it looked the same at the previous look (if one is
    required, ``previous_signature`` is given) and was last modified ``settle_seconds`` ago.
    Any file with ``signature`` and ``mtime_ns`` will do (local ``LandedFile``, ``RemoteFile``)."""
    quiet = now_s - file.mtime_ns / 1e9 >= settle_seconds
    return quiet and (previous_signature is None or list(previous_signature) == file.signature)
