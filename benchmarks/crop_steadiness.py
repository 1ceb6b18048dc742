"""Steadiness of the crop windows, before (a window per frame's box) and after (steady
windows, objects cut at jumps), on real footage.

Run from the repository root::

    python -m benchmarks.crop_steadiness [FOOTAGE ...] [--masks TABLE] [--smooth-frames N] [--max-zoom-out R]

FOOTAGE defaults to ``../shared/footage/vtest.avi`` and ``fish_topdown_8.avi`` (those that
exist; none: the script says so and exits 0). Each is segmented once with the motion backend
at the platform's clip defaults (or ``--masks`` gives a masks table of one footage), then
both window plans are made from the same boxes with ``core.crop_windows``:

- jitter: mean move of the window centre between consecutive frames that show the animal, px
- shake: mean size of its second difference (what is left once steady motion is taken out), px
- window jumps: window moves larger than the scene's measured speed allows for the animal
- crops with a jump: crops in which the box centre jumps (the scene's speed does not allow it)
- inside: share of shown frames whose box lies inside the window (must be 1)
- zoom out: mean window side after / before (how much smaller the animal looks)

The last line is ``key=value`` pairs (per footage, prefixed by its name).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vitcow_assets.core import crop_windows as cw
from vitcow_assets.core.clips import ClipSettings
from vitcow_assets.stages.cropping import CropSettings, measure_scene_speed, object_boxes

FOOTAGE = Path(__file__).resolve().parents[2] / "shared" / "footage"
DEFAULT_FOOTAGE = [FOOTAGE / "vtest.avi", FOOTAGE / "fish_topdown_8.avi"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.crop_steadiness", description=__doc__.split("\n\n")[0])
    p.add_argument("footage", nargs="*", type=Path, help="videos (default: the shared footage that exists)")
    p.add_argument("--masks", type=Path, help="a masks table to measure instead of segmenting (one footage)")
    p.add_argument("--smooth-frames", type=int, default=CropSettings.steady_smooth_frames)
    p.add_argument("--max-zoom-out", type=float, default=CropSettings.steady_max_zoom_out)
    return p.parse_args(argv)


def segment(path: Path, work: Path) -> Path:
    """Motion-backend masks of ``path`` at the platform's clip defaults."""
    from benchmarks.detections import compute_masks
    from benchmarks.inputs import load_input

    out = work / f"{path.stem}.parquet"
    compute_masks(load_input(path, ClipSettings()), out)
    return out


def clip_boxes(masks: Path) -> list[np.ndarray]:
    """Each (clip, object)'s ``(frames, 4)`` boxes, NaN where absent."""
    table = pq.read_table(masks, columns=["clip_id", "object_id", "clip_frame", "x1", "y1", "x2", "y2"])
    length = int(pq.read_table(masks, columns=["clip_frame"])["clip_frame"].to_numpy().max()) + 1
    out = []
    for _, _, frames, boxes in object_boxes(table):
        per_frame = np.full((length, 4), np.nan)
        per_frame[frames] = boxes
        out.append(per_frame)
    return out


class Tally:
    """Sums of one plan's measures over every crop."""

    def __init__(self) -> None:
        self.steps, self.shakes, self.inside, self.sides = [], [], [], []
        self.crops = self.window_jumps = self.crops_with_jump = self.fixed = 0

    def add(self, boxes: np.ndarray, windows: np.ndarray, present: np.ndarray, speed, fixed: bool = False) -> None:
        part_boxes = np.where(present[:, None], boxes, np.nan)
        self.crops += 1
        self.fixed += fixed
        self.steps.append(cw.centre_steps(windows, present))
        centre = (windows[:, :2] + windows[:, 2:]) / 2.0
        run = present[2:] & present[1:-1] & present[:-2]
        self.shakes.append(np.hypot(*(centre[2:] - 2 * centre[1:-1] + centre[:-2])[run].T))
        self.inside.append(cw.boxes_inside(boxes, windows, present))
        self.sides.append((windows[:, 2] - windows[:, 0])[present].astype(np.float64))
        self.window_jumps += cw.window_jumps(boxes, windows, present, speed)
        self.crops_with_jump += bool(cw.jumps(part_boxes, speed).any())

    def row(self) -> dict:
        steps, shakes = np.concatenate(self.steps), np.concatenate(self.shakes)
        return {
            "crops": self.crops,
            "jitter_px": float(steps.mean()) if len(steps) else 0.0,
            "shake_px": float(shakes.mean()) if len(shakes) else 0.0,
            "window_jumps": self.window_jumps,
            "crops_with_jump": self.crops_with_jump,
            "inside": float(np.concatenate(self.inside).mean()),
            "fixed": self.fixed,
        }


