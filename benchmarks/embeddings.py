"""Speed and memory of ``crop_embeddings``' stage (``stages.embedding.embed_crops``), each
measure in a child process of its own (a fresh peak RSS, the model loaded once).

``python -m benchmarks.embeddings [--crops 48] [--catalogs 1000,10000] [--base-crops 8]
[--threads 2] [--batch-size 8] [--work DIR]`` writes a pool of ``--crops`` real crop videos
(224 px, 20 frames, H.264 as the pipeline writes them) and random-weight checkpoints, then:

- **test size** (the tests' tiny VideoMAE: 3 layers of width 128, 4 frames of 32 px): crops
  embedded per second end to end (decode the sampled frames, fit them, encode, write), against
  the decode floor measured in the same run on the same crops (``sampled_clip`` alone):
  ``test_vs_decode`` = end-to-end rate / decode rate;
- **VideoMAE-Base** (random weights: 12 layers of width 768, 16 frames of 224 px, on the CPU):
  ``--base-crops`` crops end to end, against the model alone on the same decoded clips:
  ``base_vs_model`` = end-to-end rate / model-only rate (what decoding and writing cost);
- **memory as the catalog grows**: the peak RSS of embedding a catalog of each size in
  ``--catalogs`` (rows cycling over the pool's files) at test size, and of re-running it when
  every row is kept; ``rss_ratio`` = the largest catalog's peak / the smallest's, and
  ``kept_rss_ratio`` the same for the re-runs (bounded memory: near 1);
- **the stage's own bookkeeping at ``--bookkeeping`` rows** (100,000 by default): the same two
  runs with the decoder and the model replaced by zeros of VideoMAE-Base's width (768), so
  that what grows with the catalog (ids, paths, the earlier table's window, the writer) is
  all that is measured: ``book_rss_<rows>_mb``, ``book_kept_rss_<rows>_mb``, and their ratio
  to the same at the smallest catalog size.

Run it under ``flock /tmp/vitcow-heavy.lock`` on a shared machine (the Base run holds ~1 GB
and keeps the CPU busy). The last line is ``key=value`` pairs.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.memory import peak_mb
from vitcow_assets.core.catalog import CATALOG_SCHEMA
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.parquet import write_table

REPO = Path(__file__).resolve().parents[1]
CROP_SIZE, CROP_FRAMES = 224, 20


def _catalog(paths: list[str], rows: int) -> pa.Table:
    """A catalog of ``rows`` crops (every column of the real one) cycling over ``paths``."""
    ids = [f"{i:020x}" for i in range(rows)]
    text = lambda value: pa.array([value] * rows, pa.string())  # noqa: E731
    number = lambda value, kind: pa.array([value] * rows, kind)  # noqa: E731
    columns = {
        "crop_id": pa.array(ids, pa.string()), "crop_path": pa.array([paths[i % len(paths)] for i in range(rows)], pa.string()),
        "video_id": pa.array([f"video_{i // 200:05d}" for i in range(rows)], pa.string()), "source_sha256": text("0" * 64),
        "source_path": text("/landing/FarmA/D01/x.mp4"), "source_uri": text("file:///landing/FarmA/D01/x.mp4"), "farm": text("FarmA"),
        "camera": text("D01"), "recorded_at": pa.array([None] * rows, pa.timestamp("s")), "clip_id": pa.array([f"c{i % 200:05d}" for i in range(rows)], pa.string()),
        "object_id": number(0, pa.int64()), "part": number(0, pa.int32()), "track_id": pa.array(list(range(rows)), pa.int64()),
        "source_frame_start": number(0, pa.int64()), "source_frame_end": number(76, pa.int64()), "frame_step": number(4, pa.int32()),
        "frames": number(CROP_FRAMES, pa.int32()), "frames_present": number(CROP_FRAMES, pa.int32()), "presence_ratio": number(1.0, pa.float64()),
        "fps": number(2.5, pa.float64()), "duration_s": number(8.0, pa.float64()), "segmenter": text("motion/v2"), "model_checkpoint": text(None),
        "prompt": text("cow"), "code_version": text("0.1.0"), "run_id": text("run"),
    }
    columns = {f.name: columns.get(f.name, pa.nulls(rows, f.type)) for f in CATALOG_SCHEMA}  # columns added since: null
    return pa.table(columns).cast(CATALOG_SCHEMA)


class _ZerosEncoder:
    """The encoder's interface with no model: zeros of VideoMAE-Base's width (bookkeeping runs)."""

    def __init__(self, settings) -> None:
        from vitcow_assets.core.videomae_layout import IMAGENET_MEAN, IMAGENET_STD, EncoderSpec

        self.settings = settings
        self.spec = EncoderSpec(layout="original", kind="encoder", depth=12, dim=768, heads=12, mlp_dim=3072, patch=16, tubelet=2, frames=16,
                                image_size=224, qkv_bias=True, final_norm=True, pooling="mean", layer_norm_eps=1e-6, fc_norm_eps=None,
                                mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def runtime_record(self) -> dict:
        return {"device": "none (zeros)", "batch_size": self.settings.batch_size}

    def embed(self, clips: np.ndarray) -> np.ndarray:
        return np.zeros((len(clips), self.spec.dim), np.float32)


def _child(spec: dict) -> dict:
    """One measure, in this (child) process: embed the catalog under ``spec['home']``."""
    from vitcow_assets.encoders import EncoderSettings, load_encoder
    from vitcow_assets.encoders.frames import sampled_clip
    from vitcow_assets.encoders.registry import CheckpointRegistry
    from vitcow_assets.stages import embedding
    from vitcow_assets.stages.embedding import embed_crops, read_targets

    root = StorageRoot(Path(spec["home"]))
    settings = EncoderSettings(device="cpu", batch_size=spec["batch_size"], threads=spec["threads"])
    if spec.get("zeros"):
        from vitcow_assets.encoders.registry import RegisteredCheckpoint

        entry, encoder = RegisteredCheckpoint("zeros-000000000000", "0" * 64, "-", "original", {}), _ZerosEncoder(settings)
        embedding.sampled_clip = lambda path, frames, size: ([0] * frames, np.zeros((frames, 1, 1, 3), np.uint8))  # no decoding
    else:
        entry = CheckpointRegistry(root).register(spec["checkpoint"])
        encoder = load_encoder(entry.path, settings, entry.sha256)
    report = {"rss_loaded_mb": peak_mb()}
    paths = read_targets(root)["crop_path"].to_pylist()
    if spec.get("floor"):
        started = time.perf_counter()
        clips = np.stack([sampled_clip(p, encoder.spec.frames, encoder.spec.image_size)[1] for p in paths])
        report["decode_per_s"] = len(paths) / (time.perf_counter() - started)
        started = time.perf_counter()
        encoder.embed(clips)
        report["model_per_s"] = len(paths) / (time.perf_counter() - started)
        del clips
    result = embed_crops(root, entry, encoder, "benchmark", "benchmark")
    report["run0"] = {**result.summary(), "peak_rss_mb": peak_mb()}
    return report


def _measure(spec: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.embeddings", "--child", json.dumps(spec)], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _checkpoints(folder: Path, with_base: bool) -> tuple[Path, Path | None]:
    """A test-size transformers folder and (``with_base``) a VideoMAE-Base one (random weights)."""
    from vitcow_testbed.videomae_inputs import pretraining_model, save_transformers

    from transformers import VideoMAEConfig, VideoMAEModel

    tiny = save_transformers(pretraining_model(0), folder / "tiny")
    base = folder / "base"
    if not with_base:
        return tiny, None
    if not (base / "config.json").is_file():
        VideoMAEModel(VideoMAEConfig(use_mean_pooling=False, layer_norm_eps=1e-6)).save_pretrained(base)
    return tiny, base


def _bookkeeping(work: Path, pool: list[str], common: dict, sizes: list[int]) -> dict:
    """Peak RSS of a first and a kept run per catalog size, no decoder and no model."""
    out, peaks = {}, {}
    for rows in sizes:
        spec = {**common, "home": str(_site(work, f"book{rows}", pool, rows)), "zeros": True}
        first, again = _measure(spec), _measure(spec)
        assert again["run0"]["kept"] == rows, again
        peaks[rows] = (first["run0"]["peak_rss_mb"], again["run0"]["peak_rss_mb"])
        out.update({f"book_rss_{rows}_mb": round(peaks[rows][0]), f"book_kept_rss_{rows}_mb": round(peaks[rows][1])})
    if len(sizes) > 1:
        out["book_rss_ratio"] = round(peaks[sizes[-1]][0] / peaks[sizes[0]][0], 3)
        out["book_kept_rss_ratio"] = round(peaks[sizes[-1]][1] / peaks[sizes[0]][1], 3)
    return out


def _site(work: Path, name: str, paths: list[str], rows: int) -> Path:
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    write_table(StorageRoot(home).catalog_table, _catalog(paths, rows))
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=48, help="real crop files in the pool (and the test-size throughput run)")
    parser.add_argument("--catalogs", default="1000,10000", help="catalog sizes for the memory runs, comma-separated")
    parser.add_argument("--base-crops", type=int, default=8, help="crops embedded by VideoMAE-Base (0: skip)")
    parser.add_argument("--bookkeeping", type=int, default=100_000, help="catalog rows of the run without decoder or model (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed after)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable
    from vitcow_testbed.videomae_inputs import write_crop

    make_torch_stack_importable()
    work = args.work or Path(tempfile.mkdtemp(prefix="vitcow-embeddings-"))
    try:
        pool = [str(write_crop(work / "pool" / f"obj{i:04d}.mp4", CROP_FRAMES, seed=i, size=CROP_SIZE)) for i in range(args.crops)]
        tiny, base = _checkpoints(work / "checkpoints", args.base_crops > 0)
        common = {"threads": args.threads, "batch_size": args.batch_size}
        out: dict = {"threads": args.threads, "batch_size": args.batch_size, "crops": args.crops}
        test = _measure({**common, "home": str(_site(work, "test", pool, args.crops)), "checkpoint": str(tiny), "floor": True})
        out.update(test_per_s=test["run0"]["crops_per_second"], test_decode_per_s=round(test["decode_per_s"], 2))
        out["test_vs_decode"] = round(out["test_per_s"] / out["test_decode_per_s"], 3)
        if args.base_crops:
            base_run = _measure({**common, "home": str(_site(work, "base", pool, args.base_crops)), "checkpoint": str(base), "floor": True})
            out.update(base_per_s=base_run["run0"]["crops_per_second"], base_model_per_s=round(base_run["model_per_s"], 3),
                       base_peak_rss_mb=round(base_run["run0"]["peak_rss_mb"]))
            out["base_vs_model"] = round(out["base_per_s"] / out["base_model_per_s"], 3)
        sizes = [int(s) for s in args.catalogs.split(",") if s.strip()]
        peaks, kept = {}, {}
        for rows in sizes:
            spec = {**common, "home": str(_site(work, f"catalog{rows}", pool, rows)), "checkpoint": str(tiny)}
            first, again = _measure(spec), _measure(spec)  # the second finds every row made: all kept
            assert again["run0"]["kept"] == rows, again
            peaks[rows], kept[rows] = first["run0"]["peak_rss_mb"], again["run0"]["peak_rss_mb"]
            out.update({f"rss_{rows}_mb": round(peaks[rows]), f"kept_rss_{rows}_mb": round(kept[rows]), f"rss_loaded_{rows}_mb": round(first["rss_loaded_mb"]),
                        f"per_s_{rows}": first["run0"]["crops_per_second"]})
        if len(sizes) > 1:
            out["rss_ratio"] = round(peaks[sizes[-1]] / peaks[sizes[0]], 3)
            out["kept_rss_ratio"] = round(kept[sizes[-1]] / kept[sizes[0]], 3)
        if args.bookkeeping:
            out.update(_bookkeeping(work, pool, common, [sizes[0], args.bookkeeping] if sizes else [args.bookkeeping]))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(" ".join(f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
