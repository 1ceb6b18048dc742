"""Practical limits with the ``ffmpeg`` CLI, on the same input and with the project's x264
settings: one decode of the source, one encode of the project's crop frames, and the
clip-file work (decode, keep every ``frame_step``-th frame, encode one MP4 per clip)."""

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np

from benchmarks.detections import crop_images, detection_boxes
from benchmarks.inputs import Input
from benchmarks.timing import Sample, Stages, best_of, measure, mp4_count, mp4_mb
from vitcow_assets.media.video import EncoderSettings
from vitcow_assets.stages.cropping import CropSettings
from vitcow_assets.stages.frames import ClipFrameStream


def available() -> bool:
    return shutil.which("ffmpeg") is not None


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)], check=True)


def x264_args(enc: EncoderSettings, keyint: int) -> list[str]:
    """The project's ``EncoderSettings`` as ffmpeg options, with an IDR frame every ``keyint``
    frames (``keyint`` = frames of one output file, so each segment file starts with one, as each
    file the project writes does)."""
    args = ["-c:v", enc.codec, "-preset", enc.preset, "-crf", str(enc.crf), "-pix_fmt", enc.pix_fmt]
    if enc.threads:
        args += ["-threads", str(enc.threads)]
    if enc.codec == "libx264":
        args += ["-x264-params", f"keyint={keyint}:min-keyint={keyint}:scenecut=0"]
    return args


def segment_args(lengths: list[int], pattern: Path) -> list[str]:
    """Cut one encoded stream into one MP4 per ``lengths`` entry (frames each)."""
    cuts = np.cumsum(lengths)[:-1]
    args = ["-f", "segment", "-reset_timestamps", "1", "-segment_format", "mp4",
            "-segment_format_options", "movflags=+faststart"]
    if len(cuts):
        args += ["-segment_frames", ",".join(str(int(c)) for c in cuts)]
    return [*args, str(pattern)]


def ffmpeg_decode(inp: Input, folder: Path) -> tuple[Stages, None]:
    # Decode the source front to back up to the last frame the clips use (as the project's one
    # decode pass does: it stops after its last wanted frame); `-f null` discards the frames.
    s, _ = measure(ffmpeg, "-i", inp.path, "-frames:v", str(inp.decoded_frames), "-f", "null", "-")
    return {"decode": s}, None


def write_crop_frames_raw(inp: Input, masks: Path, crop: CropSettings, out: Path) -> list[int]:
    """The project's crop frames (same windows, same black frames where an object is absent), in
    the project's order (clip, object id, frame), as raw rgb24 into ``out``; return the frames of
    each crop. Untimed: it only makes the input of the FFmpeg crop encode."""
    boxes = detection_boxes(masks)
    lengths = []
    with open(out, "wb") as handle:
        for clip, frames in ClipFrameStream(inp.path, inp.clips).by_clip():
            objects = boxes.get(clip.clip_id, {})
            for object_id in sorted(objects):
                images = crop_images(frames, objects[object_id], crop)
                handle.writelines(np.ascontiguousarray(image).tobytes() for image in images)
                lengths.append(len(frames))
    return lengths


def ffmpeg_crop_encode(inp: Input, raw: Path, lengths: list[int], crop: CropSettings, enc: EncoderSettings, folder: Path):
    # Choice: encode the REAL crop frames (the project's exact crop pixels, dumped beforehand as
    # raw rgb24 and read back from the page cache) rather than a synthetic testsrc2, so x264
    # sees the same content and does the same rgb24 -> yuv420p conversion as the project. One
    # ffmpeg process, one encoder, cut by the segment muxer into one MP4 per crop with an IDR
    # at every crop start: the same output files, without the per-file encoder start-up that a
    # per-crop process or encoder would add. This is the encode work that cannot be avoided.
    size = crop.crop_size
    s, _ = measure(
        ffmpeg,
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-framerate", f"{inp.clip_fps:g}", "-i", raw,
        *x264_args(enc, max(lengths)),
        *segment_args(lengths, folder / "crop%05d.mp4"),
    )
    return {"crop_encode": s}, {"crop_files": mp4_count(folder, "crop*.mp4"), "crop_mb": mp4_mb(folder)}


def ffmpeg_clip_files(inp: Input, enc: EncoderSettings, folder: Path):
    # The clip-file work in one ffmpeg process: decode, keep every frame_step-th frame (the
    # default plan's clips are back-to-back windows from frame 0, so the clips' frames are
    # exactly the multiples of frame_step below clips * span), retime to the clip rate, encode
    # with the project's x264 settings and cut every frames_per_clip frames into its own MP4 (one
    # encoder instead of one per clip, an IDR at each cut). The decode stays in YUV: no
    # RGB round trip.
    step = inp.settings.frame_step
    lengths = [c.frames for c in inp.clips]
    wanted = sorted({f for c in inp.clips for f in c.source_frames})
    if wanted != list(range(0, step * len(wanted), step)):
        raise RuntimeError("ffmpeg clip-file command assumes back-to-back clips from frame 0")
    vf = f"select='not(mod(n\\,{step}))',setpts=N/({inp.clip_fps:g}*TB)"
    s, _ = measure(
        ffmpeg,
        "-i", inp.path, "-vf", vf, "-r", f"{inp.clip_fps:g}", "-frames:v", str(len(wanted)),
        *x264_args(enc, max(lengths)),
        *segment_args(lengths, folder / "clip%05d.mp4"),
    )
    return {"clip_files": s}, {"clip_files": mp4_count(folder, "clip*.mp4"), "clip_mb": mp4_mb(folder)}


@dataclasses.dataclass
class Limits:
    decode: Sample
    crop_encode: Sample
    clip_files: Sample
    crop_frames: int
    crops: dict
    clips: dict

    @property
    def path(self) -> Sample:
        """The unavoidable work of the path without clip files: one decode + the crop encode."""
        return self.decode + self.crop_encode

    @property
    def path_with_clip_files(self) -> Sample:
        """The same plus the clip-file work (its own decode), as the project's two passes do."""
        return self.path + self.clip_files


def measure_limits(inp: Input, masks: Path, crop: CropSettings, enc: EncoderSettings, repeats: int, work: Path) -> Limits:
    """Best of ``repeats`` of each FFmpeg command on ``inp``."""
    raw = work / "crops.rgb"
    try:
        lengths = write_crop_frames_raw(inp, masks, crop, raw)
        dec, _ = best_of(repeats, work, "ffmpeg-decode", lambda f: ffmpeg_decode(inp, f))
        crops, crops_info = best_of(repeats, work, "ffmpeg-crops", lambda f: ffmpeg_crop_encode(inp, raw, lengths, crop, enc, f))
    finally:
        raw.unlink(missing_ok=True)
    clips, clips_info = best_of(repeats, work, "ffmpeg-clips", lambda f: ffmpeg_clip_files(inp, enc, f))
    return Limits(dec["decode"], crops["crop_encode"], clips["clip_files"], sum(lengths), crops_info, clips_info)
