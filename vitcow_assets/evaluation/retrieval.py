"""Retrieval Hit@k of crop embeddings, beside its exact chance level, in two settings.

- **cross-farm**: every crop of the dataset's test split (the held-out farm) queries the
  labelled crops of the other farms (every split). One evaluation; binomial standard errors
  over the queries (``se_basis`` ``queries``; ``binomial_se``; macro: the classes' errors
  combined).
- **within-farm**: in each farm, the tracks (``(video_id, track_id)``: one animal) are split
  into queries and index, a share ``query_fraction`` of each class's tracks querying (a
  track's class: the class of most of its crops); every crop of a query track queries the
  index crops of its own farm, so no query ever sees a crop of its own track. A class with
  a single track in a farm stays in the index. Repeated ``repeats`` times, repeat ``r`` drawing
  from ``numpy.random.default_rng([seed, r])``; mean and standard error over the repeats
  (``se_basis`` ``repeats``). The repeats share the embeddings, so this error is the
  spread of the splits, not of the crops: one evaluation's binomial error bounds that.

A query hits at k when one of its k nearest index crops (``neighbours.nearest``) has its
class. Micro: the mean over the queries; macro: the mean over the queries' classes of each
class's mean. The chance columns (``chance``) are the same averages of each query's exact
chance for its own index. Euclidean and cosine are both reported.

Pure: numpy arrays and pyarrow tables in, pyarrow tables out.
"""

import dataclasses

import numpy as np
import pyarrow as pa

from vitcow_assets.core.tables import field
from vitcow_assets.evaluation.chance import class_means, hit_chance
from vitcow_assets.evaluation.neighbours import nearest
from vitcow_assets.evaluation.provenance import Provenance, with_lineage
from vitcow_assets.evaluation.settings import RetrievalSettings

SETTINGS = ("cross_farm", "within_farm")


RETRIEVAL_FIELDS = [
    field("setting", pa.string(), "cross_farm (test split queries the other farms) or within_farm (track-split queries and index per farm)"),
    field("metric", pa.string(), "euclidean or cosine"),
    field("k", pa.int32(), "the k of Hit@k"),
    field("hit_micro", pa.float64(), "share of queries with a crop of their class among their k nearest"),
    field("hit_macro", pa.float64(), "mean over the queries' classes of each class's hit share"),
    field("chance_micro", pa.float64(), "exact chance of hit_micro for the same queries and indexes"),
    field("chance_macro", pa.float64(), "exact chance of hit_macro for the same queries and indexes"),
    field("hit_micro_se", pa.float64(), "standard error of hit_micro (see se_basis)", nullable=True),
    field("hit_macro_se", pa.float64(), "standard error of hit_macro (see se_basis)", nullable=True),
    field("chance_micro_se", pa.float64(), "standard error of chance_micro over the repeats (0: one fixed split)", nullable=True),
    field("chance_macro_se", pa.float64(), "standard error of chance_macro over the repeats (0: one fixed split)", nullable=True),
    field("se_basis", pa.string(), "queries (binomial error of one evaluation) or repeats (spread of the repeats' means)"),
    field("queries", pa.float64(), "queries per evaluation (mean over the repeats)"),
    field("index_size", pa.float64(), "index crops a query searches (mean over queries and repeats)"),
    field("classes", pa.int32(), "classes among the queries (of every repeat)"),
    field("repeats", pa.int32(), "evaluations averaged"),
]


@dataclasses.dataclass(frozen=True)
class Labelled:
    """The labelled crops with their embeddings, row-aligned."""

    vectors: np.ndarray  # (N, D) float32
    classes: np.ndarray  # (N,) int
    farms: np.ndarray  # (N,) str
    tracks: np.ndarray  # (N,) str: "video_id/track_id"
    test: np.ndarray  # (N,) bool: in the dataset's test split


@dataclasses.dataclass(frozen=True)
class Queries:
    """Per query: its class, the rank of its first same-class neighbour (``kmax`` when none
    in the first ``kmax``), its index's size and its class's count in that index."""

    classes: np.ndarray
    first_hit: np.ndarray
    index_size: np.ndarray
    class_count: np.ndarray

    @staticmethod
    def concat(parts: list["Queries"]) -> "Queries":
        if not parts:
            return Queries(*(np.zeros(0, np.int64) for _ in range(4)))
        return Queries(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Queries)))


