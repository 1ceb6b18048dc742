"""``raw_video`` for a remote source: the staged copy linked into place, else a fresh
streamed download (hashed while copying, resumed after drops) checked against the sha256
the file was registered with. Nothing partial is ever renamed into place."""

import os
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vitcow_assets.media.files import atomic_file
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.media.video import probe_video
from vitcow_assets.footage.registry import Registration
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.footage.intake import staged_path
from vitcow_assets.core.source_paths import source_fields
from vitcow_assets.remote.locations import Location, is_url
from vitcow_assets.remote.transfer import Connection, download
from vitcow_assets.footage.ingest import RawVideo, write_record
from vitcow_assets.footage.layout import StorageRoot, VideoLayout


def uri_path(uri: str) -> str:
    """The path part of a URI (S3: ``bucket/key``), unquoted; a local path as it is."""
    parts = urlsplit(uri)
    if not parts.scheme:
        return uri
    return unquote(parts.path) if parts.scheme != "s3" else f"{parts.netloc}/{unquote(parts.path).lstrip('/')}"


def source_provenance(source_path: str, source_name: str | None, patterns) -> dict:
    """``farm``, ``camera``, ``recorded_at`` (ISO text or None) and ``source_uri`` of a
    registered source (a URI, or a local path given a ``file://`` URI)."""
    fields = source_fields(uri_path(source_path), patterns, source_name)
    uri = source_path if is_url(source_path) else Path(source_path).absolute().as_uri()
    return {**fields.as_dict(), "source_uri": uri}


def source_tags(registration: Registration, patterns) -> dict[str, str]:
    """Run tags ``vitcow/farm`` and ``vitcow/camera`` of a registration (where known)."""
    prov = source_provenance(registration.source_path, registration.source_name, patterns)
    return {f"vitcow/{k}": prov[k] for k in ("farm", "camera") if prov[k]}


def ingest_remote(registration: Registration, root: StorageRoot, layout: VideoLayout, provenance: dict | None = None, on_retry=None) -> RawVideo:
    location = Location.parse(registration.source_path)
    suffix = posixpath.splitext(location.path)[1].lower()
    staged = staged_path(root, registration.sha256, suffix)
    layout.root.mkdir(parents=True, exist_ok=True)
    stored = layout.source_copy(suffix)
    how = "staged"
    try:
        with atomic_file(stored) as tmp:
            os.link(staged, tmp)
            if sha256_file(tmp) != registration.sha256:
                raise RemoteError(f"{staged}: staged copy does not match its registration")
            probe_video(tmp)  # a non-video fails here, before anything is renamed into place
    except OSError:  # no staged copy (or not linkable, or damaged): fetch again
        how = "download"
        with Connection(location) as conn:
            download(
                conn, location.fs_path, stored, expect_sha256=registration.sha256, check=lambda p: probe_video(p), on_retry=on_retry
            )
    Path(staged).unlink(missing_ok=True)
    return write_record(layout, registration.key, registration.source_path, stored, how, registration.sha256, provenance)
