"""Device leases: a process holds a device (a GPU, or a simulated slot in tests) for as long
as its model lives there, so that one device never holds two models.

A lease is an exclusive ``flock`` on one lock file per device, in a folder every process of
the host shares. The kernel drops the lock when the process ends, however it ends (SIGKILL
included), so a lease cannot outlive its holder; two leases in one process are two open
files, so threads exclude each other too. A child forked by the holder closes its copies of
the lease files at once (``os.register_at_fork``), so it never keeps a device its parent
lost. While the lock is held the file names its holder (pid, host, since when), for the
messages of those who wait.

No Dagster, no project imports: callers choose the devices and the folder.
"""

import dataclasses
import fcntl
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: seconds between two looks at busy devices while waiting for one
POLL_S = 0.25
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class Device:
    """A device a model can be placed on. ``name`` is what the model runs on and the masks
    metadata records (``cuda:1``, ``cpu:0``); ``key`` names the physical device across the
    host's processes (a GPU's UUID, which ``CUDA_VISIBLE_DEVICES`` does not renumber, or a
    host-tagged name) and so the lock file."""

    name: str
    key: str

    @property
    def lock_name(self) -> str:
        return _SAFE_NAME.sub("_", self.key) + ".lock"


class DevicesBusy(RuntimeError):
    """Every device stayed leased by other holders for the whole wait; the message is one line."""


_HELD: set["DeviceLease"] = set()
_HELD_LOCK = threading.Lock()


class DeviceLease:
    """One held device; ``release()`` (or the holder's end) frees it."""

    def __init__(self, device: Device, fd: int, path: Path) -> None:
        self.device = device
        self.path = path
        self._fd: int | None = fd
        with _HELD_LOCK:
            _HELD.add(self)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with _HELD_LOCK:
            _HELD.discard(self)
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the last descriptor of the open file: the lock goes with it

    def __enter__(self) -> "DeviceLease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DeviceLease({self.device.name}, {'held' if self.held else 'released'})"


def _close_in_forked_child() -> None:
    """A forked child's copies of the lease files are closed: the parent keeps its leases,
    and the child cannot keep one alive after the parent dies."""
    for lease in list(_HELD):
        if lease._fd is not None:
            try:
                os.close(lease._fd)
            except OSError:
                pass
            lease._fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_forked_child)


def try_lease(device: Device, folder: str | os.PathLike) -> DeviceLease | None:
    """The lease of ``device`` if no one holds it now, else None (never waits)."""
    path = Path(folder) / device.lock_name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
    return DeviceLease(device, fd, path)


def holder_of(device: Device, folder: str | os.PathLike) -> str:
    """Who holds ``device``, as its lock file says (``?`` when it says nothing)."""
    try:
        text = (Path(folder) / device.lock_name).read_text(errors="replace").strip()
    except OSError:
        text = ""
    return text or "?"


def busy_message(devices: Sequence[Device], holders: Sequence[str], waited_s: float) -> str:
    """One line: every device with its holder, and how long was waited."""
    held = "; ".join(f"{d.name} by {h}" for d, h in zip(devices, holders))
    return f"every device is leased by another model ({held}) after waiting {waited_s:.0f} s"


def lease_free_device(devices: Sequence[Device], folder: str | os.PathLike) -> DeviceLease | None:
    """The first of ``devices`` (in order) that no one holds now, or None (never waits)."""
    for device in devices:
        lease = try_lease(device, folder)
        if lease is not None:
            return lease
    return None


class Waiting:
    """A bounded wait for a device: ``check()`` after each failed try raises ``DevicesBusy``
    once ``wait_s`` has passed, tells ``on_wait`` once that every device is busy, and sleeps
    a poll interval."""

    def __init__(self, devices: Sequence[Device], folder: str | os.PathLike, wait_s: float, on_wait=None, poll_s: float = POLL_S) -> None:
        if not devices:
            raise ValueError("no device to lease")
        self.devices, self.folder, self.wait_s, self.on_wait, self.poll_s = list(devices), folder, wait_s, on_wait, poll_s
        self.started = time.monotonic()
        self.told = False

    def check(self) -> None:
        waited = time.monotonic() - self.started
        holders = [holder_of(d, self.folder) for d in self.devices]
        if waited >= self.wait_s:
            raise DevicesBusy(busy_message(self.devices, holders, waited))
        if not self.told and self.on_wait is not None:
            self.on_wait(f"waiting up to {self.wait_s:.0f} s for a free device: {busy_message(self.devices, holders, waited)}")
            self.told = True
        time.sleep(min(self.poll_s, max(self.wait_s - waited, 0.0)))


def lease_device(
    devices: Sequence[Device],
    folder: str | os.PathLike,
    wait_s: float,
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = POLL_S,
) -> DeviceLease:
    """The first of ``devices`` (in order) that no one holds, waiting up to ``wait_s``
    seconds for one to be freed; ``on_wait`` hears once that every one was busy. After the
    wait: ``DevicesBusy``, naming each device's holder."""
    waiting = Waiting(devices, folder, wait_s, on_wait, poll_s)
    while True:
        lease = lease_free_device(devices, folder)
        if lease is not None:
            return lease
        waiting.check()
