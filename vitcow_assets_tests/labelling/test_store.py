"""The label database on SQLite and on a real PostgreSQL server: history, undo, all-or-nothing
writes, assignments, and concurrent processes creating the tables and writing at once."""

import multiprocessing
import uuid

import pyarrow as pa
import pytest

from vitcow_assets.labelling.events import LabelError
from vitcow_assets.labelling.queues import ASSIGNMENT_SCHEMA
from vitcow_assets.labelling.store import LabelStore, default_url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """A URL of a new, empty labels database."""
    if request.param == "sqlite":
        return default_url(tmp_path / "home")
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"labels_{uuid.uuid4().hex[:8]}").replace("postgresql://", "postgresql+psycopg2://")


@pytest.fixture()
def store(store_url):
    with LabelStore(store_url) as s:
        yield s


def current(store, annotator=None):
    return {(r["crop_id"], r["annotator"]): (r["label"], r["start_frame"], r["end_frame"]) for r in store.current_labels(annotator).to_pylist()}


def test_a_new_label_supersedes_and_history_keeps_both(store):
    first = store.add_label("c1", "ann", "Standing")
    second = store.add_label("c1", "ann", "Standing_up", 2, 7)
    store.add_label("c1", "bob", "Lying")
    assert second.event_id > first.event_id
    assert current(store) == {("c1", "ann"): ("Standing_up", 2, 7), ("c1", "bob"): ("Lying", None, None)}
    history = store.history("c1", "ann").to_pylist()
    assert [(e["label"], e["kind"]) for e in history] == [("Standing", "label"), ("Standing_up", "label")]
    assert str(history[0]["labelled_at"].tzinfo) == "UTC"


def test_undo_takes_back_the_latest_label_and_brings_back_the_previous(store):
    store.add_label("c1", "ann", "Standing")
    store.add_label("c2", "ann", "Lying")
    store.add_label("c2", "ann", "Feeding")
    undo, undone = store.undo_last("ann")
    assert (undone.crop_id, undone.label, undo.undoes, undo.kind) == ("c2", "Feeding", undone.event_id, "undo")
    assert current(store, "ann") == {("c1", "ann"): ("Standing", None, None), ("c2", "ann"): ("Lying", None, None)}
    assert store.undo_last("ann")[1].label == "Lying"
    assert current(store, "ann") == {("c1", "ann"): ("Standing", None, None)}
    store.undo_last("ann")
    assert store.undo_last("ann") is None and current(store) == {}
    assert store.event_count() == 3 + 3  # nothing was deleted: every label and every undo is kept


def test_a_batch_with_one_bad_row_stores_nothing(store):
    store.add_label("c0", "ann", "Standing")
    with pytest.raises(LabelError, match="segment 5..2"):
        store.add_labels([{"crop_id": "c1", "annotator": "ann", "label": "Lying"},
                          {"crop_id": "c2", "annotator": "ann", "label": "Lying", "start_frame": 5, "end_frame": 2}])
    with pytest.raises(LabelError, match="annotator"):
        store.add_label("c3", " ", "Lying")
    assert store.event_count() == 1


def test_assignments_replace_only_the_named_annotators_queues(store):
    def rows(who, crops):
        return pa.Table.from_pylist([{"annotator": who, "crop_id": c, "farm": "F", "position": i} for i, c in enumerate(crops)], schema=ASSIGNMENT_SCHEMA)

    store.set_assignments(pa.concat_tables([rows("ann", ["a", "b"]), rows("bob", ["c"])]))
    store.set_assignments(rows("ann", ["d", "e", "f"]))
    assert store.assignments("ann")["crop_id"].to_pylist() == ["d", "e", "f"]
    assert store.assignments("bob")["crop_id"].to_pylist() == ["c"]
    assert store.annotators() == ["ann", "bob"]


def _writer(url: str, annotator: str, n: int, start, done) -> None:
    start.wait()
    with LabelStore(url) as store:  # creates the tables, racing the other process
        for i in range(n):
            store.add_label(f"crop{i % 37}", annotator, "Standing" if i % 2 else "Lying")
            if i % 10 == 9:
                store.undo_last(annotator)
    done.put(annotator)


def test_two_processes_create_the_tables_and_write_at_once_without_losing_a_write(store_url):
    ctx = multiprocessing.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    n = 150
    procs = [ctx.Process(target=_writer, args=(store_url, who, n, start, done)) for who in ("ann", "bob")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    with LabelStore(store_url) as store:
        history = store.history()
        for who in ("ann", "bob"):
            mine = [e for e in history.to_pylist() if e["annotator"] == who]
            assert sum(e["kind"] == "label" for e in mine) == n and sum(e["kind"] == "undo" for e in mine) == n // 10
            labels = [e for e in mine if e["kind"] == "label"]
            assert [e["crop_id"] for e in labels] == [f"crop{i % 37}" for i in range(n)]  # in the order each wrote them
        assert store.check_integrity() == "ok"


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    with pytest.raises(LabelError) as info:
        LabelStore("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    assert "cannot open the labels database" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(LabelError, match="sqlite:/// or postgresql"):
        LabelStore("mysql://x@localhost/y")
