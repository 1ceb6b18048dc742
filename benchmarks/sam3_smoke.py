"""SAM3 at full size through ``vitcow run``: the release checkpoint's layouts load and a clip goes
through, with the load time, the time per frame and the peak memory.

Run from the repository root (on the CPU it needs about 8 GB of memory and a few minutes)::

    python -m benchmarks.sam3_smoke [FOOTAGE] [--frames-per-clip 3] [--max-clips 1] [--device cpu]

FOOTAGE defaults to ``../shared/footage/vtest.avi`` where it exists, else a short synthetic
clip written here. No weights can be downloaded, so the real SAM3 video model is built by
``sam3``'s own builder at its own (full) sizes with random weights (seeded: the same bytes on
every run of the same torch), in a child process, and saved the way the official release lays
out ``sam3.pt``: one flat state dict whose keys start with ``detector.`` or ``tracker.``;
and once more wrapped as ``{"model": state_dict}`` (the layout of training checkpoints, which
SAM3's builder unwraps). Each file then goes through ``vitcow run --backend sam3
--sam3-checkpoint FILE --sam3-device DEVICE --frames-per-clip N --max-clips M`` in a fresh
storage root (``benchmarks.sam3_smoke_cli``: the CLI's own ``main`` with a timer around the
model's load). Everything is written into one temporary folder, removed at the end;
``--keep DIR`` writes the two checkpoints (``sam3.pt``, ``sam3_wrapped.pt``) into DIR instead
and keeps them (a full-size file is 3.2 GB).

The last line printed is ``key=value`` pairs, first:

- ``load_s``: building the model from the flat file, inside the run (the segmenter's load);
- ``s_per_frame``: the ``object_masks`` step's model time (``timings_s.model`` of its
  materialization: sessions, prompt, propagation) over the frames of the clips;
- ``peak_rss_gb``: the larger peak resident set of the two runs (each run's own process,
  ``wait4``'s ``ru_maxrss``);
- ``layouts_ok``: ``true`` when both runs succeeded, each masks table names its own file as
  the checkpoint, with that file's sha256 (its lineage), and holds rows for no frame outside
  the clips;
- ``checkpoint_sha256``: sha256 of the flat file's bytes (``hashlib`` over the file);

then ``load_s_wrapped``, ``s_per_frame_wrapped``, ``run_s``, ``run_s_wrapped`` (each run's
wall time), ``masks_equal`` (the two runs wrote the same rows), ``objects``, ``frames``,
``build_s`` and ``build_peak_rss_gb`` (making the random model and saving it),
``parameters``, ``checkpoint_gb``, ``device``, ``size``, ``python``, ``torch``.
Random weights find no object: the figures are about loading and running, not results.
``--test-size`` builds the tests' small SAM3 instead (``vitcow_testbed.sam3_tiny``):
the smoke's own test, in seconds.
"""

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.sam3_smoke_cli import LOAD_LINE

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOOTAGE = REPO.parent / "shared" / "footage" / "vtest.avi"
RELEASE_PREFIXES = ("detector.", "tracker.")
SEED = 0
SYNTHETIC_SIZE = (320, 240)  # width, height of the synthetic clip
SYNTHETIC_FRAMES = 40
RUN_TIMEOUT_S = 3600  # one full-size run on 2 busy cores took 3 to 6 minutes
GB = 2**30


# --------------------------------------------------------------------------------------------
# the checkpoint (built in a child process, so that this one stays small while the runs go)


def build_checkpoints(folder: str, test_size: bool, info_path: str) -> None:
    """Child process: the random model, saved flat (``sam3.pt``) and wrapped
    (``sam3_wrapped.pt``) in ``folder``; what it found written as JSON to ``info_path``."""
    import torch

    from vitcow_assets.segmenters.sam3 import find_bpe_path
    from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install

    install()  # the builder puts some parts on "cuda": build on the CPU whatever runs later
    from sam3.model_builder import build_sam3_video_model

    start = time.perf_counter()
    sizes = _tiny_sizes() if test_size else contextlib.nullcontext()
    with sizes, cpu_mode():
        torch.manual_seed(SEED)
        model = build_sam3_video_model(checkpoint_path=None, load_from_HF=False, bpe_path=find_bpe_path(), device="cpu")
    state = model.state_dict()
    _fill_uninitialised(state)
    strays = sorted(k for k in state if not k.startswith(RELEASE_PREFIXES))
    if strays or not all(any(k.startswith(p) for k in state) for p in RELEASE_PREFIXES):
        raise RuntimeError(f"the built model's keys are not the release layout: {strays[:5]}")
    flat, wrapped = Path(folder) / "sam3.pt", Path(folder) / "sam3_wrapped.pt"
    torch.save(state, flat)
    torch.save({"model": state}, wrapped)
    info = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_s": time.perf_counter() - start,
        "build_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB,
        "flat": str(flat),
        "wrapped": str(wrapped),
    }
    Path(info_path).write_text(json.dumps(info))


