import cv2
import numpy as np
import pytest

from vitcow_assets.core.splitting import hull_gain, kmeans_split


def _ellipse(shape, centre, axes, angle) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.ellipse(canvas, centre, axes, angle, 0, 360, 1, -1)
    return canvas.astype(bool)


@pytest.mark.parametrize("axes, angle", [((40, 16), 0), ((30, 22), 35), ((45, 10), 80)])
def test_a_cut_through_one_convex_body_has_no_neck(axes, angle):
    body = _ellipse((120, 120), (60, 60), axes, angle)
    for parts in (2, 3):
        pieces = kmeans_split(body, parts, np.zeros((0, 2), np.float32))
        assert len(pieces) == parts
        assert hull_gain(body, pieces) < 0.02  # the parts' hulls fill the body's (or more: their cut edges)


@pytest.mark.parametrize("offset, axes", [((0, 30), (40, 15)), ((70, 0), (35, 12)), ((41, 29), (30, 20))])
def test_touching_animals_show_a_neck(offset, axes):
    """Two ellipses that touch: their hull is 10-14% larger than theirs together, however they
    lie (side by side, end to end, at a slant); k-means parts, which may not follow the two
    bodies, still leave a notch well above the default ``neck_gain`` (0.02)."""
    first = _ellipse((160, 220), (60, 60), axes, 0)
    second = _ellipse((160, 220), (60 + offset[0], 60 + offset[1]), axes, 0)
    blob = first | second
    pieces = kmeans_split(blob, 2, np.array([[60, 60], [60 + offset[0], 60 + offset[1]]], np.float32))
    assert 0.04 < hull_gain(blob, pieces) < 0.2
    assert hull_gain(blob, [first, second & ~first]) > 0.08
