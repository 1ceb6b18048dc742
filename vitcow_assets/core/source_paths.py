"""Farm, camera and recording start parsed from where a video came from.

A *path pattern* is a template matched against the end of a source path (a local path or
the path part of a URL), without the file's extension:

``{farm}/{camera}/{recorded_at:%Y%m%d%H%M}_{camera}`` matches ``.../FARM_A/D01/202502052200_D01.mp4``.

Placeholders: ``{farm}``, ``{camera}`` (one path component; a repeat must be equal to the
first), ``{recorded_at:FORMAT}`` (a ``strptime`` format of digits: ``%Y %m %d %H %M %S``)
and ``*`` (any text within one component). Everything else is literal. Patterns are tried
in order; the first that matches and whose time parses wins.

Pure: strings in, a dataclass out; no file or network access.
"""

import dataclasses
import datetime as dt
import posixpath
import re
from collections.abc import Sequence

PATTERNS_ENV = "VITCOW_PATH_PATTERNS"

#: the farm-server layout, then the time-of-day name pattern of the clips settings
DEFAULT_PATTERNS: tuple[str, ...] = (
    "{farm}/{camera}/{recorded_at:%Y%m%d%H%M}_{camera}",
    "*{recorded_at:%Y%m%d%H%M}_{camera}",
    "*{recorded_at:%Y%m%d%H%M}*",
)

_FORMAT_DIGITS = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
_TOKEN = re.compile(r"\{(farm|camera|recorded_at)(?::([^}]*))?\}|\*")


@dataclasses.dataclass(frozen=True)
class SourceFields:
    """Where a video came from, as far as its path tells."""

    farm: str | None = None
    camera: str | None = None
    recorded_at: dt.datetime | None = None

    def as_dict(self) -> dict:
        return {
            "farm": self.farm,
            "camera": self.camera,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "SourceFields":
        at = data.get("recorded_at")
        return cls(data.get("farm"), data.get("camera"), dt.datetime.fromisoformat(at) if at else None)


def _format_regex(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        two = fmt[i : i + 2]
        if two in _FORMAT_DIGITS:
            out.append(rf"\d{{{_FORMAT_DIGITS[two]}}}")
            i += 2
        elif fmt[i] == "%":
            raise ValueError(f"recorded_at format {fmt!r}: only {' '.join(_FORMAT_DIGITS)} are supported")
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class PathPattern:
    template: str
    regex: re.Pattern
    time_format: str | None

    @classmethod
    def compile(cls, template: str) -> "PathPattern":
        parts, seen, time_format, pos = [], set(), None, 0
        for m in _TOKEN.finditer(template):
            parts.append(re.escape(template[pos : m.start()]))
            pos = m.end()
            if m.group(0) == "*":
                parts.append(r"[^/]*?")
                continue
            name, fmt = m.group(1), m.group(2)
            if name == "recorded_at":
                fmt = fmt or "%Y%m%d%H%M"
                if time_format is not None and fmt != time_format:
                    raise ValueError(f"path pattern {template!r}: two recorded_at formats")
                time_format = fmt
                body = _format_regex(fmt)
            elif fmt:
                raise ValueError(f"path pattern {template!r}: {{{name}}} takes no format")
            else:
                body = r"[^/]+?"
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{body})")
            seen.add(name)
        parts.append(re.escape(template[pos:]))
        if not seen:
            raise ValueError(f"path pattern {template!r} names none of {{farm}}, {{camera}}, {{recorded_at}}")
        return cls(template, re.compile(r"(?:^|/)" + "".join(parts) + r"$"), time_format)

    def match(self, path_without_ext: str) -> SourceFields | None:
        m = self.regex.search(path_without_ext)
        if m is None:
            return None
        groups = m.groupdict()
        recorded_at = None
        if groups.get("recorded_at"):
            try:
                recorded_at = dt.datetime.strptime(groups["recorded_at"], self.time_format)
            except ValueError:
                return None
        return SourceFields(groups.get("farm") or None, groups.get("camera") or None, recorded_at)


def parse_patterns(text: str | None) -> tuple[PathPattern, ...]:
    """Patterns from ``VITCOW_PATH_PATTERNS`` (templates separated by ``;``), else the defaults."""
    templates = [t.strip() for t in (text or "").split(";") if t.strip()] or list(DEFAULT_PATTERNS)
    return tuple(PathPattern.compile(t) for t in templates)


def source_fields(path: str, patterns: Sequence[PathPattern] | None = None, default_farm: str | None = None) -> SourceFields:
    """Farm, camera and recording start of the video at ``path`` (a path or the path of a
    URL); ``default_farm`` (e.g. the source's name) when no pattern names the farm."""
    stem = posixpath.splitext(path.replace("\\", "/"))[0]
    for pattern in patterns if patterns is not None else parse_patterns(None):
        fields = pattern.match(stem)
        if fields is not None:
            return dataclasses.replace(fields, farm=fields.farm or default_farm)
    return SourceFields(farm=default_farm)