def _tiny_sizes():
    from vitcow_testbed.sam3_tiny import tiny_builder

    return tiny_builder()


def _fill_uninitialised(state: dict) -> None:
    """Tensors SAM3 creates with ``torch.empty`` (its loader overwrites them) that hold NaN or
    infinity: seeded normal values instead, so that the model runs and the file's bytes repeat."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    for tensor in state.values():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)


def make_checkpoints(folder: Path, test_size: bool) -> dict:
    """Run ``build_checkpoints`` in a fresh process; its info, or a RuntimeError."""
    info_path = folder / "sam3_smoke_checkpoint.json"
    info_path.unlink(missing_ok=True)
    child = multiprocessing.get_context("spawn").Process(target=build_checkpoints, args=(str(folder), test_size, str(info_path)))
    child.start()
    child.join()
    if child.exitcode != 0 or not info_path.is_file():
        raise RuntimeError(f"building the random SAM3 checkpoint failed (exit code {child.exitcode}; its error is above)")
    info = json.loads(info_path.read_text())
    info_path.unlink()
    return info


def sha256_of(path: Path, chunk_bytes: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# the runs


def synthetic_clip(path: Path) -> Path:
    """A few seconds of a bright box crossing a textured floor (no real footage needed)."""
    import numpy as np

    from vitcow_assets.media.video import VideoWriter

    width, height = SYNTHETIC_SIZE
    floor = np.random.default_rng(SEED).integers(60, 120, (height, width, 3), dtype=np.uint8)
    with VideoWriter(path, width, height, 10.0) as writer:
        for i in range(SYNTHETIC_FRAMES):
            frame = floor.copy()
            x = 10 + i * (width - 80) // SYNTHETIC_FRAMES
            frame[height // 3 : height // 3 + 50, x : x + 60] = (210, 190, 170)
            writer.write(frame)
    return path


def vitcow_run(footage: Path, checkpoint: Path, home: Path, args: argparse.Namespace) -> dict:
    """``vitcow run`` on ``footage`` with ``checkpoint`` in the storage root ``home``: the
    video's report, the run's wall time, its process's peak RSS and its load time."""
    command = [sys.executable, "-m", "benchmarks.sam3_smoke_cli", *(["--test-size"] if args.test_size else []), "run", str(footage),
               "--backend", "sam3", "--sam3-checkpoint", str(checkpoint), "--sam3-device", args.device,
               "--frames-per-clip", str(args.frames_per_clip), "--max-clips", str(args.max_clips), "--json", "--no-progress"]
    env = {**os.environ, "VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"), "PYTHONPATH": str(REPO)}
    env.pop("VITCOW_SAM3_CHECKPOINT", None)
    home.mkdir(parents=True)
    out_path, err_path = home / "run.stdout", home / "run.stderr"
    start = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
        _, status, usage = _wait(child)
    wall = time.perf_counter() - start
    stderr = err_path.read_text()
    code = os.waitstatus_to_exitcode(status)
    try:
        (video,) = json.loads(out_path.read_text())["videos"]
    except (ValueError, KeyError) as exc:
        raise RuntimeError(f"vitcow run exited {code} without its JSON report ({exc}): {stderr[-2000:]}") from None
    if video["status"] != "success":
        raise RuntimeError(f"vitcow run with {checkpoint.name} failed: {video.get('error')}\n{stderr[-2000:]}")
    loads = [float(line[len(LOAD_LINE) :]) for line in stderr.splitlines() if line.startswith(LOAD_LINE)]
    if len(loads) != 1:
        raise RuntimeError(f"the run loaded the model {len(loads)} times, not once: {stderr[-2000:]}")
    return {"video": video, "wall_s": wall, "peak_rss_gb": usage.ru_maxrss * 1024 / GB, "load_s": loads[0], "home": home}


