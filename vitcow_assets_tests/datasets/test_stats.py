"""Dataset statistics, annotator agreement and the class chart."""

import base64
from collections import Counter, defaultdict

import cv2
import numpy as np
import pyarrow as pa
import pytest

from vitcow_assets.datasets.chart import SPLIT_COLOURS, class_chart, count_ticks, nice_ceiling
from vitcow_assets.datasets.selection import resolve_labels
from vitcow_assets.datasets.splits import SplitSettings, behaviour_splits
from vitcow_assets.core.agreement import cohen_kappa, fleiss_kappa
from vitcow_assets.datasets.stats import EXCLUDED, dataset_stats


@pytest.fixture(scope="module")
def splits(labels, catalog, taxonomy, trims):
    crops = resolve_labels(labels, catalog, taxonomy, trims).crops
    return behaviour_splits(crops, SplitSettings(test_farms=("FarmA",))).table


def test_hours_crops_and_animals_per_split_farm_and_class(splits, taxonomy):
    stats = dataset_stats(splits, taxonomy.classes)
    rows = splits.to_pylist()
    for r in stats.by_split.to_pylist():
        mine = [x for x in rows if r["split"] in ("all", x["split"])]
        assert r["crops"] == len(mine)
        assert r["animals"] == len({(x["video_id"], x["track_id"]) for x in mine})
        assert r["hours"] == pytest.approx(sum(x["duration_s"] for x in mine) / 3600)
    assert [r["split"] for r in stats.by_split.to_pylist()] == ["train", "val", "test", "all"]
    for r in stats.by_farm.to_pylist():
        assert r["crops"] == sum(x["split"] == r["split"] and x["farm"] == r["farm"] for x in rows)
    per_class = Counter((x["split"], x["class_name"]) for x in rows)
    assert stats.by_class.num_rows == 3 * len(taxonomy.classes)  # zeros included
    for r in stats.by_class.to_pylist():
        assert r["crops"] == per_class[(r["split"], r["class_name"])]
    counts = stats.class_counts()
    assert counts["train"]["Lying"] == per_class[("train", "Lying")]
    big = stats.balance()["train"]
    assert big["largest_over_smallest"] == counts["train"][big["largest"]] / counts["train"][big["smallest"]]


def test_presence_histogram_counts_every_crop_once(splits, taxonomy):
    stats = dataset_stats(splits, taxonomy.classes, bins=10)
    for split in ("train", "val", "test"):
        bins = [r for r in stats.presence.to_pylist() if r["split"] == split]
        values = [x["presence_ratio"] for x in splits.to_pylist() if x["split"] == split]
        assert len(bins) == 10 and sum(b["crops"] for b in bins) == len(values)
        assert bins[-1]["crops"] == sum(0.9 <= v <= 1.0 for v in values)


