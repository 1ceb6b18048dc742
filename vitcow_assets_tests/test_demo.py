"""``scripts/demo.sh`` starts Dagster with ``dg dev`` (UI, daemon, code server) and the file
server, says where the UI is once it answers, loads the code location, and Ctrl-C (SIGINT to
its process group, as a terminal sends it) stops every process it started. The landing is
an empty named source here, so no sample is landed and no run starts."""

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY_S = 180
STOP_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lines(stream, into: queue.Queue) -> None:
    """Copy the demo's output into ``into`` (no assertions here: this runs in a thread)."""
    for line in stream:
        into.put(line)
    into.put(None)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def test_the_demo_serves_the_ui_with_dg_dev_and_ctrl_c_stops_everything(tmp_path):
    port, files_port = _free_port(), _free_port()
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "VITCOW_HOME": str(tmp_path / "home"), "PORT": str(port), "FILES_PORT": str(files_port),
           "VITCOW_LANDING": f"empty={tmp_path / 'empty'}"}
    env.pop("DAGSTER_HOME", None)
    demo = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
    seen, deadline = [], time.monotonic() + READY_S
    try:
        while not any("Dagster UI ready" in line for line in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None and time.monotonic() < deadline, "".join(seen)[-3000:]
            seen.append(line)
        info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=10).read())
        assert info["dagster_version"] == "1.13.27"
        entries = _graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename } } } } }")
        locations = {e["name"]: e["locationOrLoadError"]["__typename"] for e in entries["data"]["workspaceOrError"]["locationEntries"]}
        assert locations == {"vitcow_assets": "RepositoryLocation"}
        assert urllib.request.urlopen(f"http://127.0.0.1:{files_port}/", timeout=10).status == 200  # the storage root, served
        assert not any("virtual environment does not match" in line for line in seen)
        commands = subprocess.run(["ps", "-o", "args=", "-g", str(demo.pid)], capture_output=True, text=True, timeout=30).stdout
        assert "bin/dg dev -h 127.0.0.1" in commands and "dagster dev" not in commands
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        demo.wait(timeout=STOP_S)
        deadline = time.monotonic() + STOP_S
        while _group_alive(demo.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(demo.pid), "a process of the demo outlived Ctrl-C"
        for used in (port, files_port):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", used)) != 0, f"port {used} still served"
    finally:
        if _group_alive(demo.pid):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)
