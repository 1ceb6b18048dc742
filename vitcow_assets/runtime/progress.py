"""A process-wide progress hook: stages report ``(stage, done, total)``; the CLI may listen.

Dagster runs launched by the webserver have no listener and report nothing here (they log).
"""

from collections.abc import Callable

Listener = Callable[[str, int, int], None]
_listener: Listener | None = None


def set_listener(listener: Listener | None) -> None:
    global _listener
    _listener = listener


def report(stage: str, done: int, total: int) -> None:
    if _listener is not None:
        _listener(stage, done, total)
