"""Real servers for deployment tests, started on 127.0.0.1 and always stopped.

``postgres_server``: a throw-away PostgreSQL cluster (Debian's ``postgresql`` package) made
with ``initdb`` in a temporary folder and run with ``pg_ctl`` on a free port; as root it runs
as the ``postgres`` user (PostgreSQL refuses root). ``redis_server``: ``redis-server`` with
no persistence. The fixtures skip the test, with the reason, where the binaries are not
installed; the context managers (also used by ``benchmarks.backlog``) raise it.
"""

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@dataclasses.dataclass
class Postgres:
    port: int
    user: str = "postgres"
    host: str = "127.0.0.1"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL (no password: the cluster trusts loopback)."""
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"


def postgres_missing() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None."""
    bindir = _postgres_bin()
    if bindir is None or not (bindir / "initdb").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the PostgreSQL server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing to run the PostgreSQL server as 'postgres'"
    return None


def redis_missing() -> str | None:
    """Why a Redis server cannot be started here, or None."""
    return None if shutil.which("redis-server") else "redis-server not installed: apt-get install redis-server"


@contextlib.contextmanager
def run_postgres() -> Iterator[Postgres]:
    reason = postgres_missing()
    if reason:
        raise RuntimeError(reason)
    bindir = _postgres_bin()
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="vitcow-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(data, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db")]
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=START_TIMEOUT_S,
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data} -c fsync=off -c max_connections=200"
        subprocess.run(
            [*pg_ctl, "-o", options, "-l", str(data / "server.log"), "-w", "-t", str(START_TIMEOUT_S), "start"],
            check=True, capture_output=True, timeout=START_TIMEOUT_S + 10,
        )
        yield Postgres(port=port)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def run_redis() -> Iterator[str]:
    reason = redis_missing()
    if reason:
        raise RuntimeError(reason)
    binary = shutil.which("redis-server")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="vitcow-redis-"))
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    with run_redis() as url:
        yield url
