"""The VideoMAE encoder loaded from tiny random checkpoints of every layout: the same weights
give the same embeddings whatever the layout, the decoder never matters and is never built,
an encoder tensor always does, a missing or extra tensor fails in one line, the shape is
read from the checkpoint, and a crop's embedding depends neither on its batch nor the run."""

import numpy as np
import pytest

from vitcow_testbed.videomae_inputs import (  # first: makes transformers importable beside CPU torch
    classification_model, original_pretraining, pretraining_model, save_original, training_args, write_checkpoints,
)

import torch  # noqa: E402,I001
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import VideoMAEModel  # noqa: E402

from vitcow_assets.core.videomae_layout import CheckpointError  # noqa: E402
from vitcow_assets.encoders import EncoderSettings, load_encoder  # noqa: E402

SETTINGS = EncoderSettings(device="cpu", batch_size=4, threads=2)
PRETRAINING = ("transformers_pretraining", "transformers_model", "original_model", "original_module")
FINETUNED = ("transformers_classification", "original_finetuning")


def _clips(n: int = 6, frames: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, frames, size, size, 3), dtype=np.uint8)


def _pixels(clips: np.ndarray, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> torch.Tensor:
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float() / 255
    return (x - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)


def _reference(videomae: VideoMAEModel, clips: np.ndarray, fc_norm=None) -> np.ndarray:
    """What transformers' own model gives for these clips: the mean of its tokens (through
    the classifier's fc_norm when given)."""
    with torch.no_grad():
        pooled = videomae(_pixels(clips)).last_hidden_state.mean(1)
        return (fc_norm(pooled) if fc_norm is not None else pooled).numpy()


def test_every_layout_of_the_same_weights_gives_the_same_embeddings(tiny_checkpoints):
    clips = _clips()
    reference = _reference(pretraining_model(0).videomae, clips)
    for name in PRETRAINING:
        encoder = load_encoder(tiny_checkpoints[name], SETTINGS)
        assert (encoder.spec.pooling, encoder.spec.depth, encoder.spec.dim) == ("mean", 3, 128), name
        np.testing.assert_allclose(encoder.embed(clips), reference, atol=1e-5, err_msg=name)
    classifier = classification_model(1)
    fine_tuned = _reference(classifier.videomae, clips, classifier.fc_norm)
    for name in FINETUNED:
        encoder = load_encoder(tiny_checkpoints[name], SETTINGS)
        assert (encoder.spec.kind, encoder.spec.pooling, encoder.plan.ignored) == ("finetuning", "fc_norm", {"classifier head": 2}), name
        np.testing.assert_allclose(encoder.embed(clips), fine_tuned, atol=1e-4, err_msg=name)  # fc_norm eps: 1e-6 original, 1e-5 transformers


def test_checkpoints_without_args_ddp_prefixed_or_safetensors_load_at_videomae_s_defaults(tmp_path):
    paths = write_checkpoints(tmp_path, seed=3, num_frames=16, image_size=224, num_hidden_layers=1)
    clips = _clips(2, 16, 224)
    expected = load_encoder(paths["transformers_pretraining"], SETTINGS).embed(clips)
    for name in ("original_ddp", "original_safetensors"):
        encoder = load_encoder(paths[name], SETTINGS)
        assert (encoder.spec.frames, encoder.spec.image_size) == (16, 224) and "default" in dict(encoder.spec.sources)["frames"]
        np.testing.assert_allclose(encoder.embed(clips), expected, atol=1e-5, err_msg=name)


def test_the_decoder_is_never_built_and_its_weights_never_matter_but_an_encoder_weight_does(tiny_checkpoints, tmp_path):
    clips = _clips()
    model = pretraining_model(0)
    state = original_pretraining(model)
    args = training_args("pretrain_videomae_tiny", model.config)
    baseline = load_encoder(tiny_checkpoints["original_model"], SETTINGS)
    assert type(baseline.model) is VideoMAEModel and baseline.plan.ignored == {"decoder": 36}
    assert not [n for n, _ in baseline.model.named_modules() if "decoder" in n]
    other_decoder = {k: (v + 1.0 if k.startswith(("decoder.", "encoder_to_decoder", "mask_token")) else v) for k, v in state.items()}
    changed = load_encoder(save_original(other_decoder, tmp_path / "other_decoder.pth", "model", args), SETTINGS)
    assert np.array_equal(changed.embed(clips), baseline.embed(clips))
    fc2 = state["encoder.blocks.1.mlp.fc2.weight"].clone()
    fc2[3, 5] += 0.5  # one number (a shift of a whole matrix is one the LayerNorms after it remove)
    one_weight = dict(state, **{"encoder.blocks.1.mlp.fc2.weight": fc2})
    moved = load_encoder(save_original(one_weight, tmp_path / "one_weight.pth", "model", args), SETTINGS)
    assert np.abs(moved.embed(clips) - baseline.embed(clips)).max() > 1e-4
    q_bias_swapped = dict(state, **{"encoder.blocks.0.attn.q_bias": state["encoder.blocks.0.attn.v_bias"], "encoder.blocks.0.attn.v_bias": state["encoder.blocks.0.attn.q_bias"]})
    swapped = load_encoder(save_original(q_bias_swapped, tmp_path / "swapped.pth", "model", args), SETTINGS)
    assert np.abs(swapped.embed(clips) - baseline.embed(clips)).max() > 1e-4


def _one_line_error(path) -> str:
    with pytest.raises(CheckpointError) as failure:
        load_encoder(path, SETTINGS)
    message = str(failure.value)
    assert "\n" not in message
    return message


def test_a_missing_or_an_extra_encoder_tensor_fails_in_one_line_naming_it(tiny_checkpoints, tmp_path):
    model = pretraining_model(0)
    state, args = original_pretraining(model), training_args("pretrain_videomae_tiny", model.config)
    missing = {k: v for k, v in state.items() if k != "encoder.blocks.2.attn.proj.bias"}
    assert "missing encoder key(s) encoder.blocks.2.attn.proj.bias" in _one_line_error(save_original(missing, tmp_path / "missing.pth", "model", args))
    extra = dict(state, **{"encoder.blocks.0.attn.k_bias": torch.zeros(128)})
    assert "unexpected key(s) encoder.blocks.0.attn.k_bias" in _one_line_error(save_original(extra, tmp_path / "extra.pth", "model", args))
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_checkpoints["transformers_pretraining"] / "config.json").read_bytes())
    weights = load_file(tiny_checkpoints["transformers_pretraining"] / "model.safetensors")
    save_file({k: v for k, v in weights.items() if k != "videomae.encoder.layer.1.layernorm_after.weight"}, folder / "model.safetensors")
    assert "missing encoder key(s) videomae.encoder.layer.1.layernorm_after.weight" in _one_line_error(folder)


