"""Retrieval on synthetic embeddings with known structure, on a dataset built by the real
pipeline: separable classes hit 1.0, random embeddings hit the exact chance level within its
standard error, and within-farm no query ever sees its own track (the seed split per clip,
so one animal's clips sat on both sides)."""

import numpy as np
import pytest

from vitcow_assets.evaluation.chance import hit_chance_exact
from vitcow_assets.evaluation.inputs import read_dataset
from vitcow_assets.evaluation.provenance import Provenance
from vitcow_assets.evaluation.retrieval import (
    evaluate_retrieval, labelled_from, query_tracks, search, within_farm, within_farm_split,
)
from vitcow_assets.evaluation.settings import RetrievalSettings
from vitcow_assets_tests.evaluation.synthetic_site import TEST_FARM, vectors

PROVENANCE = Provenance("f" * 16, "0.1.0+gtest", "a" * 64)
SETTINGS = RetrievalSettings(repeats=10)


def _labelled(site, kind, seed=0):
    export = read_dataset(site["export"])
    catalog = site["catalog"]
    matrix = vectors(catalog, site["built"].splits.table, kind, seed)
    position = {c: i for i, c in enumerate(catalog["crop_id"].to_pylist())}
    rows = [position[c] for c in export.splits["crop_id"].to_pylist()]
    return export, labelled_from(export.splits, matrix[rows])


def _rows(table, setting, metric):
    return {r["k"]: r for r in table.to_pylist() if r["setting"] == setting and r["metric"] == metric}


def test_separable_embeddings_hit_every_time_and_the_chance_line_is_beside_them(site):
    """Cross-farm every query hits at k=1. Within-farm every query whose class the farm's
    index holds hits at k=1; a query whose class only its own track shows in its farm (an
    animal that changed behaviour) cannot hit, and its chance is 0 too."""
    _, labelled = _labelled(site, "separable")
    table = evaluate_retrieval(labelled, SETTINGS, PROVENANCE).table
    assert table.num_rows == 2 * 2 * 5  # metrics x settings x k
    for row in table.to_pylist():
        if row["setting"] == "cross_farm":
            assert row["hit_micro"] == 1.0 and row["hit_macro"] == 1.0
        assert row["hit_micro"] >= 0.99 and 0.0 < row["chance_micro"] < 1.0 and 0.0 < row["chance_macro"] < 1.0
    for repeat in range(1, 21):
        found = within_farm(labelled, "cosine", 10, 0.2, 42, repeat)
        answerable = found.class_count > 0
        assert np.all(found.first_hit[answerable] == 0) and np.all(found.first_hit[~answerable] == 10)
        assert row["dataset_fingerprint"] == "f" * 16 and row["checkpoint_sha256"] == "a" * 64 and row["code_version"]
    chance = [r["chance_micro"] for r in _rows(table, "cross_farm", "cosine").values()]
    assert chance == sorted(chance) and chance[0] < 0.5  # grows with k, far below 1.0 at k=1


def test_cross_farm_chance_is_computed_exactly_from_the_class_mix(site):
    """Test-farm crops query every crop of the other farms; chance per query by fractions."""
    export, labelled = _labelled(site, "random")
    table = evaluate_retrieval(labelled, SETTINGS, PROVENANCE).table
    farms, classes = np.array(export.splits["farm"].to_pylist()), np.array(export.splits["class_index"].to_pylist())
    index_counts = np.bincount(classes[farms != TEST_FARM], minlength=len(export.classes))
    queries = classes[farms == TEST_FARM]
    n = int((farms != TEST_FARM).sum())
    for k, row in _rows(table, "cross_farm", "euclidean").items():
        per_query = [hit_chance_exact(n, int(index_counts[c]), k) for c in queries]
        assert row["chance_micro"] == pytest.approx(float(sum(per_query) / len(per_query)), abs=1e-12)
        per_class = [sum(p for p, c in zip(per_query, queries) if c == cls) / int((queries == cls).sum()) for cls in sorted(set(queries))]
        assert row["chance_macro"] == pytest.approx(float(sum(per_class) / len(per_class)), abs=1e-12)
        assert row["queries"] == len(queries) and row["index_size"] == n


