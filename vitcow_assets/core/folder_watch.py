"""Which folders a look at a landing source must list, and which it may pass by.

A landing tree on a farm server grows at its edge: a file per camera and hour, in the
newest folder. A look (the landing sensor's tick) need not list the rest of it:

- **A folder's modification time** (local and SFTP file systems) changes when an entry is
  added, removed or renamed in it. A folder whose time is still the one that listings saw
  ``TIME_RESOLUTION_S`` apart or more is passed by: its known subfolders are visited, its
  files are not listed. (Two listings that far apart prove nothing was added within the
  clock tick of that time: SFTP times are whole seconds, FAT's two; only differences of this
  machine's clock are used, so the server's clock may be off.) A folder holding a file
  still arriving is listed at every look (a file growing in place changes no folder's
  time).
- **Activity** (remote sources only): a folder whose subtree has seen no change for
  ``active_window_s`` is not even asked for its time between full sweeps: one round trip
  per folder adds up to minutes over a year of date folders on a distant server. S3 has no
  folder times at all: its active prefixes are listed at every look.
- **A full sweep** lists every folder, whatever its time says, and so also finds a file
  rewritten in place in an old folder. A sweep cut short by the tick's time budget goes on
  at the next look (``FolderMark.swept`` names the sweep that last listed a folder).

Pure: marks and numbers in, decisions out.
"""

import dataclasses
from collections.abc import Mapping

LIST, STAT, PASS = "list", "stat", "pass"
#: seconds between two listings that saw the same folder time before it is trusted
TIME_RESOLUTION_S = 2.0


@dataclasses.dataclass(frozen=True)
class FolderMark:
    """What the last listing of a folder left: its modification time then (None where the
    protocol has none), when a listing first saw that time (this machine's clock, s),
    whether listings far enough apart saw it, the newest change in its subtree (ns since
    the epoch), and the full sweep that last listed it."""

    mtime_ns: int | None
    since_s: float
    confirmed: bool
    active_ns: int
    swept: int


@dataclasses.dataclass(frozen=True)
class LookPlan:
    """How one look treats a source: a full sweep (``sweep``: its id) or a quick look."""

    full: bool
    sweep: int
    #: pass by folders whose subtree has been quiet for ``active_window_s`` (remote sources)
    skip_quiet: bool
    active_window_s: float


def visit(mark: FolderMark | None, plan: LookPlan, holds_unsettled: bool, now_s: float) -> str:
    """``LIST`` the folder, ``STAT`` it (list it only if ``needs_listing`` says so), or
    ``PASS`` it by (visit its known subfolders only)."""
    if mark is None:
        return LIST
    if plan.full:
        return PASS if mark.swept == plan.sweep else LIST
    if holds_unsettled:
        return LIST
    if plan.skip_quiet and now_s - mark.active_ns / 1e9 > plan.active_window_s:
        return PASS
    return STAT


def needs_listing(mark: FolderMark, mtime_ns: int | None) -> bool:
    """After a ``STAT``: list unless the time is the one listings far enough apart saw."""
    return mtime_ns is None or mark.mtime_ns != mtime_ns or not mark.confirmed


def after_listing(mark: FolderMark | None, mtime_ns: int | None, newest_file_ns: int, plan: LookPlan, now_s: float) -> FolderMark:
    """The mark a folder keeps after a listing at ``now_s`` that saw ``mtime_ns`` and files
    last modified up to ``newest_file_ns``."""
    same = mark is not None and mtime_ns is not None and mark.mtime_ns == mtime_ns
    since = mark.since_s if same else now_s
    active = max(mtime_ns or 0, newest_file_ns, mark.active_ns if mark else 0)
    swept = plan.sweep if plan.full else (mark.swept if mark else 0)
    return FolderMark(mtime_ns, since, same and now_s - since >= TIME_RESOLUTION_S, active, swept)


def raised_activity(parents: Mapping[str, str | None], active: Mapping[str, int], raised: Mapping[str, int]) -> dict[str, int]:
    """The folders whose activity rises when those in ``raised`` rose to the given values:
    each ancestor (``parents``: folder -> parent) takes the newest of its subtree."""
    out: dict[str, int] = {}
    for folder, value in raised.items():
        parent = parents.get(folder)
        while parent is not None:
            current = out.get(parent, active.get(parent, 0))
            if current >= value:
                break
            out[parent] = value
            parent = parents.get(parent)
    return out
