"""What a remote source holds: its video files with size and modification time.

The same rules as the local landing folder: video extensions only, nothing hidden (no
component of the path below the source starting with ``.``), no empty files.
"""

import dataclasses
import datetime as dt
import posixpath

from vitcow_assets.remote.filesystems import connect_error
from vitcow_assets.remote.locations import Location
from vitcow_assets.footage.layout import VIDEO_EXTENSIONS


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    uri: str
    fs_path: str
    size: int
    mtime_ns: int

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]

    @property
    def name(self) -> str:
        return posixpath.basename(self.fs_path)


def _mtime_ns(info: dict) -> int:
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    return 0


def scan_remote(fs, location: Location) -> list[RemoteFile]:
    """Video files under ``location`` (recursively), or the one file it names; sorted.
    Raises ``ConnectError`` when the listing fails."""
    root = location.fs_path
    try:
        if hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()
        if location.scheme == "s3" or fs.isdir(root):
            found = fs.find(root, detail=True)
        else:
            found = {root: fs.info(root)}
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise connect_error(location, exc) from None
    files = []
    base = root.rstrip("/")
    for path, info in sorted(found.items()):
        if info.get("type", "file") != "file":
            continue
        relative = path[len(base):].lstrip("/") if path.startswith(base) else posixpath.basename(path)
        parts = relative.split("/") if relative else [posixpath.basename(path)]
        if any(p.startswith(".") for p in parts):
            continue
        if posixpath.splitext(path)[1].lower() not in VIDEO_EXTENSIONS:
            continue
        size = int(info.get("size") or 0)
        if size <= 0:
            continue
        files.append(RemoteFile(location.uri_of(path), path, size, _mtime_ns(info)))
    return files

