"""Footage into the storage root: one watcher for every landing source, local or remote.

``watch_sources`` is one look at every source (the landing sensor's tick): each source is
listed (names, sizes, times only), its settle cursor (``core.settle``) says which files have
arrived, and each arrived file is taken: a local file is hashed and registered; a remote one
is streamed (hashed while copying) to ``<home>/incoming/<sha256><ext>`` and registered with
its URI as source (``raw_video`` links the staged copy into the partition's folder, or
downloads again when it is gone). The same bytes under another name are recognised by
sha256 (the registry says ``duplicate``) and their staged copy dropped. One source failing
(unreachable, credentials refused) is a one-line warning; the others carry on. Downloads
stop after a time budget and continue on the next look from the byte reached.

No Dagster here: the sensor turns the arrivals into partitions and run requests.
"""

import dataclasses
import hashlib
import os
import posixpath
import time
from collections.abc import Callable
from pathlib import Path

from vitcow_assets.core.settle import SettleCursor
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.listing import SourceFile, list_local, list_remote
from vitcow_assets.footage.registry import RegisterOutcome, Registry
from vitcow_assets.media.files import TEMP_PREFIX
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.remote.locations import NamedSource
from vitcow_assets.remote.transfer import Connection, download

INCOMING = "incoming"
#: seconds of downloading per look (Dagster gives a sensor evaluation 60 s)
DEFAULT_TICK_BUDGET_S = 40.0


def staged_path(root: StorageRoot, sha256: str, suffix: str) -> Path:
    return root.home / INCOMING / f"{sha256}{suffix.lower()}"


def stage_remote(
    root: StorageRoot,
    conn: Connection,
    file: SourceFile,
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
    got = download(conn, file.fs_path, incoming / f"{uri_hash}{suffix}", on_retry=on_retry, partial=partial, deadline=deadline)
    if got is None:
        return None
    staged = staged_path(root, got.sha256, suffix)
    os.replace(got.path, staged)
    outcome = Registry(root).register(file.uri, got.sha256, got.size, file.source)
    if outcome.status in ("duplicate", "unchanged"):
        staged.unlink(missing_ok=True)  # already registered: raw_video downloads again if it ever needs them
    return outcome


def register_local(root: StorageRoot, file: SourceFile) -> RegisterOutcome:
    """Hash and register a local file (``OSError`` when it cannot be read)."""
    return Registry(root).register(file.uri, sha256_file(file.fs_path), file.size, file.source)


@dataclasses.dataclass
class Arrival:
    file: SourceFile
    outcome: RegisterOutcome


@dataclasses.dataclass
class Watch:
    """One look at every source: videos taken (registered), prompt files that arrived, the
    cursors to keep for the next look, and how many files are still arriving."""

    arrivals: list[Arrival]
    prompt_files: list[SourceFile]
    cursors: dict
    waiting: int


@dataclasses.dataclass
class _Budget:
    deadline: float
    started: bool = False

    def exhausted(self) -> bool:
        return self.started and time.monotonic() > self.deadline


def _take(root: StorageRoot, conn: Connection | None, file: SourceFile, budget: _Budget, log) -> RegisterOutcome | None:
    """Register an arrived file (download first when remote); None when it must wait."""
    if file.is_local:
        return register_local(root, file)
    if budget.exhausted():
        return None
    budget.started = True
    outcome = stage_remote(root, conn, file, on_retry=log.warning, deadline=budget.deadline)
    if outcome is None:
        log.info(f"{file.uri}: download continues at the next look")
    return outcome


def _take_all(root, conn, files, cursor: SettleCursor, budget: _Budget, log, name: str) -> tuple[list[Arrival], int]:
    arrivals, postponed = [], 0
    for file in files:
        try:
            outcome = _take(root, conn, file, budget, log)
        except OSError as exc:  # unreadable, vanished, a failed download (RemoteError)
            log.warning(f"source {name}: {file.uri}: {getattr(exc, 'strerror', None) or exc}; looking again later")
            cursor.postpone(file)
            postponed += 1
            if isinstance(exc, RemoteError) and ("authentication refused" in str(exc) or "host key" in str(exc)):
                break
            continue
        if outcome is None:
            cursor.postpone(file)
            postponed += 1
            continue
        cursor.taken(file)
        arrivals.append(Arrival(file, outcome))
    return arrivals, postponed


def _list(source: NamedSource, conn: Connection | None, prompt_files: bool = False) -> list[SourceFile]:
    if conn is None:
        return list_local(source.location.path, source.farm_hint, prompt_files)
    return list_remote(conn.fs, source.location, source.farm_hint)


def watch_sources(root: StorageRoot, sources: list[NamedSource], cursors: dict, now_s: float, settle_seconds: float, log, budget_s: float = DEFAULT_TICK_BUDGET_S) -> Watch:
    """One look at every source. ``cursors`` (per source name, as ``SettleCursor.as_dict``;
    prompt files under ``<name>:prompts``) is not changed: the new ones are returned. A
    source that cannot be listed keeps its cursor for the next look."""
    budget = _Budget(time.monotonic() + budget_s)
    watch = Watch([], [], {}, 0)
    for source in sources:
        conn = Connection(source.location) if source.location.is_remote else None
        cursor = SettleCursor.from_dict(cursors.get(source.name))
        try:
            look = cursor.look(_list(source, conn), now_s, settle_seconds)
            arrivals, postponed = _take_all(root, conn, look.arrived, cursor, budget, log, source.name)
        except RemoteError as exc:
            log.warning(f"source {source.name}: {exc}; skipped this look")
            watch.cursors[source.name] = cursors.get(source.name, {})
            continue
        finally:
            if conn is not None:
                conn.close()
        watch.arrivals += arrivals
        watch.cursors[source.name] = cursor.as_dict()
        watch.waiting += len(look.waiting) + postponed
        if conn is None:
            prompts = SettleCursor.from_dict(cursors.get(f"{source.name}:prompts"))
            arrived = prompts.look(_list(source, None, prompt_files=True), now_s, settle_seconds).arrived
            for file in arrived:
                prompts.taken(file)
            watch.prompt_files += arrived
            watch.cursors[f"{source.name}:prompts"] = prompts.as_dict()
    return watch


#: seconds between looks while waiting for files to finish arriving
LOOK_EVERY_S = 1.0


def wait_for_arrival(
    list_files: Callable[[], list[SourceFile]],
    settle_seconds: float,
    timeout_s: float,
    on_wait: Callable[[list[SourceFile]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> tuple[list[SourceFile], list[SourceFile]]:
    """Look at ``list_files()`` every second, with the settle rule, until nothing is still
    arriving or ``timeout_s`` has passed (at least two looks: the rule needs two). Returns
    the files that arrived and those still arriving; ``on_wait`` hears once which files it
    waits for."""
    cursor = SettleCursor()
    arrived: dict[str, SourceFile] = {}
    started, looks = clock(), 0
    while True:
        look = cursor.look(list_files(), clock(), settle_seconds)
        looks += 1
        for file in look.arrived:
            cursor.taken(file)
            arrived[file.uri] = file
        if looks >= 2 and (not look.waiting or clock() - started >= timeout_s):
            return sorted(arrived.values(), key=lambda f: f.uri), look.waiting
        if looks == 2 and on_wait is not None:
            on_wait(look.waiting)
        sleep(LOOK_EVERY_S)
