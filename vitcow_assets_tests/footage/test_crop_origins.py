"""The catch-up's memo of what each partition's latest crops were made from, on SQLite and
on PostgreSQL (a real server): one row per partition, a later materialization replacing it."""

import uuid

import pytest

from vitcow_assets.footage.crop_origins import CropOrigins
from vitcow_assets.footage.intake_state import IntakeState, IntakeStateError


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'intake.db'}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"origins_{uuid.uuid4().hex[:8]}").replace("postgresql://", "postgresql+psycopg2://")


def test_one_row_per_partition_the_latest_read_wins(db_url):
    origins = CropOrigins(db_url)
    assert origins.known() == {}
    origins.remember([("a", 3, "a" * 64), ("b", 4, None)])
    origins.remember([("a", 9, "c" * 64)])
    assert CropOrigins(db_url).known() == {"a": (9, "c" * 64), "b": (4, None)}
    with IntakeState(db_url) as state:  # beside the intake tables, in the same database
        assert state.next_generation() == 1


def test_a_bad_url_is_one_line():
    with pytest.raises(IntakeStateError, match="sqlite:/// or postgresql"):
        CropOrigins("mysql://x@y/z")
