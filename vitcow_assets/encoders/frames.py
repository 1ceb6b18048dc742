"""A crop file's frames as the encoder takes them: the sampled frames (``core.embeddings.
centre_frames``) decoded, each resized to the model's image size where it differs, as one
uint8 array (frames, size, size, 3). Only the sampled frames are converted; decoding stops
after the last of them, so a long file costs no more memory than the frames kept.

May use: PyAV through ``media.video``, OpenCV for resizing. No torch.
"""

import os

import cv2
import numpy as np

from vitcow_assets.core.embeddings import EmbeddingInputError, centre_frames
from vitcow_assets.media.video import DecodeDamage, VideoError, iter_frames, probe_video


def fit_frame(rgb: np.ndarray, size: int) -> np.ndarray:
    """``rgb`` (H, W, 3) as ``size`` × ``size``: the shorter side resized to ``size`` (area
    resampling when shrinking, bilinear when enlarging), then the centre cropped; unchanged
    when it already is that size."""
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.ascontiguousarray(resized[top: top + size, left: left + size])


def _failure(path, exc: Exception) -> EmbeddingInputError:
    reason = str(exc).removeprefix(f"{os.path.basename(path)}: ")
    return EmbeddingInputError(f"crop file {path}: {reason}")


def sampled_clip(path: str | os.PathLike, frames: int, size: int) -> tuple[list[int], np.ndarray]:
    """The frame indices sampled from the crop file at ``path`` and those frames as uint8
    (frames, size, size, 3); one line (``EmbeddingInputError``) for a file that cannot give them."""
    try:
        available = probe_video(path).frame_count
    except (VideoError, OSError) as exc:
        raise _failure(path, exc) from None
    indices = centre_frames(available, frames)
    damage = DecodeDamage()
    try:
        decoded = {i: fit_frame(rgb, size) for i, rgb in iter_frames(path, wanted=sorted(set(indices)), damage=damage)}
    except (VideoError, OSError) as exc:
        raise _failure(path, exc) from None
    lost = sorted(set(indices) - set(decoded))
    if lost or damage:
        raise EmbeddingInputError(f"crop file {path}: frame(s) {lost[:5]} of {available} could not be decoded" + (f" ({damage.describe()})" if damage else ""))
    return indices, np.stack([decoded[i] for i in indices])
