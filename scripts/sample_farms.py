"""Land the sample as footage of two farms, the layout farm servers use
(``<FARM>/<camera>/<YYYYMMDDHHMM>_<camera>.mp4``): its first and second halves, so that the
demo has a farm to hold out when it builds a dataset. Deterministic: the same sample gives
the same bytes. Files already there are left alone.

    .venv/bin/python scripts/sample_farms.py SAMPLE LANDING_FOLDER
"""

import sys
from pathlib import Path

PARTS = (("FARM_A", "D01", "202401010800"), ("FARM_B", "D01", "202401010900"))


def main(sample: str, landing: str) -> int:
    from vitcow_assets.media.video import VideoWriter, iter_frames, probe_video

    info = probe_video(sample)
    half = info.frame_count // 2
    targets = [Path(landing) / farm / camera / f"{stamp}_{camera}.mp4" for farm, camera, stamp in PARTS]
    if all(t.exists() for t in targets):
        return 0
    writers = []
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        writers.append(VideoWriter(target, info.width, info.height, info.fps).__enter__())
    try:
        for index, frame in iter_frames(sample):
            writers[min(index // half, len(writers) - 1)].write(frame)
    except BaseException as exc:
        for writer in writers:
            writer.__exit__(type(exc), exc, exc.__traceback__)
        raise
    for writer in writers:
        writer.__exit__(None, None, None)
    for target in targets:
        print(f"landed {target}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(*sys.argv[1:3]))
