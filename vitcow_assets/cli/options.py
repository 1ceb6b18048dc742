"""Command-line flags derived from the settings dataclasses (``core.settings``): one flag per
setting, named ``--<prefix>-<field>`` (or the field's own ``flag``), typed and documented
from the field; a refused value is one line naming the flag (exit 2)."""

import argparse

from vitcow_assets.core.settings import Setting, build, describe, parse_text


def _type(item: Setting):
    def convert(text: str):
        try:
            return parse_text(text, item)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = item.base_type.__name__  # argparse names the type in its errors
    return convert


def add_setting_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "", title: str | None = None, from_env: bool = True) -> None:
    """One flag per setting of ``cls`` (booleans as ``--x`` / ``--no-x``); every default is
    None, so that only what was given overrides the environment and the defaults.
    ``from_env``: the settings are also read from the environment (the help names the variable)."""
    group = parser.add_argument_group(title) if title else parser
    for item in describe(cls, prefix):
        names = [item.flag, *item.aliases]
        dest = f"{prefix}__{item.name}" if prefix else item.name
        where = f"; ${item.env}" if from_env else ""
        text = f"{item.help} (default {_shown(item.default)}{where})".replace("%", "%%")
        if item.base_type is bool:
            group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            extra = {"choices": item.choices} if item.choices else {}
            group.add_argument(*names, dest=dest, type=_type(item), default=None, metavar=item.name.upper(), help=text, **extra)


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def given(args: argparse.Namespace, cls: type, prefix: str = "") -> dict:
    """The settings of ``cls`` given on the command line."""
    values = {}
    for item in describe(cls, prefix):
        value = getattr(args, f"{prefix}__{item.name}" if prefix else item.name, None)
        if value is not None:
            values[item.name] = value
    return values


def check_given(args: argparse.Namespace, cls: type, prefix: str = "", base: dict | None = None) -> dict:
    """``given`` checked by the settings class itself (its ``__post_init__``, as the launchpad
    checks it): a refused value is a ``ValueError`` whose message names the flag."""
    values = given(args, cls, prefix)
    flags = {item.name: item.flag for item in describe(cls, prefix)}
    build(cls, {**(base or {}), **values}, where=lambda name: flags.get(name, name))
    return values
