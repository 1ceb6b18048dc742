"""The one rule of what a crop stands for: gold, then a reviewer's decision, then what its
annotators agree on; conflicts listed in catalog order, gold crops never among them."""

from vitcow_assets.labelling.taxonomy_file import load_taxonomy
from vitcow_assets.labelling.verdicts import AGREED, CONFLICT, DECIDED, EXCLUDED, GOLD, conflicts, in_conflict, verdict

CLASS_OF = load_taxonomy().class_of


def rows(*labels, crop="c1"):
    return [{"crop_id": crop, "annotator": f"a{i}", "label": label} for i, label in enumerate(labels)]


def test_annotators_agree_on_a_class_are_excluded_or_conflict():
    assert (verdict(rows("Mounting", "Grooming-standing"), CLASS_OF).status, verdict(rows("Mounting", "Grooming-standing"), CLASS_OF).class_name) == (AGREED, "Other")
    assert verdict(rows("Delete", "Delete"), CLASS_OF).status == EXCLUDED and not verdict(rows("Delete"), CLASS_OF).usable
    for disagreeing in (rows("Lying", "Standing"), rows("Lying", "Delete")):
        found = verdict(disagreeing, CLASS_OF)
        assert (found.status, found.class_name, len(found.rows)) == (CONFLICT, None, 2) and in_conflict(disagreeing, CLASS_OF)
    assert verdict([], CLASS_OF) is None


def test_a_decision_settles_a_conflict_and_gold_comes_first():
    decision = {"label": "Lying", "start_frame": None, "end_frame": None}
    decided = verdict(rows("Lying", "Standing"), CLASS_OF, decision)
    assert (decided.status, decided.class_name, decided.rows) == (DECIDED, "Lying", (decision,))
    assert verdict(rows("Lying", "Standing"), CLASS_OF, {"label": "Delete"}).usable is False  # a decided exclusion
    gold = {"label": "Walking"}
    assert (verdict(rows("Lying", "Standing"), CLASS_OF, decision, gold).status, verdict([], CLASS_OF, None, gold).class_name) == (GOLD, "Walking")


def test_conflicts_in_catalog_order_with_their_decision_gold_left_out():
    labels = rows("Lying", "Standing", crop="c3") + rows("Lying", "Lying", crop="c1") + rows("Feeding", "Delete", crop="c2") + rows("Lying", "Walking", crop="g")
    found = conflicts(labels, ["c1", "c2", "c3", "g"], CLASS_OF, {"c3": {"label": "Lying"}}, {"g"})
    assert [(c.crop_id, c.decision) for c in found] == [("c2", None), ("c3", {"label": "Lying"})]
    assert [r["label"] for r in found[0].labels] == ["Feeding", "Delete"]
