"""Dagster config classes derived from the settings dataclasses (``core.settings``).

``config_class(ClipSettings)`` is a ``dg.Config`` (or, with ``base``, a resource class) with
one field per setting: same name, type, default and description, so the launchpad and the
resource config show exactly what the dataclass declares. ``to_settings`` turns a config
value back into the dataclass, where its own validation runs.
"""

import typing

import dagster as dg
import pydantic

from vitcow_assets.core.settings import Setting, build, describe, from_environ


def _annotation(item: Setting):
    """The pydantic type of a setting (Dagster config has lists, not tuples)."""
    if item.base_type is tuple:
        element = (typing.get_args(item.annotation) or (int,))[0]
        return list[element]
    return item.annotation


def _default(item: Setting):
    return list(item.default) if isinstance(item.default, tuple) else item.default


def config_class(cls: type, name: str | None = None, base: type = dg.Config, extra: dict | None = None, doc: str | None = None) -> type:
    """A config (or resource) class with one field per setting of ``cls``; ``extra`` adds
    fields as ``name=(type, pydantic.Field(...))``."""
    fields = {
        item.name: (_annotation(item), pydantic.Field(default=_default(item), description=item.help)) for item in describe(cls)
    }
    return pydantic.create_model(name or f"{cls.__name__}Config", __base__=base, __doc__=doc or cls.__doc__, **fields, **(extra or {}))


def setting_values(cls: type, config) -> dict:
    """The fields of ``cls`` from a config instance (lists back to tuples)."""
    values = {}
    for item in describe(cls):
        value = getattr(config, item.name)
        values[item.name] = tuple(value) if item.base_type is tuple and value is not None else value
    return values


def to_settings(cls: type, config, where=None):
    """The settings dataclass from a config instance; a refused value fails the step in one
    line (``run config: ...``) unless ``where`` names the source otherwise."""
    try:
        return build(cls, setting_values(cls, config), where)
    except ValueError as exc:
        raise dg.Failure(description=f"run config: {exc}") from None


def config_values(values: dict) -> dict:
    """Settings values as config fields take them (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def from_environment(config_cls: type, settings_cls: type, environ, prefix: str = "", **overrides):
    """``config_cls`` (a config or resource class made by ``config_class``) with each setting
    set in ``environ`` read from it; ``overrides`` that are not None win."""
    values = {**from_environ(settings_cls, environ, prefix), **{k: v for k, v in overrides.items() if v is not None}}
    return config_cls(**config_values(values))

