"""Timing of benchmark stages: wall and CPU seconds, best of several repeats."""

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass
class Sample:
    """Wall seconds and CPU seconds (user + system of this process and of waited children)."""

    wall: float
    cpu: float

    def __add__(self, other: "Sample") -> "Sample":
        return Sample(self.wall + other.wall, self.cpu + other.cpu)


Stages = dict[str, Sample]


def measure(fn: Callable, *args, **kwargs):
    """Run ``fn`` once; return ``(Sample, result)``."""
    t0 = os.times()
    w0 = time.perf_counter()
    result = fn(*args, **kwargs)
    w1 = time.perf_counter()
    t1 = os.times()
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    cpu += (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    return Sample(w1 - w0, cpu), result


def total(stages: Stages) -> Sample:
    out = Sample(0.0, 0.0)
    for s in stages.values():
        out = out + s
    return out


def best_of(repeats: int, work: Path, name: str, run: Callable[[Path], tuple[Stages, object]]) -> tuple[Stages, object]:
    """Call ``run(fresh_folder)`` ``repeats`` times; keep the repeat with the least total wall time.

    ``run`` returns ``({stage: Sample}, info)``. Each repeat writes into a fresh folder that is
    removed after it (outside the timed code), so no repeat times the deletion of another's output.
    """
    best: tuple[Stages, object] | None = None
    for i in range(repeats):
        folder = work / f"{name}-{i}"
        folder.mkdir(parents=True)
        try:
            stages, info = run(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if best is None or total(stages).wall < total(best[0]).wall:
            best = (stages, info)
    return best


def mp4_mb(folder: Path) -> float:
    """Total size of the MP4 files under ``folder``, MB."""
    return sum(p.stat().st_size for p in folder.rglob("*.mp4")) / 1e6


def mp4_count(folder: Path, pattern: str = "*.mp4") -> int:
    """Number of MP4 files under ``folder`` (recursively) matching ``pattern``."""
    return sum(1 for _ in folder.rglob(pattern))
