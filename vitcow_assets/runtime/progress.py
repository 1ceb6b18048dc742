"""A process-wide hook: stages report progress ``(stage, done, total)`` and one-line warnings;
the CLI may listen (a progress bar, with warnings printed above it).

Dagster runs launched by the webserver have no listener and report nothing here (they log).
"""

from collections.abc import Callable

Listener = Callable[[str, int, int], None]
WarningListener = Callable[[str], None]
_listener: Listener | None = None
_warnings: WarningListener | None = None


def set_listener(listener: Listener | None, warnings: WarningListener | None = None) -> None:
    global _listener, _warnings
    _listener, _warnings = listener, warnings


def report(stage: str, done: int, total: int) -> None:
    if _listener is not None:
        _listener(stage, done, total)


def warn(message: str) -> None:
    if _warnings is not None:
        _warnings(message)
