"""Frames scaled on their way out of the decoder (``FrameScale``, ``frame_to_scaled``): one
swscale pass from the decoded planes to a small planar RGB frame, no full-size RGB frame.
Checked against PIL's bicubic resize of the full-size RGB frame (SAM3's own loader), against
the BT.601 formula for colours, and for the same bytes whatever the thread count or SIMD."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vitcow_assets.media.video import FrameScale, ScaledFrame, frame_to_scaled, iter_frames, rgb_to_scaled
from vitcow_testbed.synthetic import write_video

SIZE = 112  # a small model input: the tests' stand-in for SAM3's 1008


@pytest.fixture(scope="module")
def video_420(tmp_path_factory):
    """4:2:0 chroma, as cameras and the platform's own files have it."""
    return write_video(tmp_path_factory.mktemp("scale") / "pen420.mp4", frames=12, width=640, height=360, pix_fmt="yuv420p")


def _rgb(frame: ScaledFrame) -> np.ndarray:
    return np.stack(frame.planes, -1)


def _pil(rgb: np.ndarray, size: int = SIZE) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((size, size)))  # SAM3's call: PIL's default, bicubic


def test_scaled_frames_are_small_rgb_planes_close_to_pils_resize_of_the_full_frame(video_420):
    wanted = range(0, 12, 3)
    scaled = [f for _, f in iter_frames(video_420, wanted, scale=FrameScale(SIZE, SIZE))]
    full = [f for _, f in iter_frames(video_420, wanted)]
    assert len(scaled) == len(full) == 4
    for ours, rgb in zip(scaled, full):
        assert isinstance(ours, ScaledFrame) and (ours.source_height, ours.source_width) == (360, 640)
        assert all(p.shape == (SIZE, SIZE) and p.dtype == np.uint8 for p in ours.planes)
        diff = np.abs(_rgb(ours).astype(int) - _pil(rgb))
        # measured: max 7-10, mean 1.74 (of which 1.73 is the full-size RGB's colour bias, below)
        assert diff.max() <= 16 and diff.mean() < 2.5
        mirrored = np.abs(_rgb(ours).astype(int) - _pil(rgb)[:, ::-1]).mean()
        assert mirrored > 8 * diff.mean()  # the tolerance tells a right picture from a wrong one


def test_scaled_colours_are_the_bt601_conversion_of_the_decoded_planes(video_420):
    """At the source's own size the planar output is the BT.601 (limited range) formula on
    the decoded planes, to within rounding: no colour bias. (``frame_to_rgb``'s packed RGB
    of the same frame is about 1.7 levels darker: measured 1.73-1.75 here.)"""
    _, frame = next(iter_frames(video_420, [5], native=True))
    h, w = frame.height, frame.width
    y, u, v = (np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:, : p.width].astype(float) for p in frame.planes)
    u, v = (np.repeat(np.repeat(c, 2, 0), 2, 1)[:h, :w] for c in (u, v))
    luma, cb, cr = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
    formula = np.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], -1).clip(0, 255)
    ours = _rgb(frame_to_scaled(frame, FrameScale(w, h, "bilinear"))).astype(float)
    bias = (ours - formula).reshape(-1, 3).mean(0)
    assert np.all(np.abs(bias) < 0.25), bias


def test_a_quarter_turned_video_is_scaled_as_displayed(tmp_path):
    video = write_video(tmp_path / "phone.mp4", frames=8, width=320, height=240, pix_fmt="yuv420p", rotation=90)
    (_, ours), = iter_frames(video, [4], scale=FrameScale(SIZE, 2 * SIZE))
    (_, rgb), = iter_frames(video, [4])
    assert rgb.shape == (320, 240, 3) and (ours.source_height, ours.source_width) == (320, 240)
    assert ours.planes[0].shape == (2 * SIZE, SIZE)
    pil = np.asarray(Image.fromarray(rgb).resize((SIZE, 2 * SIZE))).astype(int)
    diff = np.abs(_rgb(ours).astype(int) - pil).mean()
    assert diff < 2.5 and np.abs(_rgb(ours).astype(int) - pil[::-1, ::-1]).mean() > 8 * diff  # turned, and the right way


