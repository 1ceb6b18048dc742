"""``vitcow`` in a real process whose segmenter is slow: the motion segmenter, plus
``VITCOW_TEST_SECONDS_PER_CLIP`` of sleep per clip (a stand-in for a long GPU step), so that
crash tests can catch a run holding the ``gpu`` pool.

    python -m vitcow_assets_tests.slow_cli run VIDEO --json ...
"""

import os
import sys

from vitcow_assets import cli
from vitcow_assets.defs import resources
from vitcow_assets.segmenters import load_segmenter
from vitcow_testbed.fakes import FakeSegmenter


def main() -> int:
    seconds = float(os.environ.get("VITCOW_TEST_SECONDS_PER_CLIP", "1"))
    slow = FakeSegmenter(inner=load_segmenter("motion"), delay_s=seconds)
    resources.cached_segmenter = lambda *args, **kwargs: slow
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
