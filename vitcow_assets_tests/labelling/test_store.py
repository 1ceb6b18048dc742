"""The label database on SQLite and on a real PostgreSQL server: history, undo, all-or-nothing
writes, assignments, concurrent processes creating the tables and writing at once; the
unsure flag, sign-in tokens (stored hashed only), reviewers' decisions, gold labels, and the
upgrade of a database written by the earlier schema (nothing lost)."""

import multiprocessing
import uuid
from pathlib import Path

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


# -- unsure, tokens, decisions, gold (both backends) ---------------------------------------


def test_unsure_is_stored_with_the_label(store):
    store.add_label("c1", "ann", "Feeding", unsure=True)
    store.add_label("c2", "ann", "Lying")
    assert {r["crop_id"]: r["unsure"] for r in store.current_labels().to_pylist()} == {"c1": True, "c2": False}
    with pytest.raises(LabelError, match="unsure must be true or false"):
        store.add_label("c3", "ann", "Lying", unsure="yes")


def _every_text_value(store) -> str:
    """Every value of every table, as text (what a look into the database shows)."""
    import sqlalchemy as sa

    from vitcow_assets.labelling.schema import metadata

    with store.engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(sa.select(table)))


def test_a_token_signs_in_its_annotator_and_is_stored_hashed_only(store):
    import hashlib

    token = store.create_token("alice", "reviewer")
    other = store.create_token("bob")
    assert token.startswith("vct_") and len(token) > 40 and token != other
    assert store.identify(token).as_dict() == {"annotator": "alice", "role": "reviewer"}
    assert store.identify(other).annotator == "bob" and not store.identify(other).reviewer
    assert store.identify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None and store.identify("") is None
    assert store.role_of("alice") == "reviewer" and store.role_of("bob") == "annotator" and store.role_of("carol") is None
    dump = _every_text_value(store)
    assert token not in dump and other not in dump and token[4:20] not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump  # what is kept instead
    if store.backend == "sqlite":  # nor in the file's bytes (database and write-ahead log)
        files = b"".join(p.read_bytes() for p in Path(store.url.database).parent.glob("labels.db*"))
        assert token.encode() not in files and b"alice" in files
    assert store.revoke_tokens("alice") == 1 and store.identify(token) is None and store.role_of("alice") is None
    with pytest.raises(LabelError, match="role must be"):
        store.create_token("x", "admin")


def test_decisions_need_a_reviewer_supersede_and_undo_brings_back_the_previous(store):
    from vitcow_assets.labelling.events import NotAllowedError

    store.create_token("rev", "reviewer")
    store.create_token("ann", "annotator")
    with pytest.raises(NotAllowedError, match="ann is not a reviewer"):
        store.decide("c1", "ann", "Lying")
    with pytest.raises(NotAllowedError, match="nobody is not a reviewer"):
        store.decide("c1", "nobody", "Lying")
    first = store.decide("c1", "rev", "Lying")
    second = store.decide("c1", "rev", "Walking", 2, 5, source="page")
    store.decide("c2", "rev", "Delete")
    assert {r["crop_id"]: (r["label"], r["start_frame"], r["reviewer"]) for r in store.current_decisions().to_pylist()} == {
        "c1": ("Walking", 2, "rev"), "c2": ("Delete", None, "rev")}
    undo, undone = store.undo_decision("rev", "c1")
    assert undone.event_id == second.event_id and undo.undoes == second.event_id
    assert store.current_decisions("c1")["label"].to_pylist() == ["Lying"]
    assert store.undo_decision("rev", "c1")[1].event_id == first.event_id
    assert store.current_decisions("c1").num_rows == 0 and store.undo_decision("rev", "c1") is None
    assert [e["kind"] for e in store.decision_history("c1").to_pylist()] == ["decision", "decision", "undo", "undo"]
    assert store.event_count() == 0  # decisions are not label events


