from pathlib import Path

import pytest

from vitcow_assets_tests.synthetic import write_video

SHARED_FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    """100 frames, 320x240, 10 fps: two boxes with known positions (see synthetic.py)."""
    return write_video(tmp_path_factory.mktemp("footage") / "barn cam 1.mp4")


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny random VideoMAE checkpoints, one set of weights in every layout (see
    ``encoders/tiny_videomae.py``): 3 layers of width 128, 4 frames of 32 px."""
    from vitcow_assets_tests.encoders.tiny_videomae import write_checkpoints

    return write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture()
def vtest_avi() -> Path:
    path = SHARED_FOOTAGE / "vtest.avi"
    if not path.is_file():
        pytest.skip(f"real footage not present at {path}")
    return path

# real servers (PostgreSQL, Redis) for the deployment tests
from vitcow_assets_tests.servers import postgres_server, redis_server  # noqa: E402,F401
