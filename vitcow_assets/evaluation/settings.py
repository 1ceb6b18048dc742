"""How retrieval and the linear probe are scored: their settings dataclasses (one place per
setting: environment ``VITCOW_RETRIEVAL_<FIELD>`` and ``VITCOW_PROBE_<FIELD>``, the ``vitcow
eval`` flags, the Dagster resources and docs/configuration.md derive from them). Kept apart
from the modules that score, so that the command line's parser imports no scikit-learn.

Pure: settings dataclasses.
"""

import dataclasses

from vitcow_assets.core.settings import check, setting
from vitcow_assets.evaluation.neighbours import METRICS

#: C without validation crops to choose one (scikit-learn's default)
UNCHOSEN_C = 1.0


@dataclasses.dataclass(frozen=True)
class RetrievalSettings:
    """How retrieval is scored (environment ``VITCOW_RETRIEVAL_<FIELD>``; ``vitcow eval retrieval`` flags)."""

    ks: tuple[int, ...] = setting((1, 2, 3, 5, 10), "the k of Hit@k, comma-separated", flag="--ks")
    metrics: tuple[str, ...] = setting(METRICS, "distances, comma-separated: euclidean, cosine", flag="--metrics")
    query_fraction: float = setting(0.2, "within-farm: share of each class's tracks in a farm that query", flag="--query-fraction")
    repeats: int = setting(20, "within-farm: seeded query/index splits, averaged (mean and standard error)", flag="--repeats")
    seed: int = setting(42, "within-farm: seed of the track splits", flag="--seed")

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(sorted({int(k) for k in self.ks})))
        object.__setattr__(self, "metrics", tuple(dict.fromkeys(self.metrics)))
        check("ks", bool(self.ks) and self.ks[0] >= 1, f"ks must be positive integers, got {self.ks!r}")
        check("metrics", bool(self.metrics) and set(self.metrics) <= set(METRICS), f"metrics must be among {', '.join(METRICS)}, got {self.metrics!r}")
        check("query_fraction", 0.0 < self.query_fraction < 1.0, f"query_fraction must be between 0 and 1 (exclusive), got {self.query_fraction}")
        check("repeats", self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        check("seed", self.seed >= 0, f"seed must be >= 0, got {self.seed}")


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    """How the linear probe is fitted (environment ``VITCOW_PROBE_<FIELD>``; ``vitcow eval probe`` flags)."""

    cs: tuple[float, ...] = setting((0.001, 0.01, 0.1, 1.0, 10.0), "inverse regularisation strengths tried, comma-separated; validation balanced accuracy chooses", flag="--cs")
    max_iter: int = setting(2000, "lbfgs iterations at most per fit", flag="--max-iter")
    standardise: bool = setting(True, "standardise the embeddings on each training subset first", flag="--standardise")
    full: bool = setting(True, "also probe the whole training split (the curve's last point)", flag="--full")

    def __post_init__(self) -> None:
        object.__setattr__(self, "cs", tuple(sorted({float(c) for c in self.cs})))
        check("cs", bool(self.cs) and self.cs[0] > 0, f"cs must be positive numbers, got {self.cs!r}")
        check("max_iter", self.max_iter >= 1, f"max_iter must be >= 1, got {self.max_iter}")