def test_depth_and_width_are_read_from_the_checkpoint(tmp_path):
    clips = _clips(3)
    for depth, width in ((3, 128), (2, 192)):
        paths = write_checkpoints(tmp_path / f"d{depth}", seed=depth, num_hidden_layers=depth, hidden_size=width, num_attention_heads=width // 64, intermediate_size=2 * width)
        reference = _reference(pretraining_model(depth, num_hidden_layers=depth, hidden_size=width, num_attention_heads=width // 64, intermediate_size=2 * width).videomae, clips)
        for name in ("original_model", "transformers_pretraining"):
            encoder = load_encoder(paths[name], SETTINGS)
            assert (encoder.spec.depth, encoder.spec.dim, encoder.spec.heads, encoder.spec.mlp_dim) == (depth, width, width // 64, 2 * width)
            assert len(encoder.model.encoder.layer) == depth
            embeddings = encoder.embed(clips)
            assert embeddings.shape == (3, width) and embeddings.dtype == np.float32
            np.testing.assert_allclose(embeddings, reference, atol=1e-5)


def test_a_crop_s_embedding_depends_neither_on_its_batch_nor_on_the_run(tiny_checkpoints):
    clips = _clips(7)
    encoder = load_encoder(tiny_checkpoints["original_model"], SETTINGS)
    together = encoder.embed(clips)
    alone = np.concatenate([encoder.embed(clips[i: i + 1]) for i in range(7)])
    reversed_order = encoder.embed(clips[::-1])[::-1]
    assert together.tobytes() == alone.tobytes() == reversed_order.tobytes()
    again = load_encoder(tiny_checkpoints["original_model"], SETTINGS).embed(clips)
    assert again.tobytes() == together.tobytes()
    assert torch.get_num_threads() != 0 and not torch.are_deterministic_algorithms_enabled()  # restored after each call


class _Payload:
    def __reduce__(self):
        return (print, ("ran code",))


def test_files_that_are_not_checkpoints_fail_in_one_line(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    assert "not a readable torch checkpoint" in _one_line_error(garbage)
    code = tmp_path / "code.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "hook": _Payload()}, code)
    assert "holds objects other than tensors and training args" in _one_line_error(code)
    (tmp_path / "folder").mkdir()
    assert "a folder without config.json" in _one_line_error(tmp_path / "folder")
    assert "no such file or folder" in _one_line_error(tmp_path / "nowhere.pth")


def test_without_transformers_the_encoder_says_what_to_install(monkeypatch, tiny_checkpoints):
    import sys

    from vitcow_assets.encoders import EncoderUnavailable

    monkeypatch.setitem(sys.modules, "vitcow_assets.encoders.videomae", None)  # as if transformers could not be imported
    with pytest.raises(EncoderUnavailable, match=r"pip install 'vitcow_assets\[eval\]'"):
        load_encoder(tiny_checkpoints["original_model"], SETTINGS)
