"""Work queues (balanced, seeded shares per farm; double labelling; gold crops mixed in
unannounced) and agreement (Cohen's kappa per pair, Fleiss' kappa, accuracy on gold)."""

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from vitcow_assets.core.agreement import fleiss_kappa
from vitcow_assets.labelling.queues import agreement, agreement_report, assign, fleiss, gold_accuracy, queue_of


def catalog(farms: dict[str | None, int]) -> pa.Table:
    rows = []
    for farm, n in farms.items():
        rows += [{"crop_id": f"{farm}-{i:03d}", "farm": farm} for i in range(n)]
    table = pa.Table.from_pylist(rows)
    return table.append_column("video_id", pa.array(["v"] * len(rows)))


def shares(table: pa.Table) -> Counter:
    return Counter(zip(table["annotator"].to_pylist(), table["farm"].to_pylist()))


def test_each_annotator_gets_n_crops_per_farm_and_no_crop_twice():
    cat = catalog({"A": 50, "B": 40, None: 7})
    table = assign(cat, ["ann", "bob", "cat"], per_farm=10, seed=3)
    got = shares(table)
    assert all(got[(who, farm)] == 10 for who in ("ann", "bob", "cat") for farm in ("A", "B"))
    assert sorted(got[(who, None)] for who in ("ann", "bob", "cat")) == [2, 2, 3]  # 7 crops: shares differ by one at most
    assert len(set(table["crop_id"].to_pylist())) == table.num_rows
    for who in ("ann", "bob", "cat"):
        assert table.filter(pc.equal(table["annotator"], who))["position"].to_pylist() == list(range(sum(got[(who, f)] for f in ("A", "B", None))))
    farms = [f for f in table.filter(pc.equal(table["annotator"], "ann"))["farm"].to_pylist()[:3]]
    assert sorted(farms, key=str) == ["A", "B", None]  # the queue interleaves farms


def test_the_seed_decides_and_nothing_else_does():
    cat = catalog({"A": 60, "B": 60})
    one = assign(cat, ["ann", "bob"], per_farm=5, seed=1)
    assert assign(cat.take(list(reversed(range(cat.num_rows)))), ["ann", "bob"], per_farm=5, seed=1).equals(one)  # row order does not matter
    assert not assign(cat, ["ann", "bob"], per_farm=5, seed=2).equals(one)
    # adding a farm does not reshuffle the others
    more = assign(catalog({"A": 60, "B": 60, "C": 60}), ["ann", "bob"], per_farm=5, seed=1)
    assert set(more.filter(pc.not_equal(more["farm"], "C"))["crop_id"].to_pylist()) == set(one["crop_id"].to_pylist())


def test_double_labelling_gives_each_crop_to_two_annotators_and_pairs_everyone():
    cat = catalog({"A": 100})
    table = assign(cat, ["a", "b", "c", "d"], per_farm=6, seed=0, double=True)
    owners: dict[str, list[str]] = {}
    for crop, who in zip(table["crop_id"].to_pylist(), table["annotator"].to_pylist()):
        owners.setdefault(crop, []).append(who)
    assert all(len(w) == 2 and w[0] != w[1] for w in owners.values())
    assert Counter(table["annotator"].to_pylist()) == {"a": 6, "b": 6, "c": 6, "d": 6}
    pairs = {frozenset(w) for w in owners.values()}
    assert len(pairs) == 6  # every one of the 4 x 3 / 2 pairs shares crops


def test_excluded_crops_and_bad_settings():
    cat = catalog({"A": 10})
    taken = assign(cat, ["ann"], per_farm=4)["crop_id"].to_pylist()
    again = assign(cat, ["ann"], per_farm=4, exclude=taken)["crop_id"].to_pylist()
    assert set(taken).isdisjoint(again) and len(again) == 4
    with pytest.raises(ValueError, match="double labelling needs at least two"):
        assign(cat, ["ann"], per_farm=2, double=True)
    with pytest.raises(ValueError, match="per_farm"):
        assign(cat, ["ann"], per_farm=0)
    with pytest.raises(ValueError, match="repeat"):
        assign(cat, ["ann", "ann"], per_farm=1)


def labels(pairs: list[tuple[str, str, str]]) -> pa.Table:
    return pa.Table.from_pylist([{"crop_id": c, "annotator": a, "label": l} for c, a, l in pairs])


