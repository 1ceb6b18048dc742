"""Is a process still alive? Used to tell a crashed run (``kill -9``, power loss) from a
running one, and a dead run's temporary files from a live run's.

A process is named by host and pid. A pid is only meaningful on its own host, and pids are
reused: a process that started after the thing it supposedly owns (a run, a temporary file)
is not its owner. No Dagster here.
"""

import functools
import hashlib
import os
import socket


def hostname() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def host_tag() -> str:
    """A short, file-name-safe tag of this host (6 hex digits)."""
    return hashlib.sha256(hostname().encode()).hexdigest()[:6]


@functools.lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time as a Unix time) of ``pid`` from /proc; None if there is no
    such process; ("?", None) where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "?", None
    # the command name (field 2) is in parentheses and may contain spaces
    fields = text[text.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], int(fields[19])
    boot = _boot_time()
    start = boot + start_ticks / os.sysconf("SC_CLK_TCK") if boot is not None else None
    return state, start


def pid_alive(pid: int, started_by: float | None = None) -> bool:
    """True when process ``pid`` of this host exists, is not a zombie, and (if
    ``started_by`` is given, a Unix time) had started by then, so is not a later process
    that reused the pid."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.path.isdir("/proc/self"):
        stat = _proc_stat(pid)
        if stat is None:
            return False
        state, start = stat
        if state in ("Z", "X"):
            return False
        if started_by is not None and start is not None and start > started_by + 1.0:
            return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

