"""What the nightly catch-up asks for: the videos whose crops are missing or were made from
other bytes than those registered now, oldest recording first, no more than the run queue
has room for.

The rule for "current crops" (``crops_current``) is the one the catch-up always had: a
partition has crops when ``object_crops`` was materialized for it; they are current when
they were made from the bytes registered for it now, else (no registration) from the bytes
its latest ``raw_video`` took; with nothing known of its bytes, crops are current.

Pure: strings and numbers in, a dataclass out.
"""

import dataclasses
from collections.abc import Iterable, Mapping

#: stands for "no crops materialized" in ``made_from`` (None means crops that recorded no bytes)
NO_CROPS = object()


def crops_current(made_from, registered: str | None, raw_version: str | None) -> bool:
    """Whether a partition's crops are current: ``made_from`` is the sha256 its latest
    ``object_crops`` materialization recorded (None: none recorded; ``NO_CROPS``: never
    materialized), ``registered`` the sha256 registered for it now, ``raw_version`` the data
    version of its latest ``raw_video``."""
    if made_from is NO_CROPS:
        return False
    current = registered if registered is not None else raw_version
    if current is None:
        return True  # nothing known of the partition's bytes to compare the crops with
    return made_from is not None and made_from == current


@dataclasses.dataclass(frozen=True)
class CatchupPlan:
    """The partitions to request now (oldest first) and how many wait after them."""

    requested: list[str]
    #: partitions without current crops, not requested by this evaluation
    waiting: int

    @property
    def wanted(self) -> int:
        return len(self.requested) + self.waiting


def plan_catchup(stale: Iterable[str], recorded_s: Mapping[str, float | None], room: int) -> CatchupPlan:
    """The ``room`` partitions of ``stale`` recorded first (``recorded_s``: seconds since
    the epoch; unknown times after every known one), ties and unknowns by key."""
    order = sorted(stale, key=lambda k: (recorded_s.get(k) is None, recorded_s.get(k) or 0.0, k))
    taken = order[: max(0, room)]
    return CatchupPlan(taken, len(order) - len(taken))