def test_kappa_of_the_textbook_two_by_two_table():
    # 50 items: both yes 20, a yes / b no 5, a no / b yes 10, both no 15 -> po 0.7, pe 0.5, kappa 0.4
    cells = [("Y", "Y")] * 20 + [("Y", "N")] * 5 + [("N", "Y")] * 10 + [("N", "N")] * 15
    rows = [(f"c{i}", "a", x) for i, (x, _) in enumerate(cells)] + [(f"c{i}", "b", y) for i, (_, y) in enumerate(cells)]
    rows.append(("only-a", "a", "Y"))  # labelled by one of them: not compared
    got = agreement(labels(rows), "a", "b")
    assert (got.crops, got.agreed) == (50, 35)
    assert got.raw == pytest.approx(0.7) and got.kappa == pytest.approx(0.4)
    assert got.confusion[("N", "Y")] == 10


def test_agreement_through_a_mapping_and_undefined_kappa():
    rows = [("c1", "a", "Standing"), ("c1", "b", "Standing_up"), ("c2", "a", "Delete"), ("c2", "b", "Delete")]
    fine = agreement(labels(rows), "a", "b")
    assert fine.raw == 0.5
    mapped = agreement(labels(rows), "a", "b", mapping={"Standing": "Standing", "Standing_up": "Standing", "Delete": None}.get)
    assert mapped.raw == 1.0 and mapped.kappa == pytest.approx(1.0)
    same = agreement(labels([("c1", "a", "X"), ("c1", "b", "X")]), "a", "b")
    assert same.raw == 1.0 and same.kappa is None  # one category for everything: kappa is undefined
    report = agreement_report(labels(rows + [("c9", "z", "X")]))
    assert [(r.annotator_a, r.annotator_b) for r in report] == [("a", "b")]


def test_queue_without_assignment_is_every_crop_nobody_else_labelled():
    order = ["c1", "c2", "c3", "c4"]
    queue = queue_of("ann", [], order, {"c2": {"bob"}, "c3": {"ann"}})
    assert queue.crops == ("c1", "c3", "c4") and queue.done == {"c3"}
    assert queue.next_crop() == "c1" and queue.next_crop(after="c1") == "c4" and queue.next_crop(after="c4") == "c1"
    assert queue.progress() == {"done": 1, "remaining": 2, "total": 3, "assigned": False}
    assigned = queue_of("ann", ["c4", "c2", "gone"], order, {"c2": {"bob"}})
    assert assigned.crops == ("c4", "c2") and assigned.next_crop() == "c4"  # double labelling: bob's label does not take c2 away


def test_gold_crops_are_mixed_in_at_the_rate_seeded_and_never_drawn_as_regular_crops():
    cat = catalog({"F0": 30, "F1": 30})
    gold = [f"F0-{i:03d}" for i in range(10)] + [f"F1-{i:03d}" for i in range(5)]
    table = assign(cat, ["a", "b"], per_farm=8, seed=3, gold=gold, gold_rate=0.2)
    again = assign(cat, ["a", "b"], per_farm=8, seed=3, gold=gold, gold_rate=0.2)
    assert table.equals(again)  # same seed, same queues
    for who in ("a", "b"):
        queue = table.filter(pc.equal(table["annotator"], who)).to_pylist()
        golden = [r for r in queue if r["crop_id"] in gold]
        assert len(queue) == 16 + 4 and len(golden) == 4  # 16 regular crops; 4/20 = the rate
        assert [r["position"] for r in queue] == list(range(20))
        assert len({r["crop_id"] for r in golden}) == 4 and all(r["crop_id"].startswith(r["farm"]) for r in golden)
        assert {r["position"] for r in golden} != {16, 17, 18, 19}  # mixed in, not appended
    regular = [r["crop_id"] for r in table.to_pylist() if r["crop_id"] not in gold]
    assert len(regular) == len(set(regular)) == 32  # single labelling: gold crops took no regular place
    other = assign(cat, ["a", "b"], per_farm=8, seed=4, gold=gold, gold_rate=0.2)
    assert other["crop_id"].to_pylist() != table["crop_id"].to_pylist()
    plain = assign(cat, ["a", "b"], per_farm=8, seed=3, gold=gold)
    assert not set(plain["crop_id"].to_pylist()) & set(gold)  # rate 0: gold crops left out, none mixed in
    few = assign(cat, ["a"], per_farm=8, seed=3, gold=gold[:2], gold_rate=0.5)
    assert sum(c in gold[:2] for c in few["crop_id"].to_pylist()) == 2  # at most every gold crop once (8 wanted)
    with pytest.raises(ValueError, match="gold_rate"):
        assign(cat, ["a"], per_farm=1, gold=gold, gold_rate=1.0)


