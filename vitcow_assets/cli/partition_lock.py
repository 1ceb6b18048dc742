"""One writer per partition among ``vitcow run`` processes: an advisory lock file per
partition key under ``<home>/locks/``. The operating system drops the lock when its process
ends, however it ends (``kill -9`` included), so a crash never leaves a partition locked.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterator

from vitcow_assets.footage.layout import StorageRoot, check_partition_key


class PartitionBusy(RuntimeError):
    """Another live process is writing this partition; the message is one line."""


@contextlib.contextmanager
def partition_lock(root: StorageRoot, key: str) -> Iterator[None]:
    folder = root.home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{check_partition_key(key)}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise PartitionBusy(
                f"partition {key} is being processed by another `vitcow run` (pid {holder}); run again once it has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
