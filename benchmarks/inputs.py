"""The benchmark's input: a video, its clip plan, and the quick (truncated) and long
(concatenated) variants made by remuxing packets, without re-encoding or the ``ffmpeg`` CLI."""

import argparse
import dataclasses
from pathlib import Path

import av

from vitcow_assets.core.clips import ClipSettings, ClipWindow, plan_clips
from vitcow_assets.media.video import VideoInfo, probe_video
from vitcow_assets.stages.cropping import CropSettings

VIDEO_ID = "bench"


def remux(src: Path, dst: Path, loops: int = 1, max_packets: int | None = None) -> None:
    """Copy the video stream's packets (no re-encoding) into ``dst``: the first ``max_packets``
    of them, ``loops`` times one after the other with shifted timestamps."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        offset = 0
        for _ in range(loops):
            offset += _copy_packets(inp, stream, out, ostream, offset, max_packets)


def _copy_packets(inp, stream, out, ostream, offset: int, max_packets: int | None) -> int:
    """One pass over ``stream``'s packets into ``ostream`` shifted by ``offset``; return the
    length of the pass in timestamp units (where the next pass starts)."""
    inp.seek(0)
    last, count, duration = None, 0, 1
    for packet in inp.demux(stream):
        if packet.dts is None:
            continue
        if max_packets is not None and count >= max_packets:
            break
        last = packet.dts if last is None else max(last, packet.dts)
        duration = packet.duration or duration
        packet.stream = ostream
        packet.dts += offset
        if packet.pts is not None:
            packet.pts += offset
        out.mux(packet)
        count += 1
    return (last or 0) + duration


@dataclasses.dataclass
class Input:
    path: Path
    info: VideoInfo
    clips: list[ClipWindow]
    settings: ClipSettings

    @property
    def clip_fps(self) -> float:
        """Playback rate of the clips (every clip of the plan has the same ``frame_step``)."""
        return self.info.fps / self.settings.frame_step

    @property
    def fps_by_clip(self) -> dict[str, float]:
        """Each clip's playback rate by clip id, as ``write_crops`` takes it."""
        return {c.clip_id: self.info.fps / c.frame_step for c in self.clips}

    @property
    def sampled_frames(self) -> int:
        return sum(c.frames for c in self.clips)

    @property
    def decoded_frames(self) -> int:
        """Frames a front-to-back decode needs: up to the last frame a clip uses."""
        return max(c.source_end for c in self.clips) + 1

    def first_clip(self) -> "Input":
        """The same input cut down to its first clip (for an untimed warm-up)."""
        return dataclasses.replace(self, clips=self.clips[:1])


def load_input(path: Path, settings: ClipSettings) -> Input:
    info = probe_video(path)
    return Input(path, info, plan_clips(info.frame_count, info.fps, settings), settings)


def add_settings_args(parser: argparse.ArgumentParser) -> None:
    """The clip plan and crop size options every benchmark entry point takes."""
    parser.add_argument("--frames-per-clip", type=int, default=20)
    parser.add_argument("--frame-step", type=int, default=4)
    parser.add_argument("--crop-size", type=int, default=224)


def settings_of(args: argparse.Namespace) -> tuple[ClipSettings, CropSettings]:
    return ClipSettings(frames_per_clip=args.frames_per_clip, frame_step=args.frame_step), CropSettings(crop_size=args.crop_size)
