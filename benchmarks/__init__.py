"""Benchmarks of the vitcow_assets pipeline (run as ``python -m benchmarks.pipeline``)."""
