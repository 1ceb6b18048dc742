"""Settings as frozen dataclasses: every setting is written once, as a field.

A settings class (``ClipSettings``, ``CropSettings``, ``MotionSettings``, ``Sam3Settings``,
the resources' own settings) declares each setting as a dataclass field with a default and
a one-line help text (``setting(default, "help")``). Everything else is derived from the
fields, so adding a setting means adding one field:

- the environment variable: ``VITCOW_<PREFIX>_<FIELD>`` upper-cased (``VITCOW_SAM3_MAX_OBJECTS``;
  ``VITCOW_<FIELD>`` without a prefix), unless the field names its own (``env=``);
- the command-line flag: ``--<prefix>-<field>`` with ``-`` for ``_`` (``--motion-min-contrast``),
  unless the field names its own (``flag=``), plus any ``aliases``;
- the Dagster config class (``defs.config``) and the recorded metadata (``record``).

Validation stays in the class's ``__post_init__``: it raises ``SettingError`` naming the
field, and ``build`` turns that into a message naming the variable or flag the value came
from. Values given as text (environment, command line) are parsed by the field's type:
``int``, ``float``, ``bool`` (1/0, true/false, yes/no, on/off), ``str``, ``X | None`` (empty:
None) and ``tuple[int, ...]`` / ``tuple[str, ...]`` (comma-separated).

Pure: no Dagster, no I/O; the environment is passed in as a mapping.
"""

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(ValueError):
    """A setting's value is refused; ``setting`` names the field."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def setting(default: Any, help: str, *, env: str | None = None, flag: str | None = None, aliases: tuple[str, ...] = (), choices: tuple = ()) -> Any:
    """A dataclass field for a setting (``default`` may be a tuple for sequence settings)."""
    metadata = {"help": help, "env": env, "flag": flag, "aliases": tuple(aliases), "choices": tuple(choices)}
    return dataclasses.field(default=default, metadata=metadata)


def check(name: str, ok: bool, message: str) -> None:
    """Raise ``SettingError(name, message)`` unless ``ok``: validation in ``__post_init__``."""
    if not ok:
        raise SettingError(name, message)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One field of a settings class, with what is derived from it."""

    name: str
    annotation: Any
    default: Any
    help: str
    env: str
    flag: str
    aliases: tuple[str, ...]
    choices: tuple

    @property
    def base_type(self) -> type:
        """``int`` for ``int | None``, ``tuple`` for ``tuple[int, ...]``."""
        return _base_type(self.annotation)

    @property
    def optional(self) -> bool:
        return type(None) in typing.get_args(self.annotation)


def _base_annotation(annotation):
    """``X`` of ``X | None``; the annotation itself otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _base_type(annotation) -> type:
    base = _base_annotation(annotation)
    return typing.get_origin(base) or base


def describe(cls: type, prefix: str = "") -> list[Setting]:
    """The settings of ``cls`` with their environment variable and flag (``prefix``: the
    settings' family, e.g. ``sam3``)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta:
            continue  # not a setting (derived or internal)
        stem = f"{prefix}_{f.name}" if prefix else f.name
        out.append(
            Setting(
                f.name, hints[f.name], f.default, meta["help"],
                meta.get("env") or f"VITCOW_{stem.upper()}",
                meta.get("flag") or f"--{stem.replace('_', '-')}",
                meta.get("aliases", ()), meta.get("choices", ()),
            )
        )
    return out


def parse_text(text: str, item: Setting) -> Any:
    """The value of ``text`` (from the environment or a flag) for ``item``; ``ValueError``."""
    raw = text.strip()
    kind = item.base_type
    if item.optional and raw == "":
        return None
    if kind is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(f"expected one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}, got {raw!r}")
        return raw.lower() in _TRUE
    if kind is tuple:
        element = (typing.get_args(_base_annotation(item.annotation)) or (int,))[0]
        return tuple(element(part.strip()) for part in raw.split(",") if part.strip())
    value = kind(raw)
    if item.choices and value not in item.choices:
        raise ValueError(f"expected one of {', '.join(map(str, item.choices))}, got {raw!r}")
    return value


def from_environ(cls: type, environ: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` set in ``environ`` (non-empty variables), parsed; a bad value is
    a ``SettingError`` naming the variable."""
    values = {}
    for item in describe(cls, prefix):
        text = environ.get(item.env, "")
        if not text.strip():
            continue
        try:
            values[item.name] = parse_text(text, item)
        except ValueError as exc:
            raise SettingError(item.name, f"{item.env}={text.strip()!r}: {exc}") from None
    return values


def build(cls: type, values: Mapping[str, Any], where: Callable[[str], str] | None = None):
    """``cls(**values)``; a refused value is a ``SettingError`` whose message starts with
    ``where(field)`` (the flag or variable it came from) when given."""
    try:
        return cls(**values)
    except ValueError as exc:
        name = getattr(exc, "setting", None) or _field_in(str(exc), cls)
        if where is None or name is None:
            raise
        label, message = where(name), str(exc)
        named = re.sub(rf"\b{re.escape(name)}\b", label, message, count=1)
        raise SettingError(name, named if named != message else f"{label}: {message}") from None


def _field_in(message: str, cls: type) -> str | None:
    """The first field of ``cls`` a validation message mentions (older messages carry no field)."""
    names = [f.name for f in dataclasses.fields(cls)]
    found = [(m.start(), n) for n in names for m in [re.search(rf"\b{re.escape(n)}\b", message)] if m]
    return min(found)[1] if found else None


def record(settings) -> dict[str, Any]:
    """The settings in effect as plain JSON values (tuples as lists), for metadata."""
    return json.loads(json.dumps(dataclasses.asdict(settings), default=str))


def settings_markdown(cls: type, prefix: str = "", flags: bool = True, env: bool = True) -> str:
    """The settings of ``cls`` as a Markdown table: what the docs show."""
    head = ["setting"] + (["environment"] if env else []) + (["flag"] if flags else []) + ["default", "meaning"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for item in describe(cls, prefix):
        default = ",".join(map(str, item.default)) if isinstance(item.default, tuple) else item.default
        cells = [f"`{item.name}`"] + ([f"`{item.env}`"] if env else []) + ([f"`{item.flag}`"] if flags else [])
        cells += [f"`{default}`" if default not in (None, "", ()) else "unset", item.help.replace("|", "\\|")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
