"""Agreement between raters: Cohen's kappa for two, Fleiss' kappa for many, and accuracy
against reference (gold) answers.

Cohen's kappa compares two raters on the same items: ``(observed - chance) / (1 - chance)``,
chance from each rater's own category frequencies. Fleiss' kappa compares any number of
raters per item (at least two each; items may have different numbers of raters: each
item's agreement is the share of agreeing rater pairs, and chance comes from the pooled
category frequencies, Fleiss 1971 with per-item rater counts). Both are None where chance
agreement is total (every rating the same category) or there is nothing to compare. With
two raters per item Fleiss' kappa is Scott's pi, not Cohen's kappa.

Pure: lists in, numbers out; no project imports.
"""

import dataclasses
from collections import Counter
from collections.abc import Hashable, Sequence


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' categories for the same items (``a[i]``, ``b[i]``)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: both raters need the same items")
    if not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    count_a, count_b = Counter(a), Counter(b)
    chance = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


@dataclasses.dataclass(frozen=True)
class FleissKappa:
    """Fleiss' kappa over ``items`` items rated by ``ratings`` ratings in all."""

    items: int
    ratings: int
    #: mean per-item agreement (share of agreeing rater pairs)
    observed: float | None
    #: agreement expected from the pooled category frequencies
    chance: float | None
    kappa: float | None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> FleissKappa:
    """Fleiss' kappa of ``items``, each the categories its raters gave (items with fewer
    than two ratings are left out)."""
    rated = [list(item) for item in items if len(item) >= 2]
    if not rated:
        return FleissKappa(0, 0, None, None, None)
    pooled: Counter = Counter()
    per_item = []
    for item in rated:
        counts = Counter(item)
        n = len(item)
        pooled.update(counts)
        per_item.append((sum(c * c for c in counts.values()) - n) / (n * (n - 1)))
    total = sum(pooled.values())
    observed = sum(per_item) / len(per_item)
    chance = sum((c / total) ** 2 for c in pooled.values())
    kappa = None if chance >= 1.0 else (observed - chance) / (1.0 - chance)
    return FleissKappa(len(rated), total, observed, chance, kappa)


@dataclasses.dataclass(frozen=True)
class GoldScore:
    """One rater against the reference answers of the items they rated."""

    items: int
    correct: int
    #: correct / items; None without items
    accuracy: float | None
    #: (reference, given) -> items
    confusion: dict[tuple[Hashable, Hashable], int]

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["confusion"] = [{"gold": g, "given": x, "items": n} for (g, x), n in sorted(self.confusion.items(), key=str)]
        return data


def gold_score(reference: Sequence[Hashable], given: Sequence[Hashable]) -> GoldScore:
    """Accuracy and confusion of ``given`` answers against ``reference`` answers (item by item)."""
    if len(reference) != len(given):
        raise ValueError("gold_score: one answer per reference item")
    confusion = Counter(zip(reference, given))
    correct = sum(n for (g, x), n in confusion.items() if g == x)
    return GoldScore(len(given), correct, correct / len(given) if given else None, dict(confusion))
