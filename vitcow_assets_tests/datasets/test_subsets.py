"""Efficiency subsets: nested across sizes, stratified at every size, tracks together, seeded."""

from collections import Counter

import pytest

from vitcow_assets.datasets.inputs import DatasetInputError
from vitcow_assets.datasets.selection import resolve_labels
from vitcow_assets.datasets.splits import SplitSettings, behaviour_splits
from vitcow_assets.datasets.subsets import efficiency_subsets
from vitcow_assets_tests.datasets.synthetic_labels import shuffled

SIZES = (40, 60, 80, 120)


@pytest.fixture(scope="module")
def train(labels, catalog, taxonomy, trims):
    crops = resolve_labels(labels, catalog, taxonomy, trims).crops
    return behaviour_splits(crops, SplitSettings(test_farms=("FarmA",))).split("train")


def test_subsets_are_nested_within_each_repeat(train):
    subsets = efficiency_subsets(train, SIZES, repeats=3, seed=42)
    for repeat in (1, 2, 3):
        members = [set(subsets.subset(repeat, s)["crop_id"].to_pylist()) for s in SIZES]
        assert [len(m) for m in members] == list(SIZES)
        assert all(small < big for small, big in zip(members, members[1:]))
    assert subsets.table.num_rows == 3 * sum(SIZES)


def test_every_size_holds_each_class_in_proportion(train):
    whole = Counter(train["class_name"].to_pylist())
    subsets = efficiency_subsets(train, SIZES, repeats=2, seed=42)
    for repeat in (1, 2):
        for size in SIZES:
            got = Counter(subsets.subset(repeat, size)["class_name"].to_pylist())
            for cls, n in whole.items():
                assert abs(got[cls] - size * n / train.num_rows) <= 1.0 + 1e-9, (repeat, size, cls)


def test_a_subset_splits_at_most_one_track_per_class(train):
    track_size = Counter(zip(train["class_name"].to_pylist(), train["video_id"].to_pylist(), train["track_id"].to_pylist()))
    subsets = efficiency_subsets(train, SIZES, repeats=2, seed=42)
    for repeat in (1, 2):
        for size in SIZES:
            rows = subsets.subset(repeat, size).to_pylist()
            taken = Counter((r["class_name"], r["video_id"], r["track_id"]) for r in rows)
            partial = Counter(key[0] for key, n in taken.items() if n < track_size[key])
            assert max(partial.values(), default=0) <= 1


def test_repeats_differ_and_the_seed_reproduces_them(train):
    a = efficiency_subsets(train, SIZES, repeats=2, seed=42)
    assert set(a.subset(1, 60)["crop_id"].to_pylist()) != set(a.subset(2, 60)["crop_id"].to_pylist())
    assert efficiency_subsets(shuffled(train), SIZES, repeats=2, seed=42).table.equals(a.table)
    other = efficiency_subsets(train, SIZES, repeats=2, seed=1)
    assert set(other.subset(1, 60)["crop_id"].to_pylist()) != set(a.subset(1, 60)["crop_id"].to_pylist())


def test_sizes_beyond_the_training_split_are_refused_or_capped(train):
    n = train.num_rows
    with pytest.raises(DatasetInputError, match=f"size {n + 1} is larger than the training split \\({n} crops\\); set cap"):
        efficiency_subsets(train, [10, n + 1])
    capped = efficiency_subsets(train, [10, n + 1], repeats=1, cap=True)
    assert capped.notes == (f"size {n + 1} capped to the {n} training crops",)
    assert set(capped.subset(1, n + 1)["crop_id"].to_pylist()) == set(train["crop_id"].to_pylist())
    with pytest.raises(DatasetInputError, match="positive"):
        efficiency_subsets(train, [0, 10])
    with pytest.raises(DatasetInputError, match="repeats"):
        efficiency_subsets(train, [10], repeats=0)
