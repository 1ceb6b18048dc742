"""The same SAM3 weights through both implementations, at test size: Meta's release state dict
(``sam3_tiny``) run by the sam3 backend, and the same file converted on load by the
sam3-transformers backend into transformers' model of the same sizes (``sam3_hf_tiny``).

What is asserted (docs/sam3-implementations.md has the figures):
- every release tensor has its place in transformers' layout, and every transformers weight
  comes from one (nothing dropped but the rotary tables and the point projections
  transformers does not have);
- detection scores agree to float precision, boxes to the pixel, masks to IoU 0.99 per
  object and frame, with Meta's memory selection off (transformers' tracker has none);
- with Meta's tracker as it ships (memory selection on) masks still agree to IoU 0.97;
- without the parity fixes (transformers as it is) the detection scores differ: the fixes
  are what makes the two agree.

Skipped where sam3 or transformers is not installed."""

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("sam3") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("sam3 and transformers are both needed", allow_module_level=True)

import torch  # noqa: E402

from vitcow_assets.core.sam3_key_map import Op, dropped_reason, transformers_names  # noqa: E402
from vitcow_assets.segmenters.sam3 import Sam3Settings, find_bpe_path, load_sam3  # noqa: E402
from vitcow_assets.segmenters.sam3_conversion import release_to_transformers  # noqa: E402
from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install  # noqa: E402
from vitcow_assets.segmenters.sam3_transformers import load_sam3_transformers  # noqa: E402
from vitcow_testbed.sam3_hf_tiny import tiny_config, write_tiny_config  # noqa: E402
from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint  # noqa: E402
from vitcow_testbed.synthetic import background, render  # noqa: E402

W, H = 160, 120
FRAMES = 10
THRESHOLDS = {"score_threshold": 0.0, "new_object_threshold": 1.01, "hotstart_delay": 0}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Meta's release layout at test size, and transformers' config of the same sizes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    install()
    folder = tmp_path_factory.mktemp("both")
    with tiny_builder(), cpu_mode():
        write_tiny_checkpoint(folder / "sam3.pt", find_bpe_path())
    write_tiny_config(folder / "config.json")
    yield folder / "sam3.pt", folder / "config.json"
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip():
    bg = background(W, H)
    return [render(i * 4, W, H, bg=bg) for i in range(FRAMES)]


def _run(segmenter, frames):
    with segmenter.start_session(segmenter.prepare_frames(frames)) as session:
        session.add_text_prompt("cow", 0)
        return [r.detections for r in session.propagate()]


@pytest.fixture(scope="module")
def meta(release):
    with tiny_builder():
        return load_sam3(Sam3Settings(checkpoint=str(release[0]), device="cpu", **THRESHOLDS))


def transformers_on(release, **settings):
    checkpoint, config = release
    return load_sam3_transformers(Sam3Settings(checkpoint=str(checkpoint), device="cpu", transformers_config=str(config), **THRESHOLDS, **settings))


def agreement(ours, theirs) -> tuple[list[float], float, float]:
    """(IoU of each object on each frame, largest box difference in pixels, largest score difference)."""
    ious, box, score = [], 0.0, 0.0
    for a, b in zip(ours, theirs, strict=True):
        assert sorted(a.object_ids.tolist()) == sorted(b.object_ids.tolist())  # the same objects, the same ids
        for i, object_id in enumerate(a.object_ids):
            j = int(np.flatnonzero(b.object_ids == object_id)[0])
            m, n = a.masks.full()[i], b.masks.full()[j]
            ious.append(float((m & n).sum() / max((m | n).sum(), 1)))
            box = max(box, float(np.abs(a.xyxy[i] - b.xyxy[j]).max()))
            score = max(score, float(abs(a.scores[i] - b.scores[j])))
    return ious, box, score


def test_every_release_tensor_has_its_place_in_transformers_layout(release):
    from transformers import Sam3VideoModel

    state = torch.load(release[0], weights_only=True)
    converted, dropped = release_to_transformers(state)
    expected = Sam3VideoModel(tiny_config()).state_dict()
    assert set(converted) == set(expected)  # nothing missing, nothing left over
    assert all(tuple(converted[k].shape) == tuple(v.shape) for k, v in expected.items())
    assert dropped and all(dropped_reason(k) for k in dropped)
    assert {k.rsplit(".", 1)[-1] for k in dropped} <= {"freqs_cis", "weight", "bias"}
    qkv = "detector.backbone.vision_backbone.trunk.blocks.0.attn.qkv.weight"
    assert transformers_names(qkv).op is Op.SPLIT_QKV
    assert torch.equal(converted["detector_model.vision_encoder.backbone.layers.0.attention.k_proj.weight"], state[qkv].chunk(3)[1])


def test_the_same_weights_give_the_same_masks_through_both_implementations(meta, release, clip):
    """Meta's memory selection off: transformers' tracker has none (the next test has it on)."""
    ours = transformers_on(release)
    tracker = meta.predictor.model.tracker
    tracker.use_memory_selection = False
    try:
        ious, box, score = agreement(_run(meta, clip), _run(ours, clip))
    finally:
        tracker.use_memory_selection = True
    assert len(ious) >= FRAMES  # at least one object on every frame
    assert min(ious) >= 0.99 and box <= 1.0 and score < 1e-5, (ious, box, score)


def test_with_metas_memory_selection_the_masks_still_nearly_agree(meta, release, clip):
    ious, box, score = agreement(_run(meta, clip), _run(transformers_on(release), clip))
    assert min(ious) >= 0.97 and box <= 1.0 and score < 1e-5, (ious, box, score)


def test_without_the_parity_fixes_transformers_scores_the_detections_otherwise(meta, release, clip):
    as_is = transformers_on(release, transformers_parity=False)
    _, _, score = agreement(_run(meta, clip[:1]), _run(as_is, clip[:1]))
    assert score > 1e-3  # the detector's prompt lacks the geometry CLS token
