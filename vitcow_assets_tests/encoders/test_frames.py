"""A crop file's frames as the encoder takes them: the centre frames in order (a short crop's
edges repeated), each fitted to the model's size, and one line for a file that cannot give them."""

import numpy as np
import pytest

from vitcow_assets.core.embeddings import EmbeddingInputError
from vitcow_assets.encoders.frames import fit_frame, sampled_clip
from vitcow_assets.media.video import iter_frames
from vitcow_testbed.videomae_inputs import write_crop


def test_the_centre_frames_come_in_order_fitted_to_the_model(tmp_path):
    crop = write_crop(tmp_path / "obj0000.mp4", frames=20, seed=7, size=48)
    indices, clip = sampled_clip(crop, 4, 32)
    assert indices == [8, 9, 10, 11]
    decoded = dict(iter_frames(crop))
    assert clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8
    for k, i in enumerate(indices):
        assert np.array_equal(clip[k], fit_frame(decoded[i], 32))
    assert not np.array_equal(clip[0], clip[3])  # the square moved: distinct frames, not one repeated


def test_a_crop_shorter_than_the_model_repeats_its_edge_frames(tmp_path):
    crop = write_crop(tmp_path / "short.mp4", frames=3, seed=1, size=48)
    indices, clip = sampled_clip(crop, 4, 48)
    assert indices == [0, 0, 1, 2]
    assert np.array_equal(clip[0], clip[1]) and not np.array_equal(clip[1], clip[2])


def test_fitting_keeps_a_frame_of_the_right_size_and_centre_crops_others():
    rng = np.random.default_rng(0)
    square = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    assert fit_frame(square, 224) is square
    wide = np.zeros((48, 64, 3), np.uint8)
    wide[:, 4:60] = 200  # black only in the 4 columns at each side, which the centre crop leaves out
    fitted = fit_frame(wide, 32)
    assert fitted.shape == (32, 32, 3) and fitted.min() == 200  # area-resized to 43x32, its centre 32 columns kept
    flat = np.full((48, 48, 3), 77, np.uint8)
    assert np.array_equal(fit_frame(flat, 32), np.full((32, 32, 3), 77, np.uint8))
    assert fit_frame(flat, 96).shape == (96, 96, 3)


def test_a_missing_or_unreadable_crop_fails_in_one_line_naming_it(tmp_path):
    for path in (tmp_path / "gone.mp4", tmp_path / "text.mp4"):
        if path.name == "text.mp4":
            path.write_text("not a video")
        with pytest.raises(EmbeddingInputError) as failure:
            sampled_clip(path, 4, 32)
        assert str(failure.value).startswith(f"crop file {path}:") and "\n" not in str(failure.value)
