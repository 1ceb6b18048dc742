"""``vitcow run`` arguments that are URLs: one remote file, or (ending in ``/``) every video
under a remote folder, recursively, taken once settled (unchanged across two looks a
second apart and last modified ``settle_seconds`` ago)."""

import dataclasses
import posixpath
import time

from vitcow_assets.footage.listing import is_settled
from vitcow_assets.footage.registry import RegisterOutcome
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.footage.intake import stage_remote
from vitcow_assets.footage.remote_listing import RemoteFile, scan_remote
from vitcow_assets.remote.locations import Location, LocationError
from vitcow_assets.remote.transfer import Connection
from vitcow_assets.footage.layout import StorageRoot


@dataclasses.dataclass
class RemoteInput:
    uri: str
    location: Location | None = None
    file: RemoteFile | None = None
    #: one line when the file cannot be taken (unreachable, refused, missing, still growing)
    error: str | None = None
    #: under a folder URL and still arriving: not taken this time, not a failure
    waiting: bool = False

    @property
    def name(self) -> str:
        return posixpath.basename(self.uri.rstrip("/")) or self.uri

    def stage(self, root: StorageRoot, on_retry=None) -> RegisterOutcome:
        if self.error:
            raise RemoteError(self.error)
        with Connection(self.location) as conn:
            return stage_remote(root, conn, self.file, None, on_retry=on_retry)


def expand_url(url: str, settle_seconds: float, watch_seconds: float = 1.0) -> list[RemoteInput]:
    folder = url.endswith("/")
    try:
        location = Location.parse(url)
    except LocationError as exc:
        return [RemoteInput(url, error=str(exc))]
    try:
        with Connection(location) as conn:
            first = scan_remote(conn.fs, location)
            if folder and not first:
                return [RemoteInput(url, location, error=f"{location.uri}: no video files under it")]
            if not folder and not first:
                return [RemoteInput(url, location, error=f"{location.uri}: no such video file on the server")]
            now = time.time()
            recent = [f for f in first if now - f.mtime_ns / 1e9 < max(settle_seconds, watch_seconds + 2)]
            second = first
            if recent:
                time.sleep(watch_seconds)
                second = scan_remote(conn.fs, location)
    except RemoteError as exc:
        return [RemoteInput(url, location, error=str(exc))]
    later = {f.uri: f for f in second}
    now = time.time()
    inputs = []
    for file in first:
        again = later.get(file.uri)
        if again is not None and is_settled(again, file.signature, now, settle_seconds):
            inputs.append(RemoteInput(file.uri, location, file))
        else:
            message = f"{file.name}: still being written; run again once the upload has finished"
            inputs.append(RemoteInput(file.uri, location, file, error=message, waiting=folder))
    return inputs
