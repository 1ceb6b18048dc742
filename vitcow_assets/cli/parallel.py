"""``vitcow run`` over several videos on a host with several devices: one ``vitcow run``
process per device, each over its share of the videos.

Each process loads its model once, on a device it leases for its life
(``segmenters.model_pool``), so every device is used and none holds two models. Processes,
not threads: Dagster 1.13 reconfigures Python's logging whenever a run starts
(``DagsterInstance.get_handlers`` calls ``logging.config.dictConfig``, which closes every
handler), so two runs in one process deadlock on the logging locks (seen: two
``execute_in_process`` on two threads, both stuck in ``logging``).

The parent expands the inputs (folders, URLs, files still arriving) and deals them out in
turn; each child runs ``vitcow run`` with the same options on its share, reporting JSON;
the parent prints their reports in the inputs' order, their stderr (warnings, one-line
errors) as it comes, each distinct error line once. SIGTERM to the parent is passed on.
"""

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from vitcow_assets.defs.execution import GPU_POOL


def videos_at_once(segmenter) -> int:
    """One ``vitcow run`` per device the segmenter resource's backend may lease (1 without devices)."""
    devices = segmenter.devices()
    return len(devices) if devices else 1


def gpu_pool_slots(instance) -> int | None:
    """How many ``object_masks`` steps the instance lets run at once (None: no limit)."""
    info = instance.event_log_storage.get_concurrency_info(GPU_POOL)
    return getattr(info, "limit", None) or instance.global_op_concurrency_default_limit


def _command() -> list[str]:
    """This program again: the module it was started as (``python -m ...``), else the CLI."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return [sys.executable, "-m", spec.name if spec is not None and spec.name != "__main__" else "vitcow_assets.cli"]


def child_options(argv: list[str], paths: list[str]) -> list[str]:
    """``vitcow run``'s own options from its command line (its PATH arguments removed), for
    the children, which report JSON, draw no bar and fan out no further."""
    options = [token for token in argv if token not in paths and token != "run"]
    return [*options, "--json", "--no-progress", "--jobs", "1"]


class _Stderr:
    """Children's stderr lines, printed as they come; a ``vitcow:`` line already printed
    (the same refusal from every child) is not printed again."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def pump(self, stream) -> None:
        for line in stream:
            with self.lock:
                if line.startswith("vitcow: ") and line in self.seen:
                    continue
                self.seen.add(line)
                sys.stderr.write(line)
                sys.stderr.flush()


def fan_out(shares: list[list[str]], options: list[str], on_report: Callable[[dict], None]) -> tuple[list[dict], int]:
    """Run one child per non-empty share; every report (in the shares' order), and 2 if a
    child refused its settings (nothing processed), 130 if interrupted, else 0."""
    stderr = _Stderr()
    children = [subprocess.Popen([*_command(), "run", *share, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for share in shares if share]
    pumps = [threading.Thread(target=stderr.pump, args=(c.stderr,), daemon=True) for c in children]
    for pump in pumps:
        pump.start()
    previous = signal.signal(signal.SIGTERM, lambda *_: [c.send_signal(signal.SIGTERM) for c in children]) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        outputs = [child.communicate()[0] for child in children]
    except KeyboardInterrupt:  # Ctrl-C reached the whole process group: the children end their runs too
        outputs = [child.communicate()[0] for child in children]
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for pump in pumps:
            pump.join(timeout=5)
    reports, code = [], 0
    for child, out in zip(children, outputs):
        try:
            document = json.loads(out)
        except ValueError:  # refused before any video (exit 2): its line is already printed
            code = max(code, 2 if child.returncode == 2 else 1)
            continue
        for report in document["videos"]:
            on_report(report)
        reports += document["videos"]
        code = max(code, 130 if document.get("interrupted") else 0)
    return reports, code
