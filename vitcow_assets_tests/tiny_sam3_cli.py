"""``vitcow`` in a fresh process with SAM3's builder at test size: a user's CLI run, smaller.

Nothing of the project's CPU compatibility code runs before ``cli.main``: the test-size
sizes (SAM3's, and SAM 3.1's where the installed sam3 has it) are swapped in only around the
model's construction (``segmenters.sam3.build_predictor``),
which the backend reaches after making torch, torchvision and open_clip importable itself.

With ``VITCOW_TEST_LOADED_DIR`` set, each model built writes ``<pid>-<n>.loaded`` there
(holding the device it was built on) and then waits until a file ``go`` appears (at most
``VITCOW_TEST_HOLD_S`` seconds, default 120): device tests hold processes with their models
loaded, so that they are known to overlap.

    python -m vitcow_assets_tests.tiny_sam3_cli run VIDEO --backend sam3 ...
"""

import contextlib
import itertools
import os
import sys
import time
from pathlib import Path

from vitcow_assets import cli
from vitcow_assets.segmenters import sam3

_BUILT = itertools.count()


def _hold(device_name: str) -> None:
    folder = os.environ.get("VITCOW_TEST_LOADED_DIR")
    if not folder:
        return
    marker = Path(folder) / f"{os.getpid()}-{next(_BUILT)}.loaded"
    marker.write_text(device_name)
    deadline = time.monotonic() + float(os.environ.get("VITCOW_TEST_HOLD_S", "120"))
    while not (Path(folder) / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> int:
    original = sam3.build_predictor

    def build_at_test_size(checkpoint, bpe, device_name, mode, *args, **kwargs):
        from vitcow_testbed.sam31_tiny import has_multiplex_builder, tiny_multiplex_builder
        from vitcow_testbed.sam3_tiny import tiny_builder

        if device_name.startswith("cpu"):
            from vitcow_assets.segmenters.sam3_cpu import install

            install()  # SAM 3.1's modules ask CUDA for device 0 when the test sizes import them
        with tiny_builder(), (tiny_multiplex_builder() if has_multiplex_builder() else contextlib.nullcontext()):
            predictor = original(checkpoint, bpe, device_name, mode, *args, **kwargs)
        _hold(device_name)
        return predictor

    sam3.build_predictor = build_at_test_size
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
