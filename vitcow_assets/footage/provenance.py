"""Where a registered video came from: its farm, camera and recording start (from its
path, ``core.source_paths``), the URI it was taken from, and its place in a backlog."""

import datetime as dt
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vitcow_assets.core.source_paths import source_fields
from vitcow_assets.footage.registry import Registration
from vitcow_assets.remote.locations import is_url


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


def backlog_seconds(registration: Registration, patterns) -> float:
    """Where a registered video stands in a backlog taken oldest first: when it was recorded
    (its path's time read as UTC, as the intake state orders files), else when it was
    registered."""
    fields = source_fields(uri_path(registration.source_path), patterns, registration.source_name)
    when = fields.recorded_at.replace(tzinfo=dt.timezone.utc) if fields.recorded_at else dt.datetime.fromisoformat(registration.registered_at)
    return when.timestamp()
