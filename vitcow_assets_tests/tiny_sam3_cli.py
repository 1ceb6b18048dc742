"""``vitcow`` in a fresh process with SAM3's builder at test size: a user's CLI run, smaller.

Nothing of the project's CPU compatibility code runs before ``cli.main``: the test-size
sizes are swapped in only around the model's construction (``segmenters.sam3._build_predictor``),
which the backend reaches after making torch, torchvision and open_clip importable itself.

    python -m vitcow_assets_tests.tiny_sam3_cli run VIDEO --backend sam3 ...
"""

import sys

from vitcow_assets import cli
from vitcow_assets.segmenters import sam3


def main() -> int:
    original = sam3._build_predictor

    def build_at_test_size(*args, **kwargs):
        from vitcow_testbed.sam3_tiny import tiny_builder

        with tiny_builder():
            return original(*args, **kwargs)

    sam3._build_predictor = build_at_test_size
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
