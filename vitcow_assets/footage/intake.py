"""Footage into the storage root: one watcher for every landing source, local or remote.

``watch_sources`` is one look at every source and one helping of its backlog (the landing
sensor's tick). Each source is walked (``footage.looking``: only the folders that may have
changed between full sweeps) and what it holds is judged, file by file, with the settle
rule and kept in the intake state (``footage.intake_state``, one row per file). Then
arrived files are taken, oldest recording first, at most ``max_registrations`` of them and
no more than the runs the queue has room for: each is claimed, checked (its signature
must still be the one that settled), and taken: a local file is hashed and registered; a
remote one is streamed (hashed while copying) to ``<home>/incoming/<sha256><ext>`` and
registered with its URI as source (``raw_video`` links the staged copy into the
partition's folder, or downloads again when it is gone). The same bytes under another name
are recognised by sha256 (the registry says ``duplicate``) and their staged copy dropped.
One source failing (unreachable, credentials refused) is a one-line warning; the others
carry on. Downloads stop after a time budget and continue on the next look from the byte
reached. Prompt files beside local videos go the same way, uncounted.

No Dagster here: the sensor turns the arrivals into partitions and run requests.
"""

import dataclasses
import datetime as dt
import hashlib
import os
import posixpath
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from vitcow_assets.core.folder_watch import LookPlan
from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.core.settle import ARRIVED, CLAIMED, WAITING, SettleCursor
from vitcow_assets.core.source_paths import PathPattern, parse_patterns, source_fields
from vitcow_assets.footage.folders import Calls, LocalFolders, RemoteFolders
from vitcow_assets.footage.intake_state import PROMPTS, VIDEO, FileRow, IntakeState
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.footage.listing import SourceFile
from vitcow_assets.footage.looking import LookReport, look
from vitcow_assets.footage.prompt_files import video_stem_of_prompt_file
from vitcow_assets.footage.registry import RegisterOutcome, Registry
from vitcow_assets.footage.settings import StorageSettings
from vitcow_assets.media.files import TEMP_PREFIX
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.remote.filesystems import RemoteError
from vitcow_assets.remote.locations import NamedSource
from vitcow_assets.remote.transfer import Connection, download

INCOMING = "incoming"
#: seconds a tick may spend looking, hashing and downloading (Dagster gives a sensor
#: evaluation 60 s)
DEFAULT_TICK_BUDGET_S = 40.0
#: of which walking the sources (a full sweep cut short goes on at the next look)
LOOK_BUDGET_S = 20.0
#: prompt files taken per tick (each is only read and hashed)
PROMPT_BATCH = 200


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
    #: a run is wanted: new or changed bytes, or a take that a killed tick left half done
    wants_run: bool = True


@dataclasses.dataclass
class PromptChange:
    """A prompt file that arrived (new or edited), and the partition of its video when that
    video has been taken."""

    file: SourceFile
    partition_key: str | None


def _default(name: str):
    """A storage setting's default (``footage.settings``: written once, there)."""
    return StorageSettings.__dataclass_fields__[name].default


@dataclasses.dataclass(frozen=True)
class IntakePolicy:
    """How often sources are looked at and swept, and how much one tick takes (the storage
    settings, by default their defaults)."""

    settle_seconds: float = _default("settle_seconds")
    full_sweep_s: float = _default("full_sweep_seconds")
    remote_look_s: float = _default("remote_look_seconds")
    remote_full_sweep_s: float = _default("remote_full_sweep_seconds")
    remote_active_s: float = _default("remote_active_seconds")
    max_registrations: int = _default("max_registrations_per_tick")
    #: runs this tick may ask for at most (``watch_sources``'s ``room`` may say fewer)
    max_runs: int = _default("max_runs_per_tick")
    budget_s: float = DEFAULT_TICK_BUDGET_S
    look_budget_s: float = LOOK_BUDGET_S
    patterns: tuple[PathPattern, ...] | None = None

    @classmethod
    def from_settings(cls, settings, patterns, **overrides) -> "IntakePolicy":
        """From ``footage.settings.StorageSettings``."""
        return cls(
            settle_seconds=settings.settle_seconds,
            full_sweep_s=settings.full_sweep_seconds,
            remote_look_s=settings.remote_look_seconds,
            remote_full_sweep_s=settings.remote_full_sweep_seconds,
            remote_active_s=settings.remote_active_seconds,
            max_registrations=settings.max_registrations_per_tick,
            max_runs=settings.max_runs_per_tick,
            patterns=tuple(patterns),
            **overrides,
        )


