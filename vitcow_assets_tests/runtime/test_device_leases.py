"""Device leases between real processes: distinct devices at once, a SIGKILLed holder frees
its device, a waiter gets it, and a bounded wait ends in one line naming the holders."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from vitcow_assets.runtime.device_leases import Device, DevicesBusy, lease_device, try_lease

DEVICES = [Device("cpu:0", "test-host-cpu0"), Device("cpu:1", "test-host-cpu1")]

#: a process that leases one of the devices named on its command line, prints which, and
#: holds it until its standard input closes (or it is killed)
HOLDER = """
import sys
from vitcow_assets.runtime.device_leases import Device, lease_device
folder, wait_s, *names = sys.argv[1:]
lease = lease_device([Device(n, "test-host-" + n.replace(":", "")) for n in names], folder, float(wait_s),
                     on_wait=lambda m: print("WAIT " + m, flush=True))
print("LEASED " + lease.device.name, flush=True)
sys.stdin.read()
"""


def _start(folder, *names, wait_s=30.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), str(wait_s), *names],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _line(process: subprocess.Popen, prefix: str, timeout_s: float = 30.0) -> str:
    """The next stdout line of ``process`` starting with ``prefix`` (read with a deadline)."""
    found: list[str] = []

    def read() -> None:
        for line in process.stdout:
            if line.startswith(prefix):
                found.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not found:
        process.kill()
        raise AssertionError(f"no {prefix!r} line within {timeout_s} s; stderr: {process.stderr.read()[-2000:]}")
    return found[0]


def _end(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.stdin.close()
        process.wait(timeout=30)


def test_two_processes_at_once_get_two_different_devices(tmp_path):
    first, second = _start(tmp_path, "cpu:0", "cpu:1"), _start(tmp_path, "cpu:0", "cpu:1")
    try:
        leased = {_line(first, "LEASED"), _line(second, "LEASED")}
        assert leased == {"LEASED cpu:0", "LEASED cpu:1"}
        assert try_lease(DEVICES[0], tmp_path) is None and try_lease(DEVICES[1], tmp_path) is None
    finally:
        _end(first, second)
    with try_lease(DEVICES[0], tmp_path) as lease:  # both ended: both free
        assert lease is not None and lease.held


def test_a_sigkilled_holder_frees_its_device_for_a_waiting_process(tmp_path):
    holder = _start(tmp_path, "cpu:0")
    try:
        assert _line(holder, "LEASED") == "LEASED cpu:0"
        waiter = _start(tmp_path, "cpu:0")
        wait = _line(waiter, "WAIT")  # it waits instead of doubling up ...
        assert f"cpu:0 by pid {holder.pid} on " in wait
        os.kill(holder.pid, signal.SIGKILL)
        assert _line(waiter, "LEASED") == "LEASED cpu:0"  # ... and gets the device once the holder is gone
        _end(waiter)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_bounded_wait_fails_in_one_line_naming_each_holder(tmp_path):
    holder = _start(tmp_path, "cpu:0")
    try:
        _line(holder, "LEASED")
        started = time.monotonic()
        with pytest.raises(DevicesBusy) as info:
            lease_device(DEVICES[:1], tmp_path, wait_s=0.5, poll_s=0.05)
        assert 0.5 <= time.monotonic() - started < 10
        message = str(info.value)
        assert "\n" not in message and f"cpu:0 by pid {holder.pid} on " in message and "after waiting" in message
    finally:
        _end(holder)


def test_threads_of_one_process_exclude_each_other_and_release_frees(tmp_path):
    first = lease_device(DEVICES, tmp_path, wait_s=0)
    second = lease_device(DEVICES, tmp_path, wait_s=0)
    assert {first.device, second.device} == set(DEVICES)
    with pytest.raises(DevicesBusy):
        lease_device(DEVICES, tmp_path, wait_s=0)
    second.release()
    assert not second.held
    third = lease_device(DEVICES, tmp_path, wait_s=0)
    assert third.device == second.device
    first.release(), third.release()


def test_a_forked_child_does_not_keep_its_parents_lease(tmp_path):
    lease = lease_device(DEVICES[:1], tmp_path, wait_s=0)
    read, write = os.pipe()
    started_read, started_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child (its fork handlers have run): says so, outlives the parent's release
        os.close(write)
        os.write(started_write, b"1")
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    try:
        assert os.read(started_read, 1) == b"1"
        lease.release()
        again = try_lease(DEVICES[0], tmp_path)  # free although the child still runs
        assert again is not None
        again.release()
    finally:
        os.write(write, b"x")
        os.close(write)
        os.waitpid(pid, 0)
        os.close(started_read), os.close(started_write)