@dataclasses.dataclass(frozen=True)
class RetrievalResult:
    table: pa.Table
    notes: tuple[str, ...]


def search(labelled: Labelled, query: np.ndarray, index: np.ndarray, metric: str, kmax: int) -> Queries:
    """Positions ``query`` of ``labelled`` searching positions ``index``."""
    near = nearest(labelled.vectors[query], labelled.vectors[index], kmax, metric)
    same = labelled.classes[index][near] == labelled.classes[query][:, None]
    first = np.where(same.any(axis=1), same.argmax(axis=1), kmax)
    counts = np.bincount(labelled.classes[index], minlength=int(labelled.classes.max()) + 1)
    q_classes = labelled.classes[query]
    return Queries(q_classes, first, np.full(len(query), len(index)), counts[q_classes])


def _summary(found: Queries, k: int) -> tuple[float, float, float, float]:
    """(hit micro, hit macro, chance micro, chance macro) at ``k``."""
    hits = (found.first_hit < k).astype(np.float64)
    chance = hit_chance(found.index_size, found.class_count, k)
    return (*class_means(hits, found.classes), *class_means(chance, found.classes))


def binomial_se(hits: np.ndarray) -> float:
    """Standard error of the share of ``hits`` (0/1): the binomial error at the share
    smoothed by one hit and one miss, ``p~ = (h + 1) / (n + 2)``, so that a class whose
    few queries all hit (or all miss) still has an error."""
    smoothed = (hits.sum() + 1.0) / (hits.size + 2.0)
    return float(np.sqrt(smoothed * (1.0 - smoothed) / hits.size))


def _query_errors(found: Queries, k: int) -> tuple[float | None, float | None]:
    """Standard errors of hit micro and macro over the queries of one evaluation."""
    hits = (found.first_hit < k).astype(np.float64)
    if hits.size == 0:
        return None, None
    per_class = [binomial_se(hits[found.classes == c]) for c in np.unique(found.classes)]
    return binomial_se(hits), float(np.sqrt(np.sum(np.square(per_class))) / len(per_class))


def cross_farm(labelled: Labelled, metric: str, kmax: int) -> Queries:
    """Every test crop, farm by farm, searching the labelled crops of the other farms."""
    parts = []
    for farm in sorted(set(labelled.farms[labelled.test])):
        query = np.flatnonzero(labelled.test & (labelled.farms == farm))
        index = np.flatnonzero(labelled.farms != farm)
        if len(index):
            parts.append(search(labelled, query, index, metric, kmax))
    return Queries.concat(parts)


def track_classes(tracks: np.ndarray, classes: np.ndarray) -> dict[str, int]:
    """Each track's class: the class of most of its crops (ties: the lower class index)."""
    out = {}
    for track in np.unique(tracks):
        counts = np.bincount(classes[tracks == track])
        out[str(track)] = int(counts.argmax())
    return out


def query_tracks(tracks: np.ndarray, classes: np.ndarray, fraction: float, rng: np.random.Generator) -> set[str]:
    """The tracks that query: per class (of ``track_classes``), ``fraction`` of its tracks
    (rounded, at least 1 and at most all but one), drawn from ``rng``; none of a class on
    a single track."""
    by_class: dict[int, list[str]] = {}
    for track, cls in sorted(track_classes(tracks, classes).items()):
        by_class.setdefault(cls, []).append(track)
    chosen: set[str] = set()
    for cls in sorted(by_class):
        members = by_class[cls]
        if len(members) < 2:
            continue
        count = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        chosen.update(members[i] for i in rng.permutation(len(members))[:count])
    return chosen