def test_fleiss_over_every_double_labelled_crop_and_gold_accuracy_per_annotator():
    current = labels([("c1", "a", "Lying"), ("c1", "b", "Lying"), ("c1", "c", "Standing"), ("c2", "a", "Feeding"), ("c2", "b", "Feeding"),
                      ("c3", "a", "Lying"), ("g1", "a", "Lying"), ("g1", "b", "Standing"), ("g2", "a", "Walking"), ("g2", "b", "Walking")])
    result = fleiss(current)
    assert (result.items, result.ratings) == (4, 9)  # c3 has one label: left out
    assert result.kappa == pytest.approx(fleiss_kappa([["Lying", "Lying", "Standing"], ["Feeding", "Feeding"], ["Lying", "Standing"], ["Walking", "Walking"]]).kappa)
    gold = pa.table({"crop_id": ["g1", "g2"], "label": ["Lying", "Walking"]})
    scores = {s["annotator"]: s for s in gold_accuracy(current, gold)}
    assert (scores["a"]["items"], scores["a"]["correct"], scores["a"]["accuracy"]) == (2, 2, 1.0)
    assert (scores["b"]["items"], scores["b"]["correct"], scores["b"]["accuracy"]) == (2, 1, 0.5)
    assert {"gold": "Lying", "given": "Standing", "items": 1} in scores["b"]["confusion"] and "c" not in scores
    by_class = {s["annotator"]: s["accuracy"] for s in gold_accuracy(current, gold, {"Lying": "Rest", "Standing": "Rest", "Walking": "Move"}.get)}
    assert by_class == {"a": 1.0, "b": 1.0}


def test_gold_accuracy_and_kappas_on_a_synthetic_gold_set(tmp_path):
    """Three simulated annotators with known error rates (5 %, 15 %, 30 %) label 200 crops
    (8 classes, skewed) through the label database; 40 of the crops are gold. Each
    annotator's gold accuracy is exactly the share the simulation got right on those 40,
    and the kappas order the annotators as their error rates do. Prints the figures."""
    import numpy as np

    from vitcow_assets.labelling.store import LabelStore, default_url

    rng = np.random.default_rng(7)
    classes = ["Lying", "Standing", "Feeding", "Walking", "Drinking", "Self-grooming", "Scratching", "Other"]
    truth = rng.choice(classes, size=200, p=[0.35, 0.25, 0.12, 0.1, 0.05, 0.05, 0.04, 0.04]).tolist()
    errors = {"a": 0.05, "b": 0.15, "c": 0.30}
    given = {}
    for who, rate in errors.items():
        wrong = rng.random(200) < rate
        given[who] = [rng.choice([c for c in classes if c != t]) if w else t for t, w in zip(truth, wrong)]
    gold = list(range(0, 200, 5))
    with LabelStore(default_url(tmp_path)) as store:
        store.add_labels([{"crop_id": f"c{i:03d}", "annotator": who, "label": str(labels[i])} for who, labels in given.items() for i in range(200)])
        store.add_gold([{"crop_id": f"c{i:03d}", "label": truth[i]} for i in gold], "gold.csv")
        current, gold_table = store.current_labels(), store.gold_labels()
    scores = {s["annotator"]: s for s in gold_accuracy(current, gold_table)}
    for who in errors:
        right = sum(given[who][i] == truth[i] for i in gold)
        assert (scores[who]["items"], scores[who]["correct"]) == (40, right)
    pairs = {(p.annotator_a, p.annotator_b): p.kappa for p in agreement_report(current)}
    overall = fleiss(current)
    assert pairs[("a", "b")] > pairs[("a", "c")] and pairs[("a", "b")] > pairs[("b", "c")]
    assert overall.items == 200 and min(pairs.values()) < overall.kappa < max(pairs.values())
    print("\ngold accuracy (40 gold crops): " + ", ".join(f"{w} {scores[w]['accuracy']:.3f} (error rate {errors[w]:.2f})" for w in errors))
    print("Cohen's kappa: " + ", ".join(f"{a}-{b} {k:.3f}" for (a, b), k in sorted(pairs.items())) + f"; Fleiss' kappa over 200 crops x 3: {overall.kappa:.3f}")
