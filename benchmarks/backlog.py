"""Backlog benchmark: N landed videos, processed under each executor, timed the same way.

Run from the repository root::

    python -m benchmarks.backlog N [--frames F] [--variants multiprocess,in_process]

Lands N short videos (cut from ``../shared/footage/vtest.avi`` when it is there, each a
different stretch of it, else synthetic moving boxes), registers them as partitions of a fresh
SQLite instance, and processes the backlog one run after another with ``dagster.execute_job``
(the way a run worker executes a run) under each executor named by ``VITCOW_EXECUTOR``:

- ``multiprocess``: Dagster's default executor (each step its own process: Python and Dagster
  start-up, code location load and a model load per step);
- ``in_process``: every step inside the run's process; this benchmark's child holds all N runs,
  so the model is loaded once for the whole backlog (what ``vitcow run`` does);
- ``celery`` (only when asked, ``--variants ...,celery``; needs ``postgresql`` and
  ``redis-server``): a Postgres instance and Redis on 127.0.0.1 and two local workers, one on the ``gpu`` queue and one on the default queue
  (workers start before the clock does; the model is loaded once per worker).

Each variant runs in its own child process with its own storage root. Printed: per variant the
wall time, the summed ``object_masks`` step time and its share of the wall time (the "GPU
step's share"; on this CPU machine it is the motion segmenter); the last line is ``key=value``.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOOTAGE = REPO.parent / "shared" / "footage" / "vtest.avi"
VARIANTS = ("multiprocess", "in_process")  # also: celery (needs redis-server; two local workers)


def land_videos(count: int, frames: int, landing: Path) -> list[Path]:
    """``count`` short H.264 videos of ``frames`` frames each, written into ``landing``."""
    import av

    landing.mkdir(parents=True, exist_ok=True)
    if not FOOTAGE.is_file():
        sys.path.insert(0, str(REPO))
        from vitcow_testbed.synthetic import write_video

        return [write_video(landing / f"synthetic_{i}.mp4", frames=frames, fps=10 + i) for i in range(count)]
    with av.open(str(FOOTAGE)) as src:
        stream = src.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f, _ in zip(src.decode(stream), range(frames + (count - 1) * frames // 2))]
    paths = []
    for i in range(count):
        start = min(i * frames // 2, max(0, len(decoded) - frames))
        path = landing / f"vtest_{i:02d}.mp4"
        with av.open(str(path), "w") as out:
            enc = out.add_stream("libx264", rate=10)
            enc.width, enc.height, enc.pix_fmt = decoded[0].shape[1], decoded[0].shape[0], "yuv420p"
            enc.options = {"preset": "veryfast", "crf": "20"}
            for frame in decoded[start : start + frames]:
                out.mux(enc.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(enc.encode())
        paths.append(path)
    return paths


def run_backlog(videos: list[Path]) -> dict:
    """(child) Register ``videos`` and process them one run after another; times in seconds."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from vitcow_assets.cli.instance import ensure_dagster_home
    from vitcow_assets.media.hashing import sha256_file
    from vitcow_assets.footage.registry import Registry
    from vitcow_assets.footage.layout import StorageRoot, default_home
    from vitcow_testbed.deploy_helpers import step_intervals

    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    registry = Registry(StorageRoot(default_home()))
    keys = [registry.register(v, sha256_file(v)).registration.key for v in videos]
    instance.add_dynamic_partitions("videos", keys)
    job = ReconstructableRepository.for_module("vitcow_assets.definitions", "defs", working_directory=str(REPO)).get_reconstructable_job("process_video")
    run_ids = []
    start = time.perf_counter()
    for key in keys:
        with dg.execute_job(job, instance, tags={"dagster/partition": key}) as result:
            if not result.success:
                raise SystemExit(f"run of {key} failed")
            run_ids.append(result.run_id)
    wall = time.perf_counter() - start
    masks = sum(end - begin for run_id in run_ids for begin, end in step_intervals(instance, run_id, "object_masks"))
    return {"wall_s": wall, "object_masks_s": masks, "runs": len(run_ids)}


@contextlib.contextmanager
def celery_workers(env: dict, work: Path):
    """PostgreSQL (the instance the workers share) and Redis on 127.0.0.1, and two workers
    (``gpu`` queue, default queue); ``env`` gets the instance and the broker."""
    from vitcow_testbed.deploy_helpers import BIN, background
    from vitcow_testbed.servers import run_postgres, run_redis

    with run_postgres() as pg, run_redis() as url:
        env["DAGSTER_PG_PASSWORD"] = ""
        init = [sys.executable, "-m", "vitcow_assets.cli", "init", "--postgres", pg.create_database("backlog")]
        subprocess.run(init, env=env, check=True, capture_output=True)
        env.update(VITCOW_CELERY_BROKER=url, VITCOW_CELERY_BACKEND=url, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
        start = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(REPO / "deploy" / "celery.yaml")]
        with (
            background([*start, "-q", "gpu", "-n", "gpu", "--", "--concurrency", "1"], env, work / "gpu-worker.log"),
            background([*start, "-q", "dagster", "-n", "cpu", "--", "--concurrency", "1"], env, work / "cpu-worker.log"),
        ):
            yield


def measure(variant: str, videos: list[Path], work: Path) -> dict:
    home = work / variant
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VITCOW_", "DAGSTER_"))}
    env.update(VITCOW_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), VITCOW_EXECUTOR=variant, VITCOW_BACKEND="motion")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with celery_workers(env, work) if variant == "celery" else contextlib.nullcontext():
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.backlog", "--child", *map(str, videos)],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=600 + 300 * len(videos),
        )
    if done.returncode != 0:
        raise SystemExit(f"{variant}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=4, help="videos in the backlog (default 4)")
    parser.add_argument("--frames", type=int, default=160, help="frames per video (default 160: two 80-frame clips)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="executors to time, in order")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop servers and workers on the way out
    if args.child is not None:
        print(json.dumps(run_backlog([Path(p) for p in args.child])))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    work = Path(tempfile.mkdtemp(prefix="vitcow-backlog-"))
    try:
        videos = land_videos(args.count, args.frames, work / "landing")
        print(f"backlog: {len(videos)} videos of {args.frames} frames ({'vtest.avi cuts' if FOOTAGE.is_file() else 'synthetic'}), one run after another")
        results = {v: measure(v, videos, work) for v in variants}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pairs = {"videos": len(videos), "frames": args.frames}
    for variant, r in results.items():
        share = r["object_masks_s"] / r["wall_s"] if r["wall_s"] else 0.0
        print(f"{variant:>13}: wall {r['wall_s']:7.1f} s, object_masks {r['object_masks_s']:6.1f} s ({share:.0%} of the wall time)")
        pairs[f"{variant}_s"] = round(r["wall_s"], 2)
        pairs[f"{variant}_gpu_step_share"] = round(share, 3)
    if {"multiprocess", "in_process"} <= results.keys():
        pairs["multiprocess_over_in_process"] = round(results["multiprocess"]["wall_s"] / results["in_process"]["wall_s"], 2)
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
