"""One folder of a landing source at a time: its files, its subfolders, its modification time.

What a look at a source (``footage.looking``) needs from each protocol, and what each gives:

| protocol | a folder's time | one listing | a file's signature |
|---|---|---|---|
| local | ``stat``, nanoseconds (changes when an entry is added, removed or renamed) | ``scandir`` (plus a ``stat`` per file) | size, mtime in ns |
| SFTP | ``stat``, whole seconds (the same rule, on the server) | ``readdir`` with attributes, one round trip per ~100 entries | size, mtime in s |
| S3 | none (a prefix is not an object) | ``ListObjectsV2`` with ``/`` as delimiter, 1,000 keys a request | size, ``LastModified`` |

The same rules as ``footage.listing`` decide what counts: video files (and, locally, prompt
files), nothing hidden, nothing empty; locally only regular readable files, links that stay
inside the source, links to folders not followed. Each lister counts its listings and
folder ``stat`` calls (what a tick costs a farm's server).

No Dagster; the settle rule and the intake state are not this module's business.
"""

import dataclasses
import os
import posixpath
import stat
from pathlib import Path

from vitcow_assets.core.prompts import PROMPT_SUFFIXES
from vitcow_assets.footage.layout import VIDEO_EXTENSIONS
from vitcow_assets.footage.listing import SourceFile, info_mtime_ns, local_file
from vitcow_assets.remote.filesystems import connect_error
from vitcow_assets.remote.locations import Location


@dataclasses.dataclass
class Listing:
    """One folder's content: video files, prompt files, and subfolders with their
    modification time (ns; None where the listing does not say)."""

    videos: list[SourceFile] = dataclasses.field(default_factory=list)
    prompts: list[SourceFile] = dataclasses.field(default_factory=list)
    folders: dict[str, int | None] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Calls:
    listings: int = 0
    folder_stats: int = 0
    file_stats: int = 0


def _kind(name: str, prompts: bool) -> str | None:
    if name.startswith("."):
        return None
    if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    if prompts and name.endswith(PROMPT_SUFFIXES):
        return "prompts"
    return None


class LocalFolders:
    """A local source folder; ``root`` is its absolute path."""

    has_folder_times = True
    is_remote = False

    def __init__(self, location: Location, source: str | None, prompts: bool = True) -> None:
        self.root = os.path.normpath(Path(location.path).absolute())
        self.real_root = Path(self.root).resolve()
        self.source, self.prompts, self.calls = source, prompts, Calls()

    def root_exists(self) -> bool:
        return Path(self.root).is_dir()

    def folder_time(self, path: str) -> int:
        """``FileNotFoundError`` when the folder is gone."""
        self.calls.folder_stats += 1
        info = os.stat(path, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            raise FileNotFoundError(path)
        return info.st_mtime_ns

    def list_folder(self, path: str) -> Listing:
        self.calls.listings += 1
        listing = Listing()
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except FileNotFoundError:
            raise
        except OSError:  # unreadable: nothing in it can be taken
            return listing
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    listing.folders[entry.path] = entry.stat(follow_symlinks=False).st_mtime_ns
                    continue
            except OSError:
                continue
            kind = _kind(entry.name, self.prompts)
            file = self._file(entry) if kind else None
            if file is not None:
                (listing.videos if kind == "video" else listing.prompts).append(file)
        return listing

    def _file(self, entry: os.DirEntry) -> SourceFile | None:
        """A regular, readable, non-empty file; a link only when it leads to one inside the
        source (folders below the root are never links: links to folders are not followed)."""
        try:
            if entry.is_symlink():
                if self.real_root not in Path(entry.path).resolve(strict=True).parents:
                    return None  # a link leading outside the source, or nowhere
                return local_file(entry.path, self.source)
            info = entry.stat(follow_symlinks=False)
        except (OSError, RuntimeError):
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_size <= 0 or not os.access(entry.path, os.R_OK):
            return None
        return SourceFile(entry.path, entry.path, info.st_size, info.st_mtime_ns, self.source)

    def signature(self, file: SourceFile) -> list[int] | None:
        """The file's signature now; None when it is gone or no longer a file to take."""
        self.calls.file_stats += 1
        now = local_file(file.fs_path, self.source)
        return now.signature if now is not None else None

    def close(self) -> None:
        pass


class RemoteFolders:
    """An SFTP folder or S3 prefix, through the source's fsspec file system (``conn.fs``).
    Failures other than a missing folder are ``ConnectError`` (one line)."""

    is_remote = True

    def __init__(self, conn, source: str | None) -> None:
        self.conn, self.location, self.source = conn, conn.location, source
        self.root = self.location.fs_path.rstrip("/") or "/"
        self.has_folder_times = self.location.scheme == "sftp"
        self.calls = Calls()

    def _call(self, what, *args, **kwargs):
        try:
            return what(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise connect_error(self.location, exc) from None

    def root_exists(self) -> bool:
        if self.location.scheme == "s3":
            return True  # an empty prefix lists as empty
        try:
            return self._call(self.conn.fs.info, self.root).get("type") == "directory"
        except FileNotFoundError:
            return False

    def folder_time(self, path: str) -> int | None:
        self.calls.folder_stats += 1
        info = self._call(self.conn.fs.info, path)
        if info.get("type") != "directory":
            raise FileNotFoundError(path)
        return info_mtime_ns(info) or None

    def list_folder(self, path: str) -> Listing:
        self.calls.listings += 1
        kwargs = {"refresh": True} if self.location.scheme == "s3" else {}
        try:
            entries = self._call(self.conn.fs.ls, path, detail=True, **kwargs)
        except FileNotFoundError:
            if self.location.scheme == "s3":
                return Listing()
            raise
        listing = Listing()
        for info in sorted(entries, key=lambda i: i["name"]):
            name = posixpath.basename(info["name"].rstrip("/"))
            if name.startswith(".") or info["name"].rstrip("/") == path.rstrip("/"):
                continue
            if info.get("type") == "directory":
                listing.folders[info["name"].rstrip("/")] = (info_mtime_ns(info) or None) if self.has_folder_times else None
            elif info.get("type", "file") == "file" and _kind(name, False) == "video" and int(info.get("size") or 0) > 0:
                fs_path = info["name"]
                listing.videos.append(SourceFile(self.location.uri_of(fs_path), fs_path, int(info["size"]), info_mtime_ns(info), self.source))
        return listing

    def signature(self, file: SourceFile) -> list[int] | None:
        self.calls.file_stats += 1
        try:
            info = self._call(self.conn.fs.info, file.fs_path)
        except FileNotFoundError:
            return None
        if info.get("type", "file") != "file" or int(info.get("size") or 0) <= 0:
            return None
        return [int(info["size"]), info_mtime_ns(info)]

    def close(self) -> None:
        self.conn.close()
