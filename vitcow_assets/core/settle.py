"""When a file has finished arriving: one rule and one cursor for every source and entry point.

**The rule.** A file has arrived when two looks at it saw the same signature (size and
modification time) and, at the later look, it was last modified at least ``settle_seconds``
ago. The first condition catches a writer that is still appending (whatever the clocks
say); the second a writer that paused between two looks. S3 objects appear only once
uploaded, SFTP and local files grow while being written: the same rule holds for all.

**One file's state.** ``judge`` is the rule for one file whose last look is remembered
elsewhere (the landing sensor keeps one row per file in the intake state,
``footage.intake_state``): ``waiting`` (first seen or changed since the last look, or
modified too recently), ``arrived`` (settled, not yet taken: the backlog), ``claimed``
(being taken), ``taken`` (taken with the signature it has now).

**The cursor.** ``SettleCursor`` remembers, per file (by URI), the signature of its last
look while it is still arriving (``seen``) and the signature it had when it was taken
(``done``), so a file triggers once, and again only when its bytes change. The landing
sensor kept it between ticks as JSON in its cursor until that grew with the tree (an old
cursor is read once, ``footage.intake_state``); ``vitcow run`` keeps one for the looks it
takes a second apart. Files are anything with
``uri``, ``signature`` and ``mtime_ns`` (``footage.listing.SourceFile``).

Pure: no clock, no file access; ``now_s`` is passed in.
"""

import dataclasses
from collections.abc import Iterable
from typing import Protocol


class Observed(Protocol):
    uri: str
    mtime_ns: int

    @property
    def signature(self) -> list[int]: ...


def has_arrived(signature: list[int], previous: list[int] | None, mtime_ns: int, now_s: float, settle_seconds: float) -> bool:
    """The rule above: the same ``signature`` at the previous look, last modified long enough ago."""
    return previous is not None and list(previous) == list(signature) and now_s - mtime_ns / 1e9 >= settle_seconds


WAITING, ARRIVED, CLAIMED, TAKEN = "waiting", "arrived", "claimed", "taken"
FILE_STATES = (WAITING, ARRIVED, CLAIMED, TAKEN)


@dataclasses.dataclass(frozen=True)
class FileMark:
    """What is remembered of one file: its state, the signature of its last look (``seen``)
    and the one it had when it was last taken (``taken``)."""

    state: str
    seen: list[int] | None = None
    taken: list[int] | None = None


def judge(mark: FileMark | None, signature: list[int], mtime_ns: int, now_s: float, settle_seconds: float) -> FileMark:
    """The mark of a file a look found with ``signature`` (``mark``: what the last look left;
    None for a file never seen). A file being taken keeps its claim while it does not change."""
    signature = list(signature)
    if mark is not None and mark.taken is not None and list(mark.taken) == signature:
        return FileMark(TAKEN, mark.seen, mark.taken)
    previous = mark.seen if mark is not None else None
    if mark is not None and mark.state == CLAIMED and previous is not None and list(previous) == signature:
        return mark
    if has_arrived(signature, previous, mtime_ns, now_s, settle_seconds):
        return FileMark(ARRIVED, signature, mark.taken if mark else None)
    return FileMark(WAITING, signature, mark.taken if mark else None)


@dataclasses.dataclass
class Look:
    """What one look found: files that have arrived since they were last taken, and files
    still arriving (first seen, changed since the last look, or modified too recently)."""

    arrived: list
    waiting: list


@dataclasses.dataclass
class SettleCursor:
    seen: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    done: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def look(self, files: Iterable[Observed], now_s: float, settle_seconds: float) -> Look:
        """Sort ``files`` (everything a source holds now) into arrived and waiting; files no
        longer there are forgotten. Arrived files are not marked taken: call ``taken``."""
        arrived, waiting, present = [], [], set()
        for file in files:
            present.add(file.uri)
            if self.done.get(file.uri) == list(file.signature):
                continue
            if has_arrived(file.signature, self.seen.get(file.uri), file.mtime_ns, now_s, settle_seconds):
                arrived.append(file)
            else:
                waiting.append(file)
                self.seen[file.uri] = list(file.signature)
        self.seen = {uri: sig for uri, sig in self.seen.items() if uri in present}
        self.done = {uri: sig for uri, sig in self.done.items() if uri in present}
        return Look(arrived, waiting)

    def taken(self, file: Observed) -> None:
        """``file`` was taken with this signature: it triggers again only when it changes."""
        self.done[file.uri] = list(file.signature)
        self.seen.pop(file.uri, None)

    def postpone(self, file: Observed) -> None:
        """``file`` arrived but could not be taken (unreadable, out of time): look again later."""
        self.seen[file.uri] = list(file.signature)

    def as_dict(self) -> dict:
        return {"seen": dict(sorted(self.seen.items())), "done": dict(sorted(self.done.items()))}

    @classmethod
    def from_dict(cls, data: dict | None) -> "SettleCursor":
        data = data or {}
        return cls(dict(data.get("seen", {})), dict(data.get("done", {})))