def test_random_embeddings_hit_the_chance_level_within_its_standard_error(site):
    """Cross-farm, each draw's Hit@k (micro and macro) lies within three of its standard
    errors (over the queries) of the chance level. Within-farm the repeats share one draw's
    embeddings (their spread is the split's, not the embeddings'), so each draw's mean over
    the repeats is held to three binomial standard errors of one evaluation's queries."""
    worst = 0.0
    for seed in range(4):
        _, labelled = _labelled(site, "random", seed)
        table = evaluate_retrieval(labelled, RetrievalSettings(repeats=5), PROVENANCE).table
        for metric in ("euclidean", "cosine"):
            for k, row in _rows(table, "cross_farm", metric).items():
                assert row["se_basis"] == "queries"
                for average in ("micro", "macro"):
                    z = abs(row[f"hit_{average}"] - row[f"chance_{average}"]) / row[f"hit_{average}_se"]
                    assert z <= 3, (seed, metric, k, average, row)
                    worst = max(worst, z)
            for k, row in _rows(table, "within_farm", metric).items():
                assert row["se_basis"] == "repeats" and row["repeats"] == 5
                binomial = np.sqrt(row["chance_micro"] * (1 - row["chance_micro"]) / row["queries"])
                assert abs(row["hit_micro"] - row["chance_micro"]) <= 3 * binomial, (seed, metric, k, row)
    assert worst > 0.1  # the hits are measured, not copied from the chance column


def test_within_farm_queries_never_share_a_track_with_their_index(site):
    _, labelled = _labelled(site, "random")
    for repeat in range(1, 30):
        rng = np.random.default_rng([7, repeat])
        for farm in sorted(set(labelled.farms)):
            query, index = within_farm_split(labelled, farm, 0.2, rng)
            assert len(query) and len(index)
            assert not set(labelled.tracks[query]) & set(labelled.tracks[index])
            assert set(labelled.farms[query]) == set(labelled.farms[index]) == {farm}
            assert len(query) + len(index) == int((labelled.farms == farm).sum())


def test_an_animal_seen_on_both_sides_would_look_perfect_the_track_split_does_not(site):
    """'track' embeddings: every crop of an animal at one point, classes unrelated. Split per
    crop (the seed's way), a query finds its own track's twin: Hit@1 near 1. Split by track,
    Hit@1 is at the chance level."""
    _, labelled = _labelled(site, "track")
    rng = np.random.default_rng(0)
    per_crop = rng.random(labelled.classes.size) < 0.2
    leaked = search(labelled, np.flatnonzero(per_crop), np.flatnonzero(~per_crop), "euclidean", 1)
    assert (leaked.first_hit < 1).mean() > 0.8
    row = _rows(evaluate_retrieval(labelled, SETTINGS, PROVENANCE).table, "within_farm", "euclidean")[1]
    binomial = np.sqrt(row["chance_micro"] * (1 - row["chance_micro"]) / row["queries"])
    assert abs(row["hit_micro"] - row["chance_micro"]) <= 3 * binomial
    assert row["hit_micro"] < 0.6


def test_query_tracks_take_a_share_of_each_class_and_keep_single_track_classes_in_the_index():
    tracks = np.array(["a", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"])
    classes = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])  # class 0 on ten tracks, class 1 on one
    chosen = query_tracks(tracks, classes, 0.2, np.random.default_rng(1))
    assert len(chosen) == 2 and "k" not in chosen


def test_the_same_inputs_give_the_same_table(site):
    _, labelled = _labelled(site, "random")
    first = evaluate_retrieval(labelled, SETTINGS, PROVENANCE).table
    assert first.equals(evaluate_retrieval(labelled, SETTINGS, PROVENANCE).table)
