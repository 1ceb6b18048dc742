"""``vitcow label`` as a user starts it: it says where the labelling page and the crop pages
are, each on its own line, and whether tokens are required; and they are there."""

import os
import selectors
import signal
import subprocess
import sys
import time

import httpx

from vitcow_assets.labelling.server import startup_lines
from vitcow_assets_tests.helpers import cli_env
from vitcow_testbed.servers import free_port, wait_for_port


def _lines_until(process: subprocess.Popen, last_prefix: str, timeout_s: float = 120) -> list[str]:
    """stdout lines up to the one starting with ``last_prefix``, within ``timeout_s`` (read
    from the pipe unbuffered, so that no line waits in a buffer)."""
    data, deadline, fd = b"", time.monotonic() + timeout_s, process.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not any(line.startswith(last_prefix) for line in data.decode().splitlines()):
            left = deadline - time.monotonic()
            assert left > 0 and process.poll() is None, (data, process.poll())
            if selector.select(timeout=left):
                data += os.read(fd, 65536)
    return data.decode().splitlines()


def test_vitcow_label_prints_the_page_the_crop_pages_and_whether_tokens_are_required(tmp_path):
    port = free_port()
    args = [sys.executable, "-m", "vitcow_assets.cli", "label", "--port", str(port), "--require-tokens", "--annotator", "alice"]
    process = subprocess.Popen(args, env=cli_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lines = _lines_until(process, "labels in:")
        base = f"http://127.0.0.1:{port}"
        assert lines[:3] == [f"labelling page: {base}/?annotator=alice", f"crop pages:     {base}/crops",
                             "sign-in:        tokens required: each user signs in once with a token (vitcow labels token NAME makes one)"]
        wait_for_port(port, timeout_s=30, process=process)
        crops = httpx.get(lines[1].split()[-1])  # the address printed serves the crop list, behind the sign-in
        assert crops.status_code == 401 and 'action="/signin"' in crops.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()


def test_on_this_machine_alone_the_startup_lines_say_no_tokens_are_required():
    assert startup_lines("127.0.0.1", 8765, False) == [
        "labelling page: http://127.0.0.1:8765/", "crop pages:     http://127.0.0.1:8765/crops",
        "sign-in:        no tokens required: open to this machine (127.0.0.1) only"]
