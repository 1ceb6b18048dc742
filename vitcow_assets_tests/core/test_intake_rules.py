"""The pure rules of intake at scale: one file's settle state (``core.settle.judge``), which
folders a look lists (``core.folder_watch``) and the sensor's small cursor
(``core.intake_cursor``)."""

import json

import pytest

from vitcow_assets.core.folder_watch import LIST, PASS, STAT, TIME_RESOLUTION_S, FolderMark, LookPlan, after_listing, needs_listing, raised_activity, visit
from vitcow_assets.core.intake_cursor import IntakeCursor, SourceMarks
from vitcow_assets.core.settle import ARRIVED, CLAIMED, TAKEN, WAITING, FileMark, SettleCursor, judge

NOW = 1_700_000_000.0
OLD_NS = int((NOW - 3600) * 1e9)
SIG = [100, OLD_NS]


def test_a_file_arrives_after_two_looks_at_the_same_signature_and_stays_taken():
    first = judge(None, SIG, OLD_NS, NOW, 10)
    assert first == FileMark(WAITING, SIG, None)
    second = judge(first, SIG, OLD_NS, NOW, 10)
    assert second.state == ARRIVED
    taken = FileMark(TAKEN, SIG, SIG)
    assert judge(taken, SIG, OLD_NS, NOW, 10) == taken
    changed = judge(taken, [200, OLD_NS], OLD_NS, NOW, 10)
    assert changed == FileMark(WAITING, [200, OLD_NS], SIG)  # taken again once it settles
    assert judge(changed, [200, OLD_NS], OLD_NS, NOW, 10).state == ARRIVED


def test_a_recent_or_changing_file_waits_and_a_claim_holds_only_while_unchanged():
    recent = int((NOW - 2) * 1e9)
    assert judge(FileMark(WAITING, [1, recent]), [1, recent], recent, NOW, 10).state == WAITING
    claimed = FileMark(CLAIMED, SIG)
    assert judge(claimed, SIG, OLD_NS, NOW, 10) == claimed
    assert judge(claimed, [101, OLD_NS], OLD_NS, NOW, 10).state == WAITING


def test_judge_agrees_with_the_settle_cursor():
    class File:
        def __init__(self, uri, size, mtime_ns):
            self.uri, self.mtime_ns, self.signature = uri, mtime_ns, [size, mtime_ns]

    cursor, marks = SettleCursor(), {}
    looks = [[File("a", 1, OLD_NS), File("b", 2, int(NOW * 1e9))], [File("a", 1, OLD_NS), File("b", 3, int(NOW * 1e9))], [File("a", 1, OLD_NS), File("b", 3, OLD_NS)]]
    for files in looks:
        look = cursor.look(files, NOW, 10)
        for file in look.arrived:
            cursor.taken(file)
        for file in files:
            mark = judge(marks.get(file.uri), file.signature, file.mtime_ns, NOW, 10)
            marks[file.uri] = FileMark(TAKEN, mark.seen, mark.seen) if mark.state == ARRIVED else mark
        assert {u for u, m in marks.items() if m.state == TAKEN} == set(cursor.done)


PLAN = LookPlan(full=False, sweep=7, skip_quiet=False, active_window_s=3600)
MARK = FolderMark(mtime_ns=5, since_s=NOW - 60, confirmed=True, active_ns=int((NOW - 60) * 1e9), swept=3)


def test_a_quick_look_asks_for_a_known_folders_time_and_lists_only_a_changed_or_unconfirmed_one():
    assert visit(None, PLAN, False, NOW) == LIST
    assert visit(MARK, PLAN, False, NOW) == STAT
    assert visit(MARK, PLAN, True, NOW) == LIST  # holds a file still arriving
    assert not needs_listing(MARK, 5)
    assert needs_listing(MARK, 6)
    assert needs_listing(FolderMark(5, NOW, False, 0, 3), 5)
    assert needs_listing(MARK, None)  # no folder times (S3): always listed


def test_a_folder_time_is_trusted_only_when_listings_far_enough_apart_saw_it():
    plan = PLAN
    first = after_listing(None, 5, 0, plan, NOW)
    assert not first.confirmed and first.since_s == NOW
    soon = after_listing(first, 5, 0, plan, NOW + TIME_RESOLUTION_S / 2)
    assert not soon.confirmed and soon.since_s == NOW
    later = after_listing(soon, 5, 0, plan, NOW + TIME_RESOLUTION_S)
    assert later.confirmed
    moved = after_listing(later, 6, 0, plan, NOW + 30)
    assert not moved.confirmed and moved.since_s == NOW + 30


def test_a_full_sweep_lists_every_folder_once_and_a_quiet_remote_folder_is_passed_by():
    full = LookPlan(full=True, sweep=8, skip_quiet=False, active_window_s=3600)
    assert visit(MARK, full, False, NOW) == LIST
    listed = after_listing(MARK, 5, 0, full, NOW)
    assert listed.swept == 8 and visit(listed, full, False, NOW) == PASS  # a resumed sweep goes on
    remote = LookPlan(full=False, sweep=8, skip_quiet=True, active_window_s=30)
    assert visit(MARK, remote, False, NOW) == PASS  # quiet for 60 s > 30 s
    assert visit(MARK, remote, True, NOW) == LIST
    assert visit(MARK, LookPlan(False, 8, True, 3600), False, NOW) == STAT


def test_activity_rises_up_to_the_root():
    parents = {"r": None, "r/a": "r", "r/a/d1": "r/a", "r/b": "r"}
    active = {"r": 9, "r/a": 5, "r/a/d1": 5, "r/b": 9}
    assert raised_activity(parents, active, {"r/a/d1": 20}) == {"r/a": 20, "r": 20}
    assert raised_activity(parents, active, {"r/a/d1": 7}) == {"r/a": 7}  # the root already saw 9
    assert raised_activity(parents, active, {"r/a/d1": 4}) == {}


def test_the_cursor_stays_small_whatever_the_sources_hold():
    cursor = IntakeCursor(owner="0123456789abcdef", gen=123456789, reported=(12, 107520))
    for i in range(10):
        cursor.marks(f"farm{i}:0123abcd").looked_s = NOW + i
    text = cursor.dumps()
    assert len(text) < 1024
    again = IntakeCursor.parse(text)
    assert again.owner == cursor.owner and again.gen == cursor.gen and again.reported == (12, 107520)
    assert again.marks("farm3:0123abcd").looked_s == NOW + 3 and again.legacy is None


def test_an_old_cursor_is_recognised_for_migration():
    old = {"sources": {"landing": {"seen": {"/l/a.mp4": [1, 2]}, "done": {"/l/b.mp4": [3, 4]}}, "landing:prompts": {"seen": {}, "done": {}}}, "waiting": 1}
    cursor = IntakeCursor.parse(json.dumps(old))
    assert cursor.legacy == old["sources"] and cursor.owner == "" and cursor.reported == (1, 0)
    assert IntakeCursor.parse(None).legacy is None
    for bad in ("not json", "[1, 2]"):
        with pytest.raises(ValueError, match="clear it"):
            IntakeCursor.parse(bad)


def test_looks_and_sweeps_fall_due_on_their_intervals():
    marks = SourceMarks(looked_s=NOW - 30, swept_s=NOW - 30)
    assert marks.look_due(NOW, 30) and not marks.look_due(NOW, 60)
    assert not marks.sweep_due(NOW, 600) and marks.sweep_due(NOW, 30)
    assert SourceMarks(swept_s=NOW, sweeping=True).sweep_due(NOW, 600)  # a sweep under way goes on
