"""``vitcow ARGS`` in this process, exactly as the ``vitcow`` console script runs it
(``vitcow_assets.cli.main``), also printing how long the segmenter took to load: the child
process of ``benchmarks.sam3_smoke``.

    python -m benchmarks.sam3_smoke_cli [--test-size] run VIDEO --backend sam3 ...

The only change is a timer around the one call that builds a model (``load_model`` of the
process's model pool, ``segmenters.model_pool``); when the run has loaded a model it prints, on
stderr, ``sam3_smoke_cli: load_s=SECONDS`` (one line per load). ``--test-size`` builds SAM3
with the tests' small sizes (``vitcow_testbed.sam3_tiny``) for the smoke's own test.
"""

import contextlib
import sys
import time

#: the stderr line's prefix, which ``benchmarks.sam3_smoke`` looks for
LOAD_LINE = "sam3_smoke_cli: load_s="


def main(argv: list[str]) -> int:
    test_size = argv[:1] == ["--test-size"]
    args = argv[1:] if test_size else argv

    from vitcow_assets import cli
    from vitcow_assets.segmenters import model_pool

    original = model_pool.load_model

    def timed_load(*load_args, **load_kwargs):
        sizes = contextlib.nullcontext()
        if test_size:  # sam3 imports only once torchvision is importable (the backend's first step)
            from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable
            from vitcow_testbed.sam3_tiny import tiny_builder

            make_torch_stack_importable()
            sizes = tiny_builder()
        start = time.perf_counter()
        with sizes:
            model = original(*load_args, **load_kwargs)
        print(f"{LOAD_LINE}{time.perf_counter() - start:.3f}", file=sys.stderr, flush=True)
        return model

    model_pool.load_model = timed_load
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
