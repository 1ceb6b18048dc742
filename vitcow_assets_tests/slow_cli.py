"""``vitcow`` in a real process whose segmenter is slow: the motion segmenter, plus
``VITCOW_TEST_SECONDS_PER_CLIP`` of sleep per clip (a stand-in for a long GPU step), so that
crash tests can catch a run holding the ``gpu`` pool.

    python -m vitcow_assets_tests.slow_cli run VIDEO --json ...
"""

import os
import sys
import time

from vitcow_assets import cli
from vitcow_assets.defs import resources
from vitcow_assets.segmenters import load_segmenter


class SlowSegmenter:
    def __init__(self, inner, seconds_per_clip: float) -> None:
        self.inner = inner
        self.seconds_per_clip = seconds_per_clip

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start_session(self, frames):
        time.sleep(self.seconds_per_clip)
        return self.inner.start_session(frames)


def main() -> int:
    seconds = float(os.environ.get("VITCOW_TEST_SECONDS_PER_CLIP", "1"))
    slow = SlowSegmenter(load_segmenter("motion"), seconds)
    resources._cached_segmenter = lambda *args, **kwargs: slow
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
