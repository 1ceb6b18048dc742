"""The context view of a crop: one frame of the video it was cut from, with the crop window
drawn on it, as a picture for pages (the crop page, the labelling page's context view).

``context_view(video, frame_index, window_xyxy)`` reads one frame (``media.video``'s frame
indices: decoded frames in presentation order, displayed orientation) and draws the window:
outside it the frame is dimmed, its edge is outlined. A window reaching past the frame (a
small animal near the edge, whose window is never shrunk below the crop size) is drawn on a
canvas grown to hold it, the part outside the picture filled with ``OFF_FRAME_GREY``: what the
crop shows as black there. The picture is then scaled down to ``max_side`` at most.
``jpeg(rgb)`` encodes it.

Reading seeks nothing: it decodes from the start of the file up to the frame (a clip file
is 20 frames; the source, where no clip file was written, may be long). Bounded memory: one
frame at a time.

May import numpy, OpenCV (drawing, scaling, JPEG) and ``media.video``.
"""

import os

import cv2
import numpy as np

from vitcow_assets.media.video import VideoError, iter_frames

#: the window's outline (RGB)
WINDOW_COLOUR = (255, 196, 0)
#: brightness kept outside the window
DIM = 0.45
#: fill of the canvas where the window reaches past the picture (the crop is black there)
OFF_FRAME_GREY = 48
#: longest side of the picture a page gets
MAX_SIDE = 720
#: outline width, as a fraction of the canvas's longer side (at least 2 pixels)
OUTLINE_FRACTION = 1 / 200
JPEG_QUALITY = 88


def read_frame(path: str | os.PathLike, index: int) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB of frame ``index`` of the video at ``path``; ``VideoError``
    when the file has no such frame."""
    for found, rgb in iter_frames(path, [index]):
        if found == index:
            return rgb
    raise VideoError(f"{os.fspath(path)}: no frame {index}")


def draw_window(rgb: np.ndarray, window_xyxy) -> np.ndarray:
    """The frame with the window ``(x1, y1, x2, y2)`` (pixels of the frame, ``x2, y2``
    exclusive; None: none drawn) marked: outside dimmed, edge outlined; the canvas grows to
    hold a window that reaches past the frame (``OFF_FRAME_GREY`` there)."""
    height, width = rgb.shape[:2]
    if window_xyxy is None:
        return rgb.copy()
    x1, y1, x2, y2 = (int(v) for v in window_xyxy)
    left, top = max(0, -x1), max(0, -y1)
    canvas_w, canvas_h = left + max(width, x2), top + max(height, y2)
    canvas = np.full((canvas_h, canvas_w, 3), OFF_FRAME_GREY, np.uint8)
    canvas[top : top + height, left : left + width] = rgb
    inside = np.zeros(canvas.shape[:2], bool)
    inside[top + y1 : top + y2, left + x1 : left + x2] = True
    canvas[~inside] = (canvas[~inside].astype(np.float32) * DIM).astype(np.uint8)
    thickness = max(2, int(round(max(canvas_w, canvas_h) * OUTLINE_FRACTION)))
    cv2.rectangle(canvas, (left + x1, top + y1), (left + x2 - 1, top + y2 - 1), WINDOW_COLOUR, thickness)
    return canvas


def fit(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The picture scaled down (area averaging) so that its longer side is at most ``max_side``."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def context_view(path: str | os.PathLike, frame_index: int, window_xyxy, max_side: int = MAX_SIDE) -> np.ndarray:
    """Frame ``frame_index`` of ``path`` with ``window_xyxy`` drawn, at most ``max_side`` wide or high."""
    return fit(draw_window(read_frame(path, frame_index), window_xyxy), max_side)


def jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
