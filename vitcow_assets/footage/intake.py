"""Remote footage into the storage root: watch sources between ticks, stage settled files.

Shared by the landing sensor and ``vitcow run``; no Dagster here. A settled remote file is
streamed (hashed while copying) to ``<home>/incoming/<sha256><ext>``, then registered with
its URI as source; ``raw_video`` links the staged copy into the partition's folder (or
downloads again when it is gone). The same bytes under another name are found by sha256
and their staged copy dropped. One source failing (unreachable, credentials refused)
is a one-line warning; the other sources carry on.
"""

import dataclasses
import hashlib
import os
import posixpath
import time
from collections.abc import Callable
from pathlib import Path

from vitcow_assets.footage.listing import is_settled
from vitcow_assets.media.files import TEMP_PREFIX
from vitcow_assets.footage.registry import Registry, RegisterOutcome
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.footage.remote_listing import RemoteFile, scan_remote
from vitcow_assets.remote.locations import NamedSource
from vitcow_assets.remote.transfer import Connection, download
from vitcow_assets.footage.layout import StorageRoot

INCOMING = "incoming"


def staged_path(root: StorageRoot, sha256: str, suffix: str) -> Path:
    return root.home / INCOMING / f"{sha256}{suffix.lower()}"


def stage_remote(
    root: StorageRoot,
    conn: Connection,
    file: RemoteFile,
    source_name: str | None,
    on_retry: Callable[[str], None] | None = None,
    deadline: float | None = None,
) -> RegisterOutcome | None:
    """Download ``file`` into the incoming folder (hashing while copying) and register it.

    The bytes collect in ``incoming/.tmp-<uri hash>-<size>-<mtime>.part`` (kept between
    calls, so a download cut short by ``deadline`` or by a lost server continues next time;
    a changed remote file starts over), renamed to ``<sha256><ext>`` only when complete and
    checked. None when ``deadline`` passed first.
    """
    suffix = posixpath.splitext(file.fs_path)[1].lower()
    incoming = root.home / INCOMING
    uri_hash = hashlib.sha256(file.uri.encode()).hexdigest()[:16]
    partial = incoming / f"{TEMP_PREFIX}{uri_hash}-{file.size}-{file.mtime_ns}.part"
    for stale in incoming.glob(f"{TEMP_PREFIX}{uri_hash}-*.part"):
        if stale != partial:
            stale.unlink(missing_ok=True)
    done = incoming / f"{uri_hash}{suffix}"
    got = download(conn, file.fs_path, done, on_retry=on_retry, partial=partial, deadline=deadline)
    if got is None:
        return None
    staged = staged_path(root, got.sha256, suffix)
    os.replace(got.path, staged)
    outcome = Registry(root).register(file.uri, got.sha256, got.size, source_name)
    if outcome.status in ("duplicate", "unchanged"):
        staged.unlink(missing_ok=True)  # already registered: raw_video downloads again if it ever needs them
    return outcome


@dataclasses.dataclass
class Arrival:
    source: NamedSource
    file: RemoteFile
    outcome: RegisterOutcome


#: seconds of downloading per sensor tick (Dagster gives a sensor evaluation 60 s)
DEFAULT_TICK_BUDGET_S = 40.0


def remote_tick(
    root: StorageRoot,
    sources: list[NamedSource],
    state: dict,
    now_s: float,
    settle_seconds: float,
    log,
    budget_s: float = DEFAULT_TICK_BUDGET_S,
) -> tuple[list[Arrival], dict, int]:
    """One look at every remote source. ``state`` (the cursor part, per source name:
    ``seen`` / ``done`` signatures by URI) is not changed; the new one is returned, with
    the arrivals (settled files staged and registered) and the number still arriving.

    Listing is cheap (names, sizes, times); only files whose signature changed since they
    were last taken are downloaded. A source that fails keeps its state for the next tick.
    Downloads stop after ``budget_s`` (the first one always makes progress) and continue
    next tick from the byte reached, so no tick outlives the sensor's time limit.
    """
    deadline = time.monotonic() + budget_s
    started = False
    arrivals: list[Arrival] = []
    new_state: dict = {}
    waiting_total = 0
    for source in sources:
        if not source.location.is_remote:
            continue
        old = state.get(source.name, {})
        seen, done = dict(old.get("seen", {})), dict(old.get("done", {}))
        conn = Connection(source.location)
        try:
            files = scan_remote(conn.fs, source.location)
        except RemoteError as exc:
            log.warning(f"source {source.name}: {exc}; skipped this tick")
            new_state[source.name] = old
            conn.close()
            continue
        waiting: dict[str, list[int]] = {}
        try:
            for file in files:
                if done.get(file.uri) == file.signature:
                    continue
                if file.uri not in seen or not is_settled(file, seen[file.uri], now_s, settle_seconds):
                    waiting[file.uri] = file.signature
                    continue
                if started and time.monotonic() > deadline:
                    waiting[file.uri] = file.signature  # out of time this tick
                    continue
                started = True
                try:
                    outcome = stage_remote(root, conn, file, source.name, on_retry=log.warning, deadline=deadline)
                    if outcome is None:
                        log.info(f"source {source.name}: {file.uri}: download continues next tick")
                        waiting[file.uri] = file.signature
                        continue
                except RemoteError as exc:
                    log.warning(f"source {source.name}: {exc}")
                    waiting[file.uri] = file.signature  # try again next tick
                    if "authentication refused" in str(exc) or "host key" in str(exc):
                        break
                    continue
                done[file.uri] = file.signature
                arrivals.append(Arrival(source, file, outcome))
        finally:
            conn.close()
        present = {f.uri for f in files}
        new_state[source.name] = {"seen": waiting, "done": {u: s for u, s in done.items() if u in present}}
        waiting_total += len(waiting)
    return arrivals, new_state, waiting_total