def test_cohen_kappa_on_a_published_example():
    """Cohen (1960)-style 2x2 table from the usual textbook example: 20 yes/yes, 5 yes/no,
    10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x"] * 5, ["x"] * 5) is None and cohen_kappa([], []) is None


def test_annotator_counts_and_agreement(splits, labels, taxonomy):
    stats = dataset_stats(splits, taxonomy.classes, labels, taxonomy)
    by_crop = defaultdict(dict)
    for r in labels.to_pylist():
        cls = taxonomy.class_of(r["label"])
        by_crop[r["crop_id"]][r["annotator"]] = EXCLUDED if cls is None else cls
    both = [v for v in by_crop.values() if len(v) == 2]
    assert {r["annotator"]: r["labels"] for r in stats.annotators.to_pylist()} == dict(Counter(r["annotator"] for r in labels.to_pylist()))
    pair = stats.agreement.to_pylist()[0]
    assert (pair["annotator_a"], pair["annotator_b"], pair["crops"]) == ("ann1", "ann2", len(both))
    assert pair["raw_agreement"] == pytest.approx(sum(v["ann1"] == v["ann2"] for v in both) / len(both))
    assert pair["cohen_kappa"] == pytest.approx(cohen_kappa([v["ann1"] for v in both], [v["ann2"] for v in both]))
    assert 0 < pair["cohen_kappa"] < pair["raw_agreement"] < 1
    assert stats.summary()["agreement"]["crops"] == len(both)


def _colour_fraction(image: np.ndarray, bar, colour) -> float:
    patch = image[bar.y0 : bar.y1, bar.x0 : bar.x1 - 1]
    return float(np.all(np.abs(patch.astype(int) - colour) < 8, axis=2).mean()) if patch.size else 0.0


def test_chart_draws_every_bar_to_scale(splits, taxonomy):
    stats = dataset_stats(splits, taxonomy.classes)
    counts = stats.class_counts()
    chart = class_chart(counts, taxonomy.classes)
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(chart.png(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(image, chart.image) and image.shape[1] == 1000
    assert len(chart.bars) == 3 * len(taxonomy.classes)
    top = nice_ceiling(max(max(c.values()) for c in counts.values()))
    lengths = {}
    for bar in chart.bars:
        assert bar.count == counts[bar.split][bar.class_name]
        if bar.count:
            assert _colour_fraction(image, bar, SPLIT_COLOURS[bar.split]) > 0.95
        lengths[(bar.split, bar.class_name)] = bar.x1 - bar.x0
    width = max(lengths.values()) * top / max(max(c.values()) for c in counts.values())
    for (split, cls), length in lengths.items():
        assert abs(length - width * counts[split][cls] / top) <= 2
    # rows in class order, bars of one class in split order, top to bottom
    assert [b.class_name for b in chart.bars[::3]] == list(taxonomy.classes)
    assert all(b.y0 < c.y0 for b, c in zip(chart.bars, chart.bars[1:]))


@pytest.mark.parametrize("largest", [1, 2, 3, 7, 14, 60, 333])
def test_the_count_axis_is_labelled_in_whole_crops(largest):
    """A count axis has no fractional ticks: 0 to the top in whole, equal steps, at most five."""
    chart = class_chart({"train": {"Lying": largest}, "val": {"Lying": 1}, "test": {}}, ["Lying"])
    ticks = chart.ticks
    assert ticks[0] == 0 and ticks[-1] == nice_ceiling(largest) >= largest and 2 <= len(ticks) <= 6
    assert all(isinstance(t, int) for t in ticks) and len({b - a for a, b in zip(ticks, ticks[1:])}) == 1
    assert ticks == count_ticks(nice_ceiling(largest))
    bar = next(b for b in chart.bars if b.split == "train")
    assert bar.x1 - bar.x0 == round((1000 - 70 - bar.x0) * largest / ticks[-1])  # the bar ends at its count on that axis


def test_chart_thumbnail_is_a_small_jpeg_for_the_ui(splits, taxonomy):
    chart = class_chart(dataset_stats(splits, taxonomy.classes).class_counts(), taxonomy.classes)
    jpeg = chart.thumbnail_jpeg()
    thumb = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape[1] == 480 and len(jpeg) < 60_000
    md = chart.thumbnail_markdown()
    assert md.startswith("![crops per class and split](data:image/jpeg;base64,") and base64.b64decode(md.split(",", 1)[1][:-1]) == jpeg
    assert class_chart(dataset_stats(splits, taxonomy.classes).class_counts(), taxonomy.classes).png() == chart.png()


def test_empty_splits_give_empty_statistics(splits, taxonomy):
    stats = dataset_stats(splits.slice(0, 0), taxonomy.classes)
    assert stats.by_split.to_pylist()[-1] == {"split": "all", "crops": 0, "animals": 0, "hours": 0.0}
    chart = class_chart(stats.class_counts(), taxonomy.classes)
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(chart.png(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(image, chart.image) and image.shape[1] == 1000  # a whole PNG of the chart
    assert len(chart.bars) == 3 * len(taxonomy.classes) and all(b.count == 0 and b.x1 == b.x0 for b in chart.bars)
    plot = image[min(b.y0 for b in chart.bars):]  # below the legend: no bar drawn in any split's colour
    assert not any(np.all(np.abs(plot.astype(int) - colour) < 8, axis=2).any() for colour in SPLIT_COLOURS.values())
    assert stats.agreement.num_rows == 0 and stats.annotators.num_rows == 0


def _snapshot(rows: list[tuple]) -> pa.Table:
    """(crop_id, annotator, label, role, unsure) rows as a labels snapshot."""
    keys = ("crop_id", "annotator", "label", "role", "unsure")
    return pa.Table.from_pylist([{**dict(zip(keys, r)), "start_frame": None, "end_frame": None} for r in rows])


def test_per_annotator_labels_unsure_gold_accuracy_conflicts_decided_and_fleiss(splits, taxonomy):
    snapshot = _snapshot([
        ("c1", "a", "Lying", "annotator", False), ("c1", "b", "Lying", "annotator", False),
        ("c2", "a", "Lying", "annotator", True), ("c2", "b", "Standing", "annotator", False), ("c2", "rev", "Standing", "reviewer", False),
        ("c3", "a", "Feeding", "annotator", False), ("c3", "b", "Walking", "annotator", False),
        ("g1", "a", "Lying", "annotator", False), ("g1", "b", "Standing", "annotator", False), ("g1", "(gold)", "Lying", "gold", False),
        ("g2", "a", "Walking", "annotator", True), ("g2", "(gold)", "Walking", "gold", False),
        ("c4", "b", "Delete", "annotator", False),
    ])
    stats = dataset_stats(splits, taxonomy.classes, snapshot, taxonomy)
    rows = {r["annotator"]: r for r in stats.annotators.to_pylist()}
    assert set(rows) == {"a", "b", "rev"}  # the gold rows are nobody's labels
    pick = ("labels", "double_labelled", "unsure", "unsure_share", "gold_labelled", "gold_correct", "gold_accuracy", "conflicts", "conflicts_decided", "decisions")
    assert tuple(rows["a"][k] for k in pick) == (5, 4, 2, 0.4, 2, 2, 1.0, 2, 1, 0)
    assert tuple(rows["b"][k] for k in pick) == (5, 4, 0, 0.0, 1, 0, 0.0, 2, 1, 0)
    assert tuple(rows["rev"][k] for k in pick) == (0, 0, 0, None, 0, 0, None, 0, 0, 1)
    # kappa over annotators only: the pair a/b on c1, c2, c3, g1 (classes), and Fleiss over the same crops
    pair = next(r for r in stats.agreement.to_pylist() if r["annotator_a"] == "a")
    assert (pair["annotator_b"], pair["crops"]) == ("b", 4)
    assert pair["cohen_kappa"] == pytest.approx(cohen_kappa(["Lying", "Lying", "Feeding", "Lying"], ["Lying", "Standing", "Walking", "Standing"]))
    expected = fleiss_kappa([["Lying", "Lying"], ["Lying", "Standing"], ["Feeding", "Walking"], ["Lying", "Standing"]])
    assert stats.fleiss == expected and stats.summary()["fleiss_kappa"]["kappa"] == pytest.approx(expected.kappa)
    assert stats.summary()["per_annotator"][0]["annotator"] == "a"