def within_farm_split(labelled: Labelled, farm: str, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(query positions, index positions) of one farm, split by track."""
    rows = np.flatnonzero(labelled.farms == farm)
    chosen = query_tracks(labelled.tracks[rows], labelled.classes[rows], fraction, rng)
    is_query = np.isin(labelled.tracks[rows], sorted(chosen))
    return rows[is_query], rows[~is_query]


def within_farm(labelled: Labelled, metric: str, kmax: int, fraction: float, seed: int, repeat: int) -> Queries:
    """One repeat: every farm's query tracks searching the farm's index tracks."""
    rng = np.random.default_rng([seed, repeat])
    parts = []
    for farm in sorted(set(labelled.farms)):
        query, index = within_farm_split(labelled, farm, fraction, rng)
        if len(query) and len(index):
            parts.append(search(labelled, query, index, metric, kmax))
    return Queries.concat(parts)


def _row(setting: str, metric: str, k: int, values: dict) -> dict:
    return {"setting": setting, "metric": metric, "k": k, **values}


def _cross_rows(labelled: Labelled, metric: str, ks: tuple[int, ...]) -> list[dict]:
    found = cross_farm(labelled, metric, max(ks))
    if found.classes.size == 0:
        return []
    rows = []
    for k in ks:
        hit_micro, hit_macro, chance_micro, chance_macro = _summary(found, k)
        micro_se, macro_se = _query_errors(found, k)
        rows.append(_row("cross_farm", metric, k, {
            "hit_micro": hit_micro, "hit_macro": hit_macro, "chance_micro": chance_micro, "chance_macro": chance_macro,
            "hit_micro_se": micro_se, "hit_macro_se": macro_se, "chance_micro_se": 0.0, "chance_macro_se": 0.0, "se_basis": "queries",
            "queries": float(found.classes.size), "index_size": float(found.index_size.mean()),
            "classes": int(np.unique(found.classes).size), "repeats": 1,
        }))
    return rows


def _mean_se(values: list[float]) -> tuple[float, float | None]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1) / np.sqrt(array.size)) if array.size > 1 else None)


def _within_rows(labelled: Labelled, metric: str, settings: RetrievalSettings) -> list[dict]:
    kmax = max(settings.ks)
    repeats = [within_farm(labelled, metric, kmax, settings.query_fraction, settings.seed, r) for r in range(1, settings.repeats + 1)]
    repeats = [r for r in repeats if r.classes.size]
    if not repeats:
        return []
    rows = []
    for k in settings.ks:
        summaries = np.array([_summary(r, k) for r in repeats])
        (hit_micro, hit_micro_se), (hit_macro, hit_macro_se), (chance_micro, chance_micro_se), (chance_macro, chance_macro_se) = (
            _mean_se(list(summaries[:, j])) for j in range(4)
        )
        rows.append(_row("within_farm", metric, k, {
            "hit_micro": hit_micro, "hit_macro": hit_macro, "chance_micro": chance_micro, "chance_macro": chance_macro,
            "hit_micro_se": hit_micro_se, "hit_macro_se": hit_macro_se, "chance_micro_se": chance_micro_se, "chance_macro_se": chance_macro_se,
            "se_basis": "repeats", "queries": float(np.mean([r.classes.size for r in repeats])),
            "index_size": float(np.concatenate([r.index_size for r in repeats]).mean()),
            "classes": int(np.unique(np.concatenate([r.classes for r in repeats])).size), "repeats": len(repeats),
        }))
    return rows


def _notes(labelled: Labelled, table: pa.Table) -> list[str]:
    notes = []
    done = set(table["setting"].to_pylist())
    if "cross_farm" not in done:
        notes.append("cross-farm: no test crop has an index (no test split, or no other farm)")
    if "within_farm" not in done:
        notes.append("within-farm: no farm has two tracks of one class (nothing can query its own farm)")
    return notes


def evaluate_retrieval(labelled: Labelled, settings: RetrievalSettings, provenance: Provenance) -> RetrievalResult:
    """Every setting, metric and k (``RETRIEVAL_FIELDS`` with the lineage columns)."""
    if labelled.vectors.shape[0] != labelled.classes.shape[0]:
        raise ValueError("retrieval: embeddings and labels are not row-aligned")
    rows = []
    for metric in settings.metrics:
        rows += _cross_rows(labelled, metric, settings.ks) + _within_rows(labelled, metric, settings)
    table = with_lineage(rows, RETRIEVAL_FIELDS, provenance)
    return RetrievalResult(table, tuple(_notes(labelled, table)))


def labelled_from(splits: pa.Table, vectors: np.ndarray) -> Labelled:
    """The labelled crops of a dataset's splits table (``class_index``, ``farm``,
    ``video_id``, ``track_id``, ``split``) with their embeddings (row-aligned)."""
    cols = splits.select(["class_index", "farm", "video_id", "track_id", "split"]).to_pydict()
    tracks = np.array([f"{v}/{t}" for v, t in zip(cols["video_id"], cols["track_id"])], dtype=object)
    return Labelled(
        np.asarray(vectors, np.float32), np.array(cols["class_index"], np.int64), np.array(cols["farm"], dtype=object),
        tracks, np.array([s == "test" for s in cols["split"]], dtype=bool),
    )