def test_the_bytes_do_not_depend_on_swscales_threads(video_420):
    frames = [f for _, f in iter_frames(video_420, range(12), native=True)]
    digests = {}
    for threads in (1, 2, 3):
        scale = FrameScale(SIZE, SIZE, threads=threads)
        digests[threads] = [hashlib.sha256(_rgb(frame_to_scaled(f, scale)).tobytes()).hexdigest() for f in frames]
    assert digests[1] == digests[2] == digests[3]


_CHILD = """
import hashlib, json, sys
import numpy as np
from vitcow_assets_tests.stages.crop_child import libavutil
lib = libavutil()
if sys.argv[2] == "off" and lib is not None:
    import ctypes
    lib.av_force_cpu_flags(ctypes.c_int(0))
from vitcow_assets.media.video import FrameScale, iter_frames
scale = FrameScale(1008, 1008)
digest = hashlib.sha256()
for _, f in iter_frames(sys.argv[1], range(0, 12, 2), scale=scale):
    digest.update(np.stack(f.planes).tobytes())
print(json.dumps({"sha256": digest.hexdigest(), "cpu_flags": None if lib is None else lib.av_get_cpu_flags()}))
"""


def test_the_bytes_do_not_depend_on_the_cpus_simd(video_420):
    """The same frames scaled in a child with FFmpeg's SIMD on and in one with it forced off
    (what another, older CPU would run): the same bytes (exact rounding)."""
    runs = {}
    for simd in ("on", "off"):
        done = subprocess.run([sys.executable, "-c", _CHILD, str(video_420), simd], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[simd] = json.loads(done.stdout.strip().splitlines()[-1])
    if runs["off"]["cpu_flags"] is None:
        pytest.skip("FFmpeg's libavutil was not found: its CPU flags could not be forced")
    assert runs["off"]["cpu_flags"] == 0 and runs["on"]["cpu_flags"] != 0
    assert runs["on"]["sha256"] == runs["off"]["sha256"]


def test_an_rgb_array_is_scaled_with_the_same_filter():
    rng = np.random.default_rng(1)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), 10, 0), 10, 1)  # 240 x 320 blocks
    ours = rgb_to_scaled(rgb, FrameScale(SIZE, SIZE))
    assert (ours.source_height, ours.source_width) == (240, 320)
    diff = np.abs(_rgb(ours).astype(int) - _pil(rgb))
    # RGB in, sharp random blocks: the filters alone differ (swscale's cubic and PIL's); measured max 14, mean 1.2
    assert diff.mean() < 2.0 and diff.max() <= 20 and np.abs(_rgb(ours).astype(int) - _pil(rgb)[:, ::-1]).mean() > 20


def test_bad_scales_and_native_with_scale_are_refused(video_420):
    for bad in ({"width": 0, "height": 8}, {"width": 8, "height": 8, "filter": "sinc"}, {"width": 8, "height": 8, "threads": 0}):
        with pytest.raises(ValueError):
            FrameScale(**bad)
    with pytest.raises(ValueError, match="exclude each other"):
        next(iter_frames(video_420, [0], native=True, scale=FrameScale(8, 8)))


def test_scaled_planes_outlive_the_decoder_and_the_next_frames(video_420):
    """A clip's scaled frames are held while the decoder goes on: each keeps its own pixels."""
    held = [f for _, f in iter_frames(video_420, range(12), scale=FrameScale(SIZE, SIZE))]
    again = [f for _, f in iter_frames(video_420, range(12), scale=FrameScale(SIZE, SIZE))]
    assert all(np.array_equal(_rgb(a), _rgb(b)) for a, b in zip(held, again))
    assert not np.array_equal(_rgb(held[0]), _rgb(held[-1]))
