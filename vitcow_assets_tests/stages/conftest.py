"""Fixtures of the stage tests: synthetic footage with known animals, processed once by
``vitcow run`` (a real process) into a storage root the tests read."""

from pathlib import Path

import pytest

from vitcow_assets_tests.stages.runs import CLIP_ARGS, vitcow_run
from vitcow_testbed.synthetic import write_video
from vitcow_testbed.synthetic_tracks import ANIMALS, FPS, FRAMES, HEIGHT, WIDTH

@pytest.fixture(scope="session")
def tracks_video(tmp_path_factory) -> Path:
    """Six animals crossing, standing and wandering through six clips (synthetic_tracks.py),
    in 4:2:0 like camera footage (the conversion to RGB that differs per SIMD level is 4:2:0's)."""
    path = tmp_path_factory.mktemp("footage") / "pen 3.mp4"
    return write_video(path, frames=FRAMES, width=WIDTH, height=HEIGHT, fps=FPS, objects=ANIMALS, pix_fmt="yuv420p")


@pytest.fixture(scope="session")
def first_run(tracks_video, tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("home_a")
    return home, vitcow_run(tracks_video, home, *CLIP_ARGS)
