from collections.abc import Iterator
from pathlib import Path

import pytest

from vitcow_testbed.servers import Postgres, postgres_missing, redis_missing, run_postgres, run_redis
from vitcow_testbed.synthetic import write_video

SHARED_FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    """100 frames, 320x240, 10 fps: two boxes with known positions (see vitcow_testbed/synthetic.py)."""
    return write_video(tmp_path_factory.mktemp("footage") / "barn cam 1.mp4")


@pytest.fixture()
def vtest_avi() -> Path:
    path = SHARED_FOOTAGE / "vtest.avi"
    if not path.is_file():
        pytest.skip(f"real footage not present at {path}")
    return path


# real servers (PostgreSQL, Redis) for the deployment tests: skipped, with the reason, where
# the binaries are not installed


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    with run_redis() as url:
        yield url