def test_gold_labels_latest_row_in_force_and_a_bad_row_stores_none(store):
    assert store.add_gold([{"crop_id": "g1", "label": "Lying"}, {"crop_id": "g2", "label": "Walking", "start_frame": 1, "end_frame": 4}], "gold.csv") == 2
    store.add_gold([{"crop_id": "g1", "label": "Standing"}], "gold-v2.csv")
    gold = {r["crop_id"]: (r["label"], r["start_frame"], r["source"]) for r in store.gold_labels().to_pylist()}
    assert gold == {"g1": ("Standing", None, "gold-v2.csv"), "g2": ("Walking", 1, "gold.csv")}
    with pytest.raises(LabelError, match="segment 5..2"):
        store.add_gold([{"crop_id": "g3", "label": "Lying"}, {"crop_id": "g4", "label": "Lying", "start_frame": 5, "end_frame": 2}], "bad.csv")
    assert store.gold_labels().num_rows == 2
    assert store.current_labels().num_rows == 0  # gold labels are nobody's labels


# -- upgrading a labels database written before this schema ---------------------------------

#: the version-1 schema, as earlier vitcow created it (frozen here: the upgrade's input)
_V1_SQLITE = [
    """CREATE TABLE label_events (id INTEGER NOT NULL, crop_id VARCHAR(64) NOT NULL, annotator VARCHAR(128) NOT NULL,
    kind VARCHAR(8) NOT NULL, label VARCHAR(128), start_frame INTEGER, end_frame INTEGER, undoes INTEGER,
    labelled_at DATETIME NOT NULL, source VARCHAR(16) NOT NULL, PRIMARY KEY (id),
    CONSTRAINT label_events_kind CHECK (kind IN ('label', 'undo')),
    CONSTRAINT label_events_label CHECK ((kind = 'label') = (label IS NOT NULL)),
    CONSTRAINT label_events_undoes CHECK ((kind = 'undo') = (undoes IS NOT NULL)),
    UNIQUE (undoes), FOREIGN KEY(undoes) REFERENCES label_events (id))""",
    """CREATE TABLE assignments (annotator VARCHAR(128) NOT NULL, crop_id VARCHAR(64) NOT NULL, farm VARCHAR(128),
    position INTEGER NOT NULL, assigned_at DATETIME NOT NULL, PRIMARY KEY (annotator, crop_id))""",
]
_V1_POSTGRES = [s.replace("id INTEGER NOT NULL", "id BIGSERIAL NOT NULL").replace("undoes INTEGER", "undoes BIGINT")
                .replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE") for s in _V1_SQLITE]
_V1_ROWS = [
    "INSERT INTO label_events (crop_id, annotator, kind, label, labelled_at, source) VALUES ('c1', 'ann', 'label', 'Standing', '2025-02-05 10:00:00', 'page')",
    "INSERT INTO label_events (crop_id, annotator, kind, label, start_frame, end_frame, labelled_at, source) VALUES ('c2', 'ann', 'label', 'Walking', 2, 7, '2025-02-05 10:00:01', 'api')",
    "INSERT INTO label_events (crop_id, annotator, kind, undoes, labelled_at, source) VALUES ('c1', 'ann', 'undo', 1, '2025-02-05 10:00:02', 'page')",
    "INSERT INTO label_events (crop_id, annotator, kind, label, labelled_at, source) VALUES ('c1', 'bob', 'label', 'Lying', '2025-02-05 10:00:03', 'import')",
    "INSERT INTO assignments VALUES ('ann', 'c9', 'F', 0, '2025-02-05 09:00:00')",
]


def test_a_version_1_database_is_upgraded_in_place_with_nothing_lost(store_url):
    import sqlalchemy as sa

    from vitcow_assets.labelling.schema import SCHEMA_VERSION

    postgres = store_url.startswith("postgresql")
    engine = sa.create_engine(store_url)
    if not postgres:
        Path(sa.make_url(store_url).database).parent.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        for statement in (_V1_POSTGRES if postgres else _V1_SQLITE) + _V1_ROWS:
            conn.exec_driver_sql(statement)
    engine.dispose()
    with LabelStore(store_url) as store:
        assert store.upgraded_from == 1
        history = store.history().to_pylist()
        assert [(e["crop_id"], e["annotator"], e["kind"], e["label"], e["start_frame"], e["unsure"]) for e in history] == [
            ("c1", "ann", "label", "Standing", None, False), ("c2", "ann", "label", "Walking", 2, False),
            ("c1", "ann", "undo", None, None, False), ("c1", "bob", "label", "Lying", None, False)]
        assert current(store) == {("c2", "ann"): ("Walking", 2, 7), ("c1", "bob"): ("Lying", None, None)}
        assert store.assignments("ann")["crop_id"].to_pylist() == ["c9"]
        store.add_label("c3", "ann", "Feeding", unsure=True)  # the new column and tables work
        store.create_token("rev", "reviewer")
        store.decide("c1", "rev", "Lying")
        new_id = store.add_label("c4", "ann", "Lying").event_id
        assert new_id == 6
    with LabelStore(store_url) as store:  # opening again changes nothing
        assert store.upgraded_from == SCHEMA_VERSION and store.event_count() == 6
        assert [r["unsure"] for r in store.current_labels("ann").to_pylist() if r["crop_id"] == "c3"] == [True]
        assert store.check_integrity() == "ok"


def test_a_database_from_a_newer_vitcow_is_refused(store_url):
    import sqlalchemy as sa

    with LabelStore(store_url) as store:
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE label_schema SET version = 99"))
    with pytest.raises(LabelError, match="schema version 99; this vitcow knows up to 3"):
        LabelStore(store_url)


def test_sessions_sign_in_until_they_expire_are_signed_out_or_their_token_is_revoked(store_url):
    import datetime as dt

    import sqlalchemy as sa

    from vitcow_assets.labelling.schema import sessions
    from vitcow_assets.labelling.sessions import session_sha256

    hour = dt.timedelta(hours=1)
    with LabelStore(store_url) as store:
        alice, rev = store.create_token("alice"), store.create_token("rev", "reviewer")
        assert store.start_session(alice[:-1] + "x", hour) is None and store.start_session("not a token", hour) is None
        first, second, third = (store.start_session(t, hour) for t in (alice, alice, rev))
        assert first.session_id != second.session_id and first.session_id.startswith("vcs_") and alice not in first.session_id
        assert alice not in repr(first) and first.session_id not in repr(first)
        assert store.session_identity(first.session_id).as_dict() == {"annotator": "alice", "role": "annotator"}
        assert store.session_identity(third.session_id).reviewer
        assert store.session_identity(alice) is None  # the token itself is no session
        with store.engine.begin() as conn:  # the first session's time is up
            conn.execute(sessions.update().where(sessions.c.session_sha256 == session_sha256(first.session_id)).values(expires_at=sessions.c.created_at))
        assert store.session_identity(first.session_id) is None and store.session_identity(second.session_id) is not None
        assert store.end_session(second.session_id) and not store.end_session(second.session_id)  # signed out once
        assert store.session_identity(second.session_id) is None
        fourth = store.start_session(alice, hour)  # starting one clears the expired and ended ones
        with store.engine.connect() as conn:
            stored = conn.execute(sa.select(sessions.c.session_sha256, sessions.c.created_at, sessions.c.expires_at)).all()
        assert sorted(r.session_sha256 for r in stored) == sorted(session_sha256(s.session_id) for s in (third, fourth))
        assert all(r.expires_at - r.created_at == hour for r in stored)
        assert store.revoke_tokens("alice") == 1
        assert store.session_identity(fourth.session_id) is None and store.session_identity(third.session_id) is not None
        with pytest.raises(LabelError, match="positive time"):
            store.start_session(rev, dt.timedelta(0))


def test_a_version_2_database_gains_the_sessions_table(store_url):
    import datetime as dt

    import sqlalchemy as sa

    with LabelStore(store_url) as store:
        token = store.create_token("alice")
        store.add_label("c1", "alice", "Lying")
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE sessions"))
            conn.execute(sa.text("UPDATE label_schema SET version = 2"))
    with LabelStore(store_url) as store:
        assert store.upgraded_from == 2 and store.event_count() == 1
        session = store.start_session(token, dt.timedelta(hours=1))
        assert store.session_identity(session.session_id).annotator == "alice"
