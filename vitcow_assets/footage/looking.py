"""One look at one landing source: walk what may have changed, record what it holds.

The walk starts at the source's root and goes down through the folders the intake state
knows and those the listings find. ``core.folder_watch`` decides, folder by folder, whether
to list it, to ask for its modification time first, or to pass it by; every listing is
judged file by file with the settle rule (``core.settle.judge``) and committed as one
transaction per folder where anything changed (``footage.intake_state``); what the listing
left of the folder itself is saved after its files, in batches. A walk that runs out of time stops
between folders; a full sweep cut short goes on from where it was at the next look.

No Dagster; nothing is hashed, downloaded or registered here (``footage.intake`` takes).
"""

import collections
import dataclasses
import time
from collections.abc import Callable

from vitcow_assets.core.folder_watch import LIST, PASS, LookPlan, after_listing, needs_listing, raised_activity, visit
from vitcow_assets.footage.folders import Listing
from vitcow_assets.footage.intake_state import PROMPTS, VIDEO, FolderRow, IntakeState
from vitcow_assets.remote.filesystems import RemoteError


#: folder marks written per transaction
FOLDER_BATCH = 500


@dataclasses.dataclass
class LookReport:
    """What one look did: folders listed, passed by and gone; whether it got to the end."""

    listed: int = 0
    passed: int = 0
    gone: int = 0
    complete: bool = True


def look(
    state: IntakeState,
    source: str,
    folders,
    plan: LookPlan,
    now_s: float,
    settle_seconds: float,
    recorded_s: Callable[[object], int],
    deadline: float,
) -> LookReport:
    """Walk ``folders`` (a ``footage.folders`` lister) for ``source`` (its key in the state)
    until done or ``deadline`` (``time.monotonic()``). Raises the lister's errors
    (``RemoteError``) for the caller to skip the source this time."""
    report = LookReport()
    if not folders.root_exists():
        state.forget_source(source)
        return report
    known = state.folder_rows(source)
    unsettled = state.unsettled_folders(source)
    children = collections.defaultdict(list)
    for row in known.values():
        if row.parent is not None:
            children[row.parent].append(row.path)
    raised: dict[str, int] = {}
    marks: list[FolderRow] = []  # saved in batches, each after its folders' files
    parents = {path: row.parent for path, row in known.items()}
    queue = collections.deque([(folders.root, None, None)])
    while queue:
        if time.monotonic() > deadline:
            report.complete = False
            break
        path, parent, time_from_parent = queue.popleft()
        row = known.get(path)
        action = visit(row.mark if row else None, plan, path in unsettled, now_s)
        if action == PASS:
            report.passed += 1
            queue.extend((child, path, None) for child in children.get(path, ()))
            continue
        try:
            mtime = time_from_parent if time_from_parent is not None else _folder_time(folders)(path)
            if action != LIST and not needs_listing(row.mark, mtime):
                report.passed += 1
                queue.extend((child, path, None) for child in children.get(path, ()))
                continue
            listed_at = time.time()  # this machine's clock: only its differences count
            listing = folders.list_folder(path)
        except FileNotFoundError:
            state.forget_folders(source, [path])
            report.gone += 1
            continue
        except RemoteError:
            raise  # the source is skipped this time
        except OSError:  # a local folder this process may not look into: as it was
            report.passed += 1
            continue
        report.listed += 1
        newest = max((f.mtime_ns for f in listing.videos + listing.prompts), default=0)
        mark = after_listing(row.mark if row else None, mtime, newest, plan, listed_at)
        state.record_folder(source, path, _listed(listing), now_s, settle_seconds, recorded_s)
        parents[path] = parent
        if row is None or mark != row.mark:
            marks.append(FolderRow(path, parent, mark))
            if len(marks) >= FOLDER_BATCH:
                state.save_folders(source, marks, now_s)
                marks.clear()
        if row is None or mark.active_ns > row.mark.active_ns:
            raised[path] = mark.active_ns
        gone = set(children.get(path, ())) - set(listing.folders)
        if gone:
            state.forget_folders(source, sorted(gone))
            report.gone += len(gone)
        queue.extend((sub, path, sub_time) for sub, sub_time in listing.folders.items())
    state.save_folders(source, marks, now_s)
    _raise_activity(state, source, known, parents, raised)
    return report


def _folder_time(folders) -> Callable[[str], int | None]:
    return folders.folder_time if folders.has_folder_times else (lambda path: None)


def _listed(listing: Listing) -> list[tuple[str, object]]:
    return [(VIDEO, f) for f in listing.videos] + [(PROMPTS, f) for f in listing.prompts]


def _raise_activity(state: IntakeState, source: str, known: dict[str, FolderRow], parents: dict, raised: dict[str, int]) -> None:
    """Ancestors of folders that changed take the newest activity of their subtree."""
    if not raised:
        return
    active = {path: row.mark.active_ns for path, row in known.items()}
    for path, value in raised.items():
        active[path] = max(active.get(path, 0), value)
    state.save_activity(source, raised_activity(parents, active, raised))
