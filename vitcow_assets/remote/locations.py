"""Where footage lives: a local folder, ``sftp://user@host:port/path`` or ``s3://bucket/prefix``.

``VITCOW_LANDING`` holds one location, or several as ``name=URL`` separated by commas.
URLs never carry secrets: a password in a URL is refused (use ``VITCOW_SFTP_PASSWORD``).
Pure: no network access.
"""

import dataclasses
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

REMOTE_SCHEMES = ("sftp", "s3")
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$")


class LocationError(ValueError):
    """A location that cannot be used (one line)."""


def is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", str(text)))


@dataclasses.dataclass(frozen=True)
class Location:
    """A parsed location. ``path`` is the absolute path on the server (SFTP), the key
    prefix inside ``host`` = bucket (S3, no leading ``/``), or an absolute local path."""

    scheme: str  # "file", "sftp" or "s3"
    host: str = ""
    port: int | None = None
    user: str | None = None
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> "Location":
        text = str(text).strip()
        if not is_url(text):
            return cls("file", path=str(Path(text).expanduser().absolute()))
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return cls("file", path=str(Path(unquote(parts.path)).absolute()))
        if scheme not in REMOTE_SCHEMES:
            raise LocationError(f"{text}: unsupported scheme {scheme!r} (use a path, sftp:// or s3://)")
        if parts.password is not None:
            raise LocationError(f"{scheme}://{parts.hostname}: no passwords in URLs; set VITCOW_SFTP_PASSWORD or use a key")
        if not parts.hostname:
            raise LocationError(f"{text}: no {'bucket' if scheme == 's3' else 'host'}")
        path = unquote(parts.path)
        if scheme == "s3":
            return cls("s3", host=parts.netloc, path=path.lstrip("/"))
        try:
            port = parts.port
        except ValueError:
            raise LocationError(f"{text}: bad port") from None
        return cls("sftp", host=parts.hostname, port=port, user=unquote(parts.username) if parts.username else None, path=path or "/")

    @property
    def is_remote(self) -> bool:
        return self.scheme != "file"

    @property
    def server(self) -> str:
        """The server part of the URI (no secrets): ``sftp://user@host:port``, ``s3://bucket``."""
        if self.scheme == "sftp":
            user = f"{quote(self.user)}@" if self.user else ""
            port = f":{self.port}" if self.port else ""
            return f"sftp://{user}{self.host}{port}"
        if self.scheme == "s3":
            return f"s3://{self.host}"
        return "file://"

    @property
    def fs_path(self) -> str:
        """The path as the location's fsspec file system names it."""
        if self.scheme == "s3":
            return f"{self.host}/{self.path}".rstrip("/")
        return self.path

    def uri_of(self, fs_path: str) -> str:
        """URI of a path of this location's file system."""
        if self.scheme == "s3":
            return f"s3://{fs_path}"
        if self.scheme == "sftp":
            return self.server + quote(fs_path if fs_path.startswith("/") else "/" + fs_path)
        return Path(fs_path).as_uri()

    def child(self, *parts: str) -> "Location":
        """The location ``parts`` below this one. Each part must be one plain name (no
        ``/``, ``..``, ``.`` or empty), so a child can never leave this location."""
        for part in parts:
            if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
                raise LocationError(f"{part!r} is not a plain name: it could leave {self.uri}")
        joined = posixpath.join(self.path, *parts) if self.scheme != "file" else str(Path(self.path, *parts))
        return dataclasses.replace(self, path=joined)

    @property
    def uri(self) -> str:
        return self.uri_of(self.fs_path) if self.scheme != "file" else self.path

    def __str__(self) -> str:
        return self.uri


def is_local_folder(text: str) -> bool:
    """``VITCOW_LANDING`` names one local folder (the setting as it always was)."""
    return not is_url(text) and _NAME.match(text.strip()) is None


@dataclasses.dataclass(frozen=True)
class NamedSource:
    name: str
    location: Location
    #: given as ``name=URL`` (the name then stands for the farm where a path does not say)
    named: bool = False

    @property
    def farm_hint(self) -> str | None:
        return self.name if self.named else None


def parse_sources(text: str | None, default: str | os.PathLike) -> list[NamedSource]:
    """Landing sources from ``VITCOW_LANDING``: one location (named ``landing``), or
    ``name=URL,name=URL``; ``default`` (the local landing folder) when unset."""
    text = (text or "").strip()
    if not text:
        return [NamedSource("landing", Location.parse(str(default)))]
    items = [t.strip() for t in text.split(",") if t.strip()]
    named = [_NAME.match(t) for t in items]
    if len(items) == 1 and named[0] is None:
        return [NamedSource("landing", Location.parse(items[0]))]
    sources: list[NamedSource] = []
    for item, m in zip(items, named):
        if m is None:
            raise LocationError(f"VITCOW_LANDING: {item!r} has no name; write name=URL for each of several sources")
        if any(s.name == m.group(1) for s in sources):
            raise LocationError(f"VITCOW_LANDING: source name {m.group(1)!r} given twice")
        sources.append(NamedSource(m.group(1), Location.parse(m.group(2)), named=True))
    return sources
