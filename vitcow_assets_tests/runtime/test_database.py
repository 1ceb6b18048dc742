"""The platform's database connections: one engine per URL per process, reused tick after
tick; a SQLite file removed while its engine lives is opened anew (with its tables, by the
intake state); a forked child leaves its parent's connections alone; the intake state
reconnects after PostgreSQL restarted (a real server: every client connection cut)."""

import os
import shutil
import uuid

import pytest
import sqlalchemy as sa

from vitcow_assets.footage.intake_state import IntakeState, IntakeStateError
from vitcow_assets.runtime.database import dispose_engines, shared_engine

#: seconds a forked child may take
CHILD_TIMEOUT_S = 60


def test_one_engine_per_url_and_process_kept_between_opens(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with IntakeState(url) as first:
        first.next_generation()
    with IntakeState(url) as second:
        assert second.engine is first.engine  # closing the state leaves the engine to the next tick
        assert second.next_generation() == 2
    assert shared_engine(f"sqlite:///{tmp_path / 'b.db'}", "test") is not first.engine
    dispose_engines()
    with IntakeState(url) as third:
        assert third.engine is not first.engine and third.next_generation() == 3


def test_a_removed_sqlite_file_is_made_again_with_its_tables(tmp_path):
    home = tmp_path / "home"
    with IntakeState.open(None, home, dagster_home="") as state:
        assert state.next_generation() == 1
        engine = state.engine
    shutil.rmtree(home / "intake")  # someone resets the intake state while the daemon runs
    with IntakeState.open(None, home, dagster_home="") as state:
        assert state.engine is engine
        assert state.next_generation() == 1  # a new file, with its tables; not the removed one
    assert (home / "intake" / "intake.db").is_file()


def test_a_forked_child_opens_its_own_connections(tmp_path):
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    with IntakeState(url) as state:
        state.next_generation()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the parent's left open for the parent
        try:
            with IntakeState(url) as child:
                os._exit(0 if child.next_generation() == 2 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with IntakeState(url) as state:
        assert state.next_generation() == 3  # the parent's pooled connection still works


def test_an_unreachable_database_is_one_line_and_leaves_no_engine_behind():
    url = "postgresql+psycopg2://nobody:secret@127.0.0.1:1/none"
    with pytest.raises(IntakeStateError, match=r"^postgresql\+psycopg2://nobody:\*\*\*@127.0.0.1:1/none: cannot open") as raised:
        IntakeState(url)
    assert "secret" not in str(raised.value)
    assert shared_engine(url, "test").pool.checkedin() == 0  # a fresh engine, not one kept from the failure


def backends(server, database: str) -> int:
    engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{server.port}/postgres", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"), {"db": database}).scalar_one()


def test_the_intake_state_reconnects_after_postgres_restarted(own_postgres):
    name = f"intake_{uuid.uuid4().hex[:8]}"
    url = own_postgres.create_database(name).replace("postgresql://", "postgresql+psycopg2://")
    with IntakeState(url) as state:
        assert state.next_generation() == 1
        engine = state.engine
    assert backends(own_postgres, name) == 1  # the pooled connection stays open between ticks
    own_postgres.restart()
    assert backends(own_postgres, name) == 0
    with IntakeState(url) as state:
        assert state.engine is engine
        assert state.next_generation() == 2  # the dead connection was found out and replaced
