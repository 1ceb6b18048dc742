"""A real labelling server for the tests: ``python -m vitcow_assets.labelling.server`` in a
subprocess (its own process group), on a free port of 127.0.0.1."""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from vitcow_assets_tests.servers import free_port, wait_for_port


@contextlib.contextmanager
def label_server(home: Path, db_url: str | None = None, *options: str, host: str = "127.0.0.1", port: int | None = None,
                 env: dict | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of a server over ``home`` (catalog at home/catalog/crops.parquet),
    started with the server's ``options`` (e.g. ``--require-tokens``) on ``host`` (a
    loopback address; another than 127.0.0.1 stands for a server beyond this machine) and
    ``port`` (default: a free one), in ``env`` (default: this process's environment). Its
    output goes to ``home/server-<port>.log``."""
    port = port or free_port()
    args = [sys.executable, "-m", "vitcow_assets.labelling.server", "--home", str(home), "--port", str(port), "--host", host, *options]
    if db_url:
        args += ["--db", db_url]
    env = {k: v for k, v in (os.environ if env is None else env).items() if k not in ("VITCOW_LABELS_DB", "VITCOW_TAXONOMY")}
    log = open(home / f"server-{port}.log", "wb")
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout_s=30, process=process, host=host)
        yield f"http://{host}:{port}", process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
