"""The context view of a crop (``media.context``): the right frame is read, the window is
drawn where it is (inside kept, outside dimmed, the edge outlined), a window reaching past
the frame grows the canvas, big pictures are scaled down, and the JPEG decodes."""

import cv2
import numpy as np
import pytest

from vitcow_assets.media.context import DIM, OFF_FRAME_GREY, WINDOW_COLOUR, context_view, draw_window, fit, jpeg, read_frame
from vitcow_assets.media.video import VideoError, VideoWriter

W, H = 96, 64


def _level(i: int) -> int:
    return 40 + 20 * i


@pytest.fixture(scope="module")
def levels_video(tmp_path_factory):
    """Frame ``i`` is flat grey ``_level(i)``."""
    path = tmp_path_factory.mktemp("context") / "levels.mp4"
    with VideoWriter(path, W, H, 5.0) as writer:
        for i in range(8):
            writer.write(np.full((H, W, 3), _level(i), np.uint8))
    return path


def test_read_frame_gives_the_frame_asked_for_and_refuses_one_past_the_end(levels_video):
    for i in (0, 3, 7):
        assert abs(int(np.median(read_frame(levels_video, i))) - _level(i)) <= 2
    with pytest.raises(VideoError, match="no frame 8"):
        read_frame(levels_video, 8)


def test_window_inside_the_frame_keeps_its_pixels_dims_the_rest_and_outlines_its_edge():
    rgb = np.full((H, W, 3), 200, np.uint8)
    out = draw_window(rgb, (20, 10, 60, 50))
    assert out.shape == rgb.shape
    assert (out[30, 40] == 200).all()  # inside, away from the edge
    assert (out[5, 5] == int(200 * DIM)).all() and (out[60, 90] == int(200 * DIM)).all()  # outside
    assert tuple(out[10, 40]) == WINDOW_COLOUR and tuple(out[30, 20]) == WINDOW_COLOUR and tuple(out[49, 40]) == WINDOW_COLOUR
    assert tuple(out[30, 59]) == WINDOW_COLOUR  # x2, y2 exclusive: the last column inside is the edge
    assert (draw_window(rgb, None) == rgb).all()


def test_a_window_past_the_frame_grows_the_canvas_with_the_off_frame_grey():
    rgb = np.full((H, W, 3), 200, np.uint8)
    out = draw_window(rgb, (-16, -8, 112, 120))  # 128 x 128: the crop's window around a small frame
    assert out.shape == (128, 128, 3)
    assert (out[8 + 30, 16 + 40] == 200).all()  # the frame, shifted by the window's overhang
    assert (out[8 + H + 20, 60] == OFF_FRAME_GREY).all()  # below the picture, inside the window
    assert tuple(out[0, 60]) == WINDOW_COLOUR and tuple(out[127, 60]) == WINDOW_COLOUR


def test_fit_scales_big_pictures_down_and_leaves_small_ones(levels_video):
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert fit(big, 720).shape == (405, 720, 3)
    small = np.zeros((H, W, 3), np.uint8)
    assert fit(small, 720) is small
    picture = context_view(levels_video, 2, (8, 8, 40, 40), max_side=48)
    assert picture.shape == (32, 48, 3)
    decoded = cv2.imdecode(np.frombuffer(jpeg(picture), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (32, 48, 3) and abs(int(decoded[12, 12, 1]) - _level(2)) <= 6  # inside the window: frame 2's grey
