"""What the catch-up asks for: the rule for current crops, and the oldest first within the room."""

from vitcow_assets.core.catchup import NO_CROPS, crops_current, plan_catchup


def test_crops_are_current_only_when_made_from_the_bytes_there_now():
    assert not crops_current(NO_CROPS, "a", None)  # never materialized
    assert crops_current("a", "a", "b")  # the registry wins over raw_video
    assert not crops_current("b", "a", "b")
    assert crops_current("b", None, "b")  # unregistered: raw_video's data version
    assert not crops_current(None, "a", None)  # crops that recorded no bytes
    assert crops_current(None, None, None)  # nothing known to compare with


def test_the_oldest_recordings_first_unknown_times_last_within_the_room():
    recorded = {"new": 300.0, "old": 100.0, "mid": 200.0, "tie_b": 100.0}
    plan = plan_catchup(["new", "unknown", "mid", "old", "tie_b"], recorded, 3)
    assert plan.requested == ["old", "tie_b", "mid"] and plan.waiting == 2 and plan.wanted == 5
    assert plan_catchup(["new", "unknown"], recorded, 5).requested == ["new", "unknown"]
    assert plan_catchup(["new"], recorded, 0).requested == [] and plan_catchup(["new"], recorded, -3).waiting == 1