def measure(masks: Path, settings: cw.WindowSettings) -> dict:
    model = measure_scene_speed(masks)  # the crop stage's own measure
    speed = model.line_reach()
    before, after = Tally(), Tally()
    for boxes in clip_boxes(masks):
        present = cw.present_of(boxes)
        before.add(boxes, cw.frame_windows(boxes, settings.crop_size, settings.margin), present, speed)
        for plan in cw.plan_object(boxes, settings, speed):
            after.add(boxes, plan.windows, plan.present, speed, plan.fixed)
    zoom = np.concatenate(after.sides).sum() / np.concatenate(before.sides).sum()
    return {"speed": speed, "samples": len(model), "before": before.row(), "after": after.row(), "zoom_out": float(zoom)}


def report(name: str, result: dict) -> dict[str, str]:
    speed = result["speed"]
    reach = f"reach {float(speed(1)):.1f} px in 1 frame, {float(speed(4)):.1f} px in 4 ({result['samples']} one-frame moves)" if speed else "not measured"
    print(f"== {name}: scene speed {reach}")
    print(f"  {'':8s} {'crops':>6s} {'jitter px':>10s} {'shake px':>9s} {'win jumps':>10s} {'crops w/ jump':>14s} {'inside':>7s} {'fixed':>6s}")
    keys = {}
    for when in ("before", "after"):
        r = result[when]
        print(f"  {when:8s} {r['crops']:6d} {r['jitter_px']:10.2f} {r['shake_px']:9.2f} {r['window_jumps']:10d} {r['crops_with_jump']:14d} {r['inside']:7.4f} {r['fixed']:6d}")
        keys.update({f"{name}_{when}_{k}": (f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in r.items()})
    print(f"  zoom out (mean window side after / before): {result['zoom_out']:.3f}")
    keys[f"{name}_zoom_out"] = f"{result['zoom_out']:.4g}"
    keys[f"{name}_jitter_ratio"] = f"{result['after']['jitter_px'] / max(result['before']['jitter_px'], 1e-9):.3f}"
    return keys


def _table_name(masks: Path) -> str:
    """The partition key of a masks table in a storage root (``videos/<key>/masks/...``), else its stem."""
    return masks.parents[1].name if masks.parent.name == "masks" and len(masks.parents) > 1 else masks.stem


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = CropSettings(steady_smooth_frames=args.smooth_frames, steady_max_zoom_out=args.max_zoom_out).windows()
    footage = args.footage or [p for p in DEFAULT_FOOTAGE if p.is_file()]
    if not footage and args.masks is None:
        print(f"no footage (looked for {', '.join(str(p) for p in DEFAULT_FOOTAGE)}); nothing measured")
        return 0
    keys: dict[str, str] = {"smooth_frames": str(args.smooth_frames), "max_zoom_out": str(args.max_zoom_out)}
    with tempfile.TemporaryDirectory(prefix="vitcow-steady-") as work:
        sources = [(_table_name(args.masks), args.masks)] if args.masks else [(p.stem, None) for p in footage]
        for i, (name, masks) in enumerate(sources):
            masks = masks or segment(footage[i], Path(work))
            keys.update(report(name, measure(masks, settings)))
    print(" ".join(f"{k}={v}" for k, v in keys.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