@dataclasses.dataclass
class Watch:
    """One tick: videos taken (registered), prompt files taken, rows whose runs a killed
    tick requested (to request again), the cursor to keep, and what waits."""

    arrivals: list[Arrival]
    prompt_changes: list[PromptChange]
    again: list[FileRow]
    cursor: IntakeCursor
    #: files still arriving / arrived and waiting to be taken / being taken by some tick
    counts: dict[str, int]
    looks: dict[str, LookReport]
    calls: Calls

    @property
    def waiting(self) -> int:
        """Files still arriving."""
        return self.counts.get(WAITING, 0)

    @property
    def backlog(self) -> int:
        """Files that have arrived and wait to be taken."""
        return self.counts.get(ARRIVED, 0) + self.counts.get(CLAIMED, 0)


@dataclasses.dataclass
class _Budget:
    deadline: float
    started: bool = False

    def exhausted(self) -> bool:
        return self.started and time.monotonic() > self.deadline


def source_key(source: NamedSource) -> str:
    """The source in the intake state: its name and where it points (another URL under the
    same name starts afresh)."""
    return f"{source.name}:{hashlib.sha256(source.location.uri.encode()).hexdigest()[:8]}"


def recorded_seconds(patterns) -> Callable[[object], int]:
    """When a file was recorded (seconds since the epoch, its path's time read as UTC), else
    when it was last modified: the backlog's order."""

    patterns = tuple(patterns) if patterns is not None else parse_patterns(None)

    def of(file) -> int:
        uri = getattr(file, "uri", file)
        fields = source_fields(getattr(file, "fs_path", uri), patterns)
        if fields.recorded_at is not None:
            return int(fields.recorded_at.replace(tzinfo=dt.timezone.utc).timestamp())
        return int(getattr(file, "mtime_ns", 0) // 1_000_000_000)

    return of


class _Sources:
    """The sources of one tick by key, each one's folder lister opened on first use."""

    def __init__(self, sources: list[NamedSource]) -> None:
        self.by_key = {source_key(s): s for s in sources}
        self.listers: dict[str, object] = {}
        self.failed: set[str] = set()

    def lister(self, key: str, prompts: bool = True):
        if key not in self.listers:
            source = self.by_key[key]
            if source.location.is_remote:
                self.listers[key] = RemoteFolders(Connection(source.location), source.farm_hint)
            else:
                self.listers[key] = LocalFolders(source.location, source.farm_hint, prompts)
        return self.listers[key]

    def calls(self) -> Calls:
        total = Calls()
        for lister in self.listers.values():
            for field in dataclasses.fields(Calls):
                setattr(total, field.name, getattr(total, field.name) + getattr(lister.calls, field.name))
        return total

    def close(self) -> None:
        for lister in self.listers.values():
            lister.close()


def _take(root: StorageRoot, conn: Connection | None, file: SourceFile, budget: _Budget, log) -> RegisterOutcome | None:
    """Register an arrived file (download first when remote); None when it must wait."""
    if budget.exhausted():
        return None
    budget.started = True
    if file.is_local:
        return register_local(root, file)
    outcome = stage_remote(root, conn, file, on_retry=log.warning, deadline=budget.deadline)
    if outcome is None:
        log.info(f"{file.uri}: download continues at the next look")
    return outcome


def _migrate(state: IntakeState, cursor: IntakeCursor, sources: _Sources, now_s: float, order, log) -> None:
    """Move an old-format cursor's files into the intake state (once: the cursor it
    returns is the new one)."""
    by_name = {s.name: key for key, s in sources.by_key.items()}
    moved = 0
    for name, old in (cursor.legacy or {}).items():
        base, _, suffix = name.partition(":")
        key = by_name.get(base)
        if key is not None:
            moved += state.import_cursor(key, old, PROMPTS if suffix == "prompts" else VIDEO, now_s, order)
    cursor.legacy = None
    log.info(f"intake: moved {moved} file(s) from the old sensor cursor into {state.safe_url}")


def _look_all(state, sources: _Sources, cursor: IntakeCursor, gen: int, now_s: float, policy: IntakePolicy, force_full: bool, log) -> dict[str, LookReport]:
    deadline = time.monotonic() + policy.look_budget_s
    reports = {}
    order = recorded_seconds(policy.patterns)
    for key, source in sources.by_key.items():
        remote = source.location.is_remote
        marks = cursor.marks(key)
        if remote and not force_full and not marks.look_due(now_s, policy.remote_look_s):
            continue
        full = force_full or marks.sweep_due(now_s, policy.remote_full_sweep_s if remote else policy.full_sweep_s)
        if full and not marks.sweeping:
            marks.sweep, marks.sweeping = gen, True
        plan = LookPlan(full, marks.sweep, skip_quiet=remote, active_window_s=policy.remote_active_s)
        try:
            reports[key] = report = look(state, key, sources.lister(key), plan, now_s, policy.settle_seconds, order, deadline)
        except RemoteError as exc:
            log.warning(f"source {source.name}: {exc}; skipped this look")
            sources.failed.add(key)
            continue
        marks.looked_s = now_s
        if full and report.complete:
            marks.sweeping, marks.swept_s = False, now_s
    return reports


def _checked(sources: _Sources, row: FileRow) -> tuple[SourceFile, object] | None:
    source = sources.by_key[row.source]
    size, mtime_ns = row.mark.seen
    return SourceFile(row.uri, row.fs_path, size, mtime_ns, source.farm_hint), sources.lister(row.source)


def _take_one(root, state, sources: _Sources, row: FileRow, owner: str, gen: int, budget: _Budget, log) -> Arrival | None:
    """Take one claimed row: None when it changed, vanished, failed or must wait."""
    file, lister = _checked(sources, row)
    try:
        now = lister.signature(file)
        if now != list(row.mark.seen):
            state.unsettle(row.uri, owner, gen, now)  # changed since it settled (or gone): look again
            return None
        outcome = _take(root, getattr(lister, "conn", None), file, budget, log)
    except OSError as exc:  # unreadable, vanished, a failed download (RemoteError)
        log.warning(f"source {sources.by_key[row.source].name}: {file.uri}: {getattr(exc, 'strerror', None) or exc}; looking again later")
        state.release(row.uri, owner, gen)
        if isinstance(exc, RemoteError) and ("authentication refused" in str(exc) or "host key" in str(exc) or "cannot connect" in str(exc)):
            sources.failed.add(row.source)
        return None
    if outcome is None:
        state.release(row.uri, owner, gen)
        return None
    return Arrival(file, outcome, outcome.status in ("new", "changed") or (row.resumed and outcome.status == "unchanged"))


def _take_videos(root, state, sources: _Sources, owner: str, gen: int, now_s: float, policy: IntakePolicy, budget: _Budget, log, track: bool, room) -> list[Arrival]:
    """Arrived videos, oldest first, until a cap, the budget or the backlog runs out;
    ``room()`` (asked only when something waits) caps the runs further."""
    arrivals, tried, runs, max_runs = [], set(), 0, policy.max_runs
    while len(tried) < policy.max_registrations and runs < max_runs and not budget.exhausted():
        keys = [k for k in sources.by_key if k not in sources.failed]
        batch = [r for r in state.backlog(keys, policy.max_registrations + len(tried), VIDEO) if r.uri not in tried]
        if not batch:
            break
        if room is not None:
            max_runs, room = min(max_runs, room()), None
        for row in batch:
            if len(tried) >= policy.max_registrations or runs >= max_runs or budget.exhausted():
                break
            if row.source in sources.failed or not state.claim(row, owner, gen, now_s):
                continue
            tried.add(row.uri)
            arrival = _take_one(root, state, sources, row, owner, gen, budget, log)
            if arrival is None:
                continue
            reg = arrival.outcome.registration
            state.mark_taken(row.uri, arrival.file.signature, reg.key, owner, gen, track and arrival.wants_run, now_s)
            runs += arrival.wants_run
            arrivals.append(arrival)
    return arrivals


def prompt_change(state: IntakeState, sources: list[NamedSource], row: FileRow) -> PromptChange | None:
    """The prompt file of ``row`` and its video's partition (None for a source no longer watched)."""
    source = next((s for s in sources if source_key(s) == row.source), None)
    if source is None:
        return None
    file = SourceFile(row.uri, row.fs_path, *(row.mark.seen or [0, 0]), source.farm_hint)
    return PromptChange(file, state.partition_in_folder(row.source, row.folder, video_stem_of_prompt_file(row.fs_path)))


def _take_prompts(state, sources: _Sources, owner: str, gen: int, now_s: float, track: bool) -> list[PromptChange]:
    taken = []
    for row in state.backlog(list(sources.by_key), PROMPT_BATCH, PROMPTS):
        if state.claim(row, owner, gen, now_s):
            change = prompt_change(state, list(sources.by_key.values()), row)
            state.mark_taken(row.uri, change.file.signature, change.partition_key, owner, gen, track, now_s)
            taken.append(change)
    return taken


def watch_sources(
    root: StorageRoot,
    sources: list[NamedSource],
    state: IntakeState,
    cursor: IntakeCursor,
    now_s: float,
    policy: IntakePolicy,
    log,
    force_full: bool = False,
    track_requests: bool = True,
    room: Callable[[], int] | None = None,
) -> Watch:
    """One tick. ``cursor`` (the last stored one) is not changed: the next is in the
    result. ``force_full``: sweep every source now (the nightly catch-up).
    ``track_requests``: run requests reach Dagster with the returned cursor (the sensor);
    otherwise they count as delivered at once. ``room``: how many runs the queue takes
    now (asked only when files wait to be taken)."""
    cursor = IntakeCursor.parse(cursor.dumps()) if cursor.legacy is None else dataclasses.replace(cursor, sources=dict(cursor.sources))
    gen = state.next_generation()
    tick = _Sources(sources)
    try:
        if cursor.legacy is not None:
            _migrate(state, cursor, tick, now_s, recorded_seconds(policy.patterns), log)
        if cursor.owner:
            state.confirm_delivered(cursor.owner, cursor.gen)
        else:
            cursor.owner = uuid.uuid4().hex[:16]
        state.release_stale_claims(now_s)
        again = state.undelivered(cursor.owner, gen) if track_requests else []
        state.requested_again([r.uri for r in again], cursor.owner, gen)
        budget = _Budget(time.monotonic() + policy.budget_s)
        looks = _look_all(state, tick, cursor, gen, now_s, policy, force_full, log)
        arrivals = _take_videos(root, state, tick, cursor.owner, gen, now_s, policy, budget, log, track_requests, room)
        prompts = _take_prompts(state, tick, cursor.owner, gen, now_s, track_requests)
    finally:
        tick.close()
    cursor.gen = gen
    return Watch(arrivals, prompts, again, cursor, state.counts(list(tick.by_key)), looks, tick.calls())

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