def _wait(child: subprocess.Popen):
    """``wait4`` on the child (its own rusage), with a deadline."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
            return pid, status, usage
        time.sleep(0.2)
    child.kill()
    child.wait()
    raise RuntimeError(f"vitcow run did not finish within {RUN_TIMEOUT_S} s")


def inspect_run(run: dict, checkpoint: Path) -> dict:
    """What the run wrote: model time per frame, frames, objects, whether the masks table names
    ``checkpoint`` and holds only the clips' frames."""
    import dagster as dg
    import pyarrow.parquet as pq

    video = run["video"]
    clips = pq.read_table(video["clips_manifest"], columns=["clip_id", "frames"])
    frames = sum(clips["frames"].to_pylist())
    masks = pq.read_table(video["masks_table"])
    recorded = {k.decode(): v.decode() for k, v in (masks.schema.metadata or {}).items()}
    names_file = recorded.get("vitcow.checkpoint") == str(checkpoint)
    hashes_file = recorded.get("vitcow.checkpoint_sha256") == sha256_of(checkpoint)
    inside = set(masks["clip_id"].to_pylist()) <= set(clips["clip_id"].to_pylist())
    with dg.DagsterInstance.from_config(str(run["home"] / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("object_masks"))
        timings = event.asset_materialization.metadata["timings_s"].value
    return {
        "s_per_frame": timings["model"] / frames if frames else float("nan"),
        "frames": frames,
        "objects": len(set(zip(masks["clip_id"].to_pylist(), masks["object_id"].to_pylist()))),
        "ok": names_file and hashes_file and inside and frames > 0,
        "why": (f"the masks table names {recorded.get('vitcow.checkpoint')!r}, not {str(checkpoint)!r}" if not names_file else
                f"the masks table records sha256 {recorded.get('vitcow.checkpoint_sha256')!r}, not the file's" if not hashes_file else ""),
        "rows": _rows(masks),
    }


def _rows(table):
    """The table's rows without what only says which run wrote them (its metadata, run id)."""
    from vitcow_assets.core.tables import RUN_ID_COLUMNS

    kept = table.drop_columns([c for c in RUN_ID_COLUMNS if c in table.column_names])
    return kept.replace_schema_metadata(None)


# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    import torch

    with tempfile.TemporaryDirectory(prefix="sam3_smoke-") as tmp:
        folder = Path(tmp)
        footage = args.footage
        if footage is None:
            footage = DEFAULT_FOOTAGE if DEFAULT_FOOTAGE.is_file() else synthetic_clip(folder / "synthetic.mp4")
            print(f"footage: {footage}", flush=True)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
        info = make_checkpoints(args.keep or folder, args.test_size)
        flat, wrapped = Path(info["flat"]), Path(info["wrapped"])
        print(f"checkpoint: {info['parameters']:,} parameters, built and saved in {info['build_s']:.1f} s", flush=True)
        runs = {}
        for name, checkpoint in (("flat", flat), ("wrapped", wrapped)):
            runs[name] = vitcow_run(footage, checkpoint, folder / f"home_{name}", args)
            runs[name].update(inspect_run(runs[name], checkpoint))
            print(f"{name}: vitcow run in {runs[name]['wall_s']:.1f} s, load {runs[name]['load_s']:.1f} s, "
                  f"peak RSS {runs[name]['peak_rss_gb']:.2f} GB {runs[name]['why']}", flush=True)
        return {
            "load_s": round(runs["flat"]["load_s"], 2),
            "s_per_frame": round(runs["flat"]["s_per_frame"], 3),
            "peak_rss_gb": round(max(r["peak_rss_gb"] for r in runs.values()), 2),
            "layouts_ok": str(all(r["ok"] for r in runs.values())).lower(),
            "checkpoint_sha256": sha256_of(flat),
            "load_s_wrapped": round(runs["wrapped"]["load_s"], 2),
            "s_per_frame_wrapped": round(runs["wrapped"]["s_per_frame"], 3),
            "run_s": round(runs["flat"]["wall_s"], 1),
            "run_s_wrapped": round(runs["wrapped"]["wall_s"], 1),
            "masks_equal": str(runs["flat"]["rows"].equals(runs["wrapped"]["rows"])).lower(),
            "objects": runs["flat"]["objects"],
            "frames": runs["flat"]["frames"],
            "build_s": round(info["build_s"], 1),
            "build_peak_rss_gb": round(info["build_peak_rss_gb"], 2),
            "parameters": info["parameters"],
            "checkpoint_gb": round(flat.stat().st_size / GB, 3),
            "device": args.device,
            "size": "test" if args.test_size else "full",
            "python": platform.python_version(),
            "torch": torch.__version__,
        }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sam3_smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("footage", nargs="?", type=Path, help="a video (default: ../shared/footage/vtest.avi, else a synthetic clip)")
    parser.add_argument("--frames-per-clip", type=int, default=3, help="frames per clip (default 3)")
    parser.add_argument("--max-clips", type=int, default=1, help="clips (default 1)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the runs put the model (default cpu)")
    parser.add_argument("--test-size", action="store_true", help="the tests' small SAM3 instead of full size (the smoke's own test)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the checkpoints into DIR and keep them")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.footage is not None and not args.footage.is_file():
        print(f"sam3_smoke: {args.footage} is not a file", file=sys.stderr)
        return 2
    try:
        values = run(args)
    except RuntimeError as exc:
        print(f"sam3_smoke: {exc}", file=sys.stderr)
        return 1
    print(" ".join(f"{key}={value}" for key, value in values.items()))
    return 0 if values["layouts_ok"] == "true" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
