"""Streamed, hashed, resumable downloads and atomic, idempotent uploads.

A download reads the remote file in bounded chunks into a temporary file beside its
destination, hashing the bytes as they arrive. When the connection drops it reconnects,
reopens the file at the byte it had reached and carries on (``retries`` times, with
backoff); the hash simply continues. Only a complete file whose size matches the remote
size (and whose sha256 matches ``expect_sha256``, and which passes ``check``) is renamed
into place; anything else is deleted. Memory: one chunk and s3fs's 4 MiB read-ahead (or,
for SFTP, one 2 MiB window of pipelined requests), whatever the file's size.
"""

import dataclasses
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from vitcow_assets.media.files import atomic_file
from vitcow_assets.remote.filesystems import ConnectError, RemoteError, VanishedError, close_filesystem, describe, open_filesystem
from vitcow_assets.remote.locations import Location

CHUNK_BYTES = 1 << 20
SFTP_REQUEST_BYTES = 32768  # paramiko's largest single read request
SFTP_WINDOW_REQUESTS = 64  # 2 MiB in flight per window
DEFAULT_RETRIES = 4


@dataclasses.dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int
    reconnects: int


class Connection:
    """One location's file system, opened lazily and replaced after a failure."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._fs = None
        #: folders known to exist on the server (saves a round trip per upload)
        self.made_dirs: set[str] = set()

    @property
    def fs(self):
        if self._fs is None:
            self._fs = open_filesystem(self.location)
        return self._fs

    def reset(self) -> None:
        if self._fs is not None:
            close_filesystem(self._fs)
        self._fs = None

    def close(self) -> None:
        self.reset()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_sftp_file(handle) -> bool:
    return hasattr(handle, "readv") and hasattr(handle, "sftp")


def _read_chunks(handle, offset: int, size: int):
    """Chunks of ``handle`` from ``offset`` to ``size``; SFTP reads are pipelined in windows."""
    if _is_sftp_file(handle):
        while offset < size:
            requests = []
            position = offset
            while position < size and len(requests) < SFTP_WINDOW_REQUESTS:
                length = min(SFTP_REQUEST_BYTES, size - position)
                requests.append((position, length))
                position += length
            for block in handle.readv(requests):
                offset += len(block)
                yield block
            if position != offset:
                raise EOFError("short read")
        return
    handle.seek(offset)
    while offset < size:
        block = handle.read(min(CHUNK_BYTES, size - offset))
        if not block:
            raise EOFError("connection ended before the end of the file")
        offset += len(block)
        yield block


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    if isinstance(exc, ConnectError):
        return "authentication refused" not in str(exc) and "host key" not in str(exc)
    name = type(exc).__name__
    return isinstance(exc, (OSError, EOFError, TimeoutError)) or name in ("SSHException", "ProxyCommandFailure")


def remote_size(conn: Connection, fs_path: str) -> int:
    try:
        return int(conn.fs.info(fs_path)["size"])
    except FileNotFoundError:
        raise VanishedError(f"{conn.location.uri_of(fs_path)}: the file vanished from the server") from None


def _fetch_into(
    conn: Connection,
    fs_path: str,
    path: Path,
    resume: bool,
    deadline: float | None,
    retries: int,
    backoff_s: float,
    on_retry: Callable[[str], None] | None,
) -> tuple[str, int, int] | None:
    """Copy ``fs_path`` into ``path`` (appending to what it holds when ``resume``), hashing
    every byte; ``(sha256, size, reconnects)``, or None when ``deadline`` (monotonic) passed
    first (``path`` then holds the bytes so far)."""
    uri = conn.location.uri_of(fs_path)
    digest = hashlib.sha256()
    offset, reconnects, failures = 0, 0, 0
    if resume and path.exists():
        with open(path, "rb") as done:
            while block := done.read(CHUNK_BYTES):
                digest.update(block)
                offset += len(block)
    with open(path, "ab" if resume else "wb") as out:
        while True:
            try:
                size = remote_size(conn, fs_path)
                if offset > size:
                    raise RemoteError(f"{uri}: the file shrank while downloading")
                options = {"block_size": 4 * CHUNK_BYTES} if conn.location.scheme == "s3" else {}
                with conn.fs.open(fs_path, "rb", **options) as handle:
                    for block in _read_chunks(handle, offset, size):
                        out.write(block)
                        digest.update(block)
                        offset += len(block)
                        if deadline is not None and time.monotonic() > deadline and offset < size:
                            return None
                break
            except Exception as exc:
                if isinstance(exc, RemoteError) and not isinstance(exc, ConnectError):
                    raise
                if isinstance(exc, FileNotFoundError):
                    raise VanishedError(f"{uri}: the file vanished from the server") from None
                if not _is_transient(exc) or failures >= retries:
                    if isinstance(exc, ConnectError):
                        raise
                    raise RemoteError(f"{uri}: download failed after {failures} retries at byte {offset} ({describe(exc)})") from None
                failures += 1
                reconnects += 1
                if on_retry is not None:
                    on_retry(f"{uri}: connection lost at byte {offset} ({describe(exc)}); reconnecting ({failures}/{retries})")
                conn.reset()
                time.sleep(backoff_s * failures)
    return digest.hexdigest(), offset, reconnects


def download(
    conn: Connection,
    fs_path: str,
    dest: str | os.PathLike,
    *,
    expect_sha256: str | None = None,
    check: Callable[[Path], None] | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = 0.5,
    on_retry: Callable[[str], None] | None = None,
    partial: str | os.PathLike | None = None,
    deadline: float | None = None,
) -> Downloaded | None:
    """Stream ``fs_path`` of ``conn`` to ``dest`` (atomically), hashing while copying.

    Raises ``VanishedError`` when the file is gone, ``ConnectError`` when the server refuses
    us, ``RemoteError`` when the bytes changed or the retries ran out; ``dest`` is then
    untouched and no temporary file is left.

    With ``partial`` (a ``.tmp-`` path beside ``dest``), the bytes go there and stay there
    between calls: a call continues where the last one stopped, and returns None when
    ``deadline`` (``time.monotonic()``) passes before the end (the sensor's time budget).
    """
    uri = conn.location.uri_of(fs_path)

    def verify(path: Path, sha: str, size: int) -> None:
        if size != remote_size(conn, fs_path):
            raise RemoteError(f"{uri}: the file changed while downloading; try again once it has settled")
        if expect_sha256 is not None and sha != expect_sha256:
            raise RemoteError(f"{uri}: its bytes changed since it was registered (sha256 {sha[:12]} != {expect_sha256[:12]})")
        if check is not None:
            check(path)

    if partial is None:
        with atomic_file(dest) as tmp:
            sha, size, reconnects = _fetch_into(conn, fs_path, Path(tmp), False, None, retries, backoff_s, on_retry)
            verify(Path(tmp), sha, size)
        return Downloaded(Path(dest), sha, size, reconnects)
    partial = Path(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = _fetch_into(conn, fs_path, partial, True, deadline, retries, backoff_s, on_retry)
        if got is None:
            return None
        sha, size, reconnects = got
        verify(partial, sha, size)
    except RemoteError as exc:
        if "download failed after" not in str(exc) and not isinstance(exc, ConnectError):
            partial.unlink(missing_ok=True)  # vanished or changed: these bytes are no use
        raise
    os.replace(partial, dest)
    return Downloaded(Path(dest), sha, size, reconnects)


def upload(conn: Connection, local: str | os.PathLike, fs_path: str, retries: int = DEFAULT_RETRIES) -> None:
    """Put ``local`` at ``fs_path`` so that readers never see a partial file: S3 objects
    appear whole when their upload completes; elsewhere the file goes to a ``.tmp-`` name
    in the same folder and is renamed over the old one."""
    failures = 0
    while True:
        try:
            fs = conn.fs
            if conn.location.scheme == "s3":
                fs.put_file(str(local), fs_path)
                return
            parent, name = fs_path.rsplit("/", 1) if "/" in fs_path else ("", fs_path)
            if parent not in conn.made_dirs:
                fs.makedirs(parent, exist_ok=True)
                conn.made_dirs.add(parent)
            tmp = f"{parent}/.tmp-{uuid.uuid4().hex[:8]}-{name}"
            try:
                fs.put_file(str(local), tmp)
                _replace(fs, tmp, fs_path)
            except BaseException:
                try:
                    fs.rm_file(tmp)
                except Exception:
                    pass
                raise
            return
        except Exception as exc:
            if not _is_transient(exc) or failures >= retries:
                if isinstance(exc, RemoteError):
                    raise
                raise RemoteError(f"{conn.location.uri_of(fs_path)}: upload failed ({describe(exc)})") from None
            failures += 1
            conn.reset()
            time.sleep(0.5 * failures)


def _replace(fs, src: str, dst: str) -> None:
    """Rename ``src`` over ``dst`` (POSIX rename semantics where the store has them)."""
    ftp = getattr(fs, "ftp", None)
    if ftp is not None:
        ftp.posix_rename(src, dst)  # OpenSSH's posix-rename: replaces dst atomically
    else:
        os.replace(src, dst)
