"""What ``vitcow run``'s PATH arguments name: a local file, a local folder, a remote file
(``sftp://``, ``s3://``) or a remote folder (a URL ending in ``/``).

Every path spelling is taken the same way: relative paths from the working directory,
``..`` resolved. A folder means every video under it, recursively, in sorted order. Whether
a file has finished arriving is the platform's one rule (``core.settle``, the same as the
landing sensor's): a file named explicitly is waited for (one line says so) until it has
arrived or ``timeout_s`` passes; under a folder, files still arriving are reported as
waiting and left for the next run, as the sensor would.
"""

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from vitcow_assets.footage.intake import register_local, stage_remote, wait_for_arrival
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.listing import SourceFile, list_local, list_remote, local_file
from vitcow_assets.footage.registry import RegisterOutcome
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.remote.locations import Location, LocationError, is_url
from vitcow_assets.remote.transfer import Connection


@dataclasses.dataclass
class Input:
    """One video to process, or one line saying why a PATH gives none."""

    shown: str
    file: SourceFile | None = None
    location: Location | None = None
    #: one line when the input cannot be taken (missing, unreachable, still arriving)
    error: str | None = None
    #: under a folder and still arriving: not taken this time, not a failure
    waiting: bool = False

    @property
    def name(self) -> str:
        return self.file.name if self.file is not None else os.path.basename(self.shown.rstrip("/")) or self.shown

    def take(self, root: StorageRoot, on_retry=None) -> RegisterOutcome:
        """Register the file (a remote one is downloaded first, hashed while copying)."""
        if self.error:
            raise ValueError(self.error)
        if self.file.is_local:
            return register_local(root, self.file)
        with Connection(self.location) as conn:
            return stage_remote(root, conn, self.file, on_retry=on_retry)


def normalise(path: str) -> Path:
    """A local path as every command takes it: absolute, ``..`` resolved (links kept)."""
    return Path(os.path.normpath(Path(path).expanduser().absolute()))


def _settled(list_files, shown_of, folder: bool, settle_s: float, timeout_s: float, on_wait, location=None) -> list[Input]:
    def tell(waiting: list[SourceFile]) -> None:
        if on_wait is not None and not folder:
            on_wait(f"waiting: {', '.join(shown_of(f) for f in waiting)} still arriving (unchanged for {settle_s:g} s needed; up to {timeout_s:g} s)")

    arrived, waiting = wait_for_arrival(list_files, settle_s, 0 if folder else timeout_s, tell)
    inputs = [Input(shown_of(f), f, location) for f in arrived]
    for f in waiting:
        message = f"{shown_of(f)}: still arriving" + ("" if folder else f" after {timeout_s:g} s; run again once it has finished")
        inputs.append(Input(shown_of(f), f, location, error=message, waiting=folder))
    return sorted(inputs, key=lambda i: i.shown)


def _local(path: str, settle_s: float, timeout_s: float, on_wait) -> list[Input]:
    target = normalise(path)
    if target.is_dir():
        if not list_local(target):
            return [Input(str(target), error=f"{path}: no video files under it")]
        return _settled(lambda: list_local(target), lambda f: f.uri, True, settle_s, timeout_s, on_wait)
    if not target.exists():
        return [Input(str(target), error=f"{path}: no such file")]
    if local_file(target, allow_empty=True) is None:
        return [Input(str(target), error=f"{path}: not a readable file")]
    return _settled(lambda: [f for f in [local_file(target, allow_empty=True)] if f is not None], lambda f: f.uri, False, settle_s, timeout_s, on_wait)


def _remote(url: str, settle_s: float, timeout_s: float, on_wait) -> list[Input]:
    folder = url.endswith("/")
    try:
        location = Location.parse(url)
    except LocationError as exc:
        return [Input(url, error=str(exc))]
    try:
        with Connection(location) as conn:
            if not list_remote(conn.fs, location):
                what = "no video files under it" if folder else "no such video file on the server"
                return [Input(location.uri, location=location, error=f"{location.uri}: {what}")]
            return _settled(lambda: list_remote(conn.fs, location), lambda f: f.uri, folder, settle_s, timeout_s, on_wait, location)
    except RemoteError as exc:
        return [Input(location.uri, location=location, error=str(exc))]


def expand(paths: list[str], settle_s: float, timeout_s: float, on_wait: Callable[[str], None] | None = None) -> list[Input]:
    """The inputs every PATH names, in the order given (a folder's files sorted)."""
    inputs: list[Input] = []
    for path in paths:
        inputs += _remote(path, settle_s, timeout_s, on_wait) if is_url(path) else _local(path, settle_s, timeout_s, on_wait)
    return inputs
