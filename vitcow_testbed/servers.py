"""Real servers on 127.0.0.1 for the tests and the benchmarks, each started and always stopped
by its context manager.

Remote storage: OpenSSH's sshd (with a temporary host key, user key and authorized_keys),
moto's S3 server, and a TCP proxy that can cut a connection after N bytes.

Deployment: ``run_postgres``, a throw-away PostgreSQL cluster (Debian's ``postgresql``
package) made with ``initdb`` in a temporary folder and run with ``pg_ctl`` on a free port (as
root it runs as the ``postgres`` user: PostgreSQL refuses root); ``run_redis``,
``redis-server`` with no persistence. Where the binaries are not installed they raise, saying
why (``postgres_missing``, ``redis_missing``); the tests' fixtures
(``vitcow_assets_tests/conftest.py``) skip instead.

Labelling: ``label_server``, the project's own labelling server
(``python -m vitcow_assets.labelling.server``) in a subprocess of its own process group.

No pytest here: benchmarks use these too.
"""


import contextlib
import dataclasses
import getpass
import glob
import os
import pwd
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
SSH_KEYGEN = shutil.which("ssh-keygen")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 15.0, process: subprocess.Popen | None = None, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


def keygen(path: Path) -> Path:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


class SshServer:
    """sshd on 127.0.0.1:``port`` for the current user, key (and password) auth, SFTP only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = keygen(folder / "host_key")
        self.user_key = keygen(folder / "user_key")
        self.other_key = keygen(folder / "other_key")  # a key the server does not accept
        self.authorized = folder / "authorized_keys"
        self.authorized.write_text(Path(f"{self.user_key}.pub").read_text())
        os.chmod(self.authorized, 0o600)
        self.known_hosts = folder / "known_hosts"
        self.add_known_port(self.port)
        self.log = folder / "sshd.log"
        self.config = folder / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized}",
                    # the temporary folders are not owned the way StrictModes wants
                    "StrictModes no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin yes",
                    "UsePAM no",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 50",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen | None = None

    def add_known_port(self, port: int) -> None:
        """Trust the host key at 127.0.0.1:``port`` (also a proxy in front of the server)."""
        key = Path(f"{self.host_key}.pub").read_text().split()
        with open(self.known_hosts, "a") as f:
            f.write(f"[127.0.0.1]:{port} {key[0]} {key[1]}\n")

    def start(self) -> "SshServer":
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)], stdout=subprocess.DEVNULL, stderr=open(self.log, "wb")
        )
        try:
            wait_for_port(self.port, process=self.process)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"sshd did not start ({exc}): {self.log.read_text()[-500:]}") from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def url(self, path: str, port: int | None = None) -> str:
        return f"sftp://{self.user}@127.0.0.1:{port or self.port}{path}"


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; the first ``cuts`` connections are
    closed after ``cut_after`` bytes have gone from the server to the client."""

    def __init__(self, target_port: int, cut_after: int, cuts: int = 1) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.cut_count = 0
        self.connections = 0
        self.port = free_port()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "CuttingProxy":
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for s in list(self._sockets) + [self._listener]:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            with self._lock:
                self.connections += 1
                limit = self.cut_after if self.cuts_left > 0 else None
                if limit is not None:
                    self.cuts_left -= 1
            self._sockets += [client, server]
            for src, dst, lim in ((client, server, None), (server, client, limit)):
                t = threading.Thread(target=self._pipe, args=(src, dst, lim, client, server), daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None, *both: socket.socket) -> None:
        sent = 0
        src.settimeout(0.5)
        try:
            while not self._stop.is_set():
                try:
                    data = src.recv(65536)
                except (TimeoutError, socket.timeout):
                    continue
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.cut_count += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in both:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()


class S3Server:
    """moto's S3-compatible server on 127.0.0.1."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        self.server.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        self.server.stop()


START_TIMEOUT_S = 60


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
