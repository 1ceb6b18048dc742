"""Run in a child process: clip files, crops and the contact sheet of one partition, from
its clips and masks tables, into a storage root, optionally on a "different machine".

``python -m vitcow_assets_tests.stages.crop_child CONFIG_JSON`` with ``source``, ``clips``
and ``masks`` (tables of an earlier run), ``root`` (where to write), ``workers`` (crop
files encoded at once) and ``other_machine``: then the process is pinned to one core,
FFmpeg's SIMD is switched off (``av_force_cpu_flags(0)``, what ``ffmpeg -cpuflags 0``
does), OpenCV's optimized code paths too, and x264 is held to SSE4.2 (its ``asm`` mask):
the same code on what looks like another, older CPU. Prints a JSON line saying what was
forced.
"""

import ctypes
import ctypes.util
import glob
import json
import os
import platform
import sys
from pathlib import Path

#: x264's CPU flags up to SSE4.2 (MMX, MMX2, SSE, SSE2, LZCNT, SSE3, SSSE3, SSE4, SSE42)
#: and its 64-byte cache line flag
X264_SSE42 = 0x1FF | (1 << 18)


def libavutil() -> ctypes.CDLL | None:
    import av

    bundled = glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", "libavutil*"))
    name = bundled[0] if bundled else ctypes.util.find_library("avutil")
    return ctypes.CDLL(name) if name else None


def become_another_machine() -> dict:
    forced = {}
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    forced["cores"] = len(os.sched_getaffinity(0))
    lib = libavutil()
    if lib is not None:
        lib.av_force_cpu_flags(ctypes.c_int(0))
        forced["ffmpeg_cpu_flags"] = lib.av_get_cpu_flags()
    import cv2

    cv2.setUseOptimized(False)
    forced["opencv_optimized"] = cv2.useOptimized()
    forced["x264_asm"] = X264_SSE42 if platform.machine().lower() in ("x86_64", "amd64") else None
    return forced


def main() -> None:
    cfg = json.loads(sys.argv[1])
    forced = become_another_machine() if cfg["other_machine"] else {}
    import pyarrow.parquet as pq

    from vitcow_assets.core.tables import clip_fps_by_id, clips_from_table
    from vitcow_assets.media.video import EncoderSettings
    from vitcow_assets.stages.clipping import write_clips
    from vitcow_assets.stages.cropping import CropProvenance, CropSettings, write_crops
    from vitcow_assets.stages.previews import contact_sheet
    from vitcow_assets.footage.layout import StorageRoot

    asm = forced.get("x264_asm")
    encoder = EncoderSettings(x264_params=f"asm={asm}") if asm else EncoderSettings()
    table = pq.read_table(cfg["clips"])
    clips = clips_from_table(table)
    layout = StorageRoot(Path(cfg["root"])).video("v")
    fps = table["fps"][0].as_py() * clips[0].frame_step
    write_clips(cfg["source"], "v", clips, fps, layout, True, encoder)
    provenance = CropProvenance("v", cfg["source"], "0" * 64, "motion/v2", None, "test", "run-1")
    write_crops(cfg["source"], clips, clip_fps_by_id(table), cfg["masks"], layout, CropSettings(), provenance, encoder, encode_workers=cfg["workers"])
    contact_sheet(cfg["source"], clips, cfg["masks"], layout.contact_sheet)
    print(json.dumps(forced))


if __name__ == "__main__":
    main()
