"""Which label a crop stands for: its gold reference, a reviewer's decision, or what its
annotators agree on; and when its annotators are in conflict.

The one rule that the review page (``GET /api/conflicts``), ``vitcow labels conflicts`` and
dataset resolution (``datasets.selection.resolve_labels``) share. In order:

1. a **gold** crop stands for its reference label (its annotators are measured against it,
   never counted as a conflict);
2. a **decided** crop stands for the reviewer's decision in force;
3. otherwise its annotators' current labels map to training classes (``class_of``; None:
   an exclusion such as ``Delete``): one class is **agreed**, all exclusions **excluded**,
   anything else (two classes, or a class and an exclusion) a **conflict**.

A gold label or a decision that is an exclusion excludes the crop. Rows are dicts with at
least ``label`` (fine label); the verdict keeps the rows it stands on.

Pure: dicts in, a dataclass out; no database, no taxonomy file.
"""

import dataclasses
from collections.abc import Callable, Sequence

GOLD, DECIDED, AGREED, EXCLUDED, CONFLICT = "gold", "decided", "agreed", "excluded", "conflict"
#: the snapshot's ``role`` of each kind of row
ANNOTATOR_ROLE, REVIEWER_ROLE, GOLD_ROLE = "annotator", "reviewer", "gold"
ROLES = (ANNOTATOR_ROLE, REVIEWER_ROLE, GOLD_ROLE)

ClassOf = Callable[[str], str | None]


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: str
    #: training class the crop stands for; None when excluded or in conflict
    class_name: str | None
    #: the rows the verdict stands on: the gold row, the decision, or the annotators' labels
    rows: tuple[dict, ...]

    @property
    def usable(self) -> bool:
        return self.class_name is not None


def annotator_classes(labels: Sequence[dict], class_of: ClassOf) -> set[str | None]:
    """The distinct classes (None: exclusion) of annotators' labels."""
    return {class_of(r["label"]) for r in labels}


def in_conflict(labels: Sequence[dict], class_of: ClassOf) -> bool:
    """Annotators' labels that disagree: two classes, or a class and an exclusion."""
    return len(annotator_classes(labels, class_of)) > 1


def verdict(labels: Sequence[dict], class_of: ClassOf, decision: dict | None = None, gold: dict | None = None) -> Verdict | None:
    """The verdict on one crop from its annotators' current ``labels``, the ``decision`` in
    force and its ``gold`` row (None: nothing to go on)."""
    if gold is not None:
        return Verdict(GOLD, class_of(gold["label"]), (gold,))
    if decision is not None:
        return Verdict(DECIDED, class_of(decision["label"]), (decision,))
    if not labels:
        return None
    classes = annotator_classes(labels, class_of)
    if len(classes) > 1:
        return Verdict(CONFLICT, None, tuple(labels))
    (only,) = classes
    return Verdict(AGREED if only is not None else EXCLUDED, only, tuple(labels))


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A crop whose annotators disagree, with their labels and the decision in force."""

    crop_id: str
    labels: tuple[dict, ...]
    decision: dict | None


def conflicts(labels: Sequence[dict], order: Sequence[str], class_of: ClassOf, decisions: dict[str, dict] | None = None,
              gold: set[str] | frozenset[str] = frozenset()) -> list[Conflict]:
    """The crops of ``order`` (in that order) whose annotators' current ``labels`` (rows with
    crop_id and label) are in conflict, gold crops left out; each with its decision, if any."""
    decisions = decisions or {}
    by_crop: dict[str, list[dict]] = {}
    for row in labels:
        by_crop.setdefault(row["crop_id"], []).append(row)
    out = []
    for crop_id in order:
        rows = by_crop.get(crop_id)
        if rows and crop_id not in gold and in_conflict(rows, class_of):
            out.append(Conflict(crop_id, tuple(rows), decisions.get(crop_id)))
    return out
