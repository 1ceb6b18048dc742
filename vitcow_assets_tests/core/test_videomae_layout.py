"""The loading plan of VideoMAE checkpoints from tensor names and shapes alone: the original
layout's shape read from its tensors and args (the full VideoMAE-Base here, no tensors
needed), decoders and heads set aside, missing and unexpected tensors named in one line,
transformers configs checked against their weights."""

import pytest

from vitcow_assets.core.videomae_layout import CheckpointError, model_keys, plan_original, plan_transformers


def _original(depth=12, dim=768, mlp=3072, tubelet=2, patch=16, prefix="", qkv_bias=True, norm=True, fc_norm=False, head=0, decoder=0) -> dict:
    shapes = {f"{prefix}patch_embed.proj.weight": (dim, 3, tubelet, patch, patch), f"{prefix}patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        b = f"{prefix}blocks.{i}."
        shapes.update({b + "norm1.weight": (dim,), b + "norm1.bias": (dim,), b + "attn.qkv.weight": (3 * dim, dim), b + "attn.proj.weight": (dim, dim),
                       b + "attn.proj.bias": (dim,), b + "norm2.weight": (dim,), b + "norm2.bias": (dim,), b + "mlp.fc1.weight": (mlp, dim),
                       b + "mlp.fc1.bias": (mlp,), b + "mlp.fc2.weight": (dim, mlp), b + "mlp.fc2.bias": (dim,)})
        if qkv_bias:
            shapes.update({b + "attn.q_bias": (dim,), b + "attn.v_bias": (dim,)})
    if norm:
        shapes.update({f"{prefix}norm.weight": (dim,), f"{prefix}norm.bias": (dim,)})
    if fc_norm:
        shapes.update({"fc_norm.weight": (dim,), "fc_norm.bias": (dim,)})
    if head:
        shapes.update({"head.weight": (head, dim), "head.bias": (head,)})
    for i in range(decoder):
        shapes.update({f"decoder.blocks.{i}.attn.qkv.weight": (3 * 384, 384), f"decoder.blocks.{i}.mlp.fc1.weight": (1536, 384)})
    if decoder:
        shapes.update({"decoder.head.weight": (1536, 384), "encoder_to_decoder.weight": (384, dim), "mask_token": (1, 1, 384)})
    return shapes


def test_a_base_pretraining_checkpoint_reads_its_shape_from_tensors_and_args_and_sets_the_decoder_aside():
    shapes = _original(prefix="encoder.", decoder=4)
    plan = plan_original(shapes, {"model": "pretrain_videomae_base_patch16_224", "num_frames": 16, "input_size": 224, "tubelet_size": 2})
    spec = plan.spec
    assert (spec.kind, spec.depth, spec.dim, spec.heads, spec.mlp_dim, spec.patch, spec.tubelet) == ("pretraining", 12, 768, 12, 3072, 16, 2)
    assert (spec.frames, spec.image_size, spec.pooling, spec.final_norm, spec.tokens) == (16, 224, "mean", True, 1568)
    assert plan.ignored == {"decoder": 2 * 4 + 3}
    assert {t.target for t in plan.takes} == set(model_keys(spec))
    assert all(not t.source.startswith(("decoder.", "encoder_to_decoder", "mask_token")) for t in plan.takes)
    qkv = [t for t in plan.takes if t.source == "encoder.blocks.3.attn.qkv.weight"]
    assert [(t.target.rsplit(".", 2)[-2], t.rows) for t in qkv] == [("query", (0, 768)), ("key", (768, 1536)), ("value", (1536, 2304))]
    assert dict(spec.sources)["heads"] == "args.model pretrain_videomae_base_patch16_224"


def test_depth_and_width_come_from_the_tensors_and_heads_from_the_width_without_args():
    small = plan_original(_original(depth=5, dim=384, mlp=1536)).spec
    assert (small.depth, small.dim, small.heads, small.kind, small.frames, small.image_size) == (5, 384, 6, "encoder", 16, 224)
    assert "default" in dict(small.sources)["frames"]
    tiny = plan_original(_original(depth=2, dim=128, mlp=256)).spec
    assert (tiny.depth, tiny.dim, tiny.heads) == (2, 128, 2)
    with pytest.raises(CheckpointError, match="cannot tell the attention heads of a width-100 encoder"):
        plan_original(_original(depth=1, dim=100, mlp=200))
    with pytest.raises(CheckpointError, match="args.model 'vit_large_patch16_224' is a width-1024 model"):
        plan_original(_original(depth=1, dim=768), {"model": "vit_large_patch16_224"})


def test_fine_tuning_checkpoints_pool_as_their_model_did():
    mean_pooled = plan_original(_original(depth=2, norm=False, fc_norm=True, head=400))
    assert (mean_pooled.spec.kind, mean_pooled.spec.pooling, mean_pooled.spec.final_norm) == ("finetuning", "fc_norm", False)
    assert mean_pooled.ignored == {"classifier head": 2}
    assert {"fc_norm.weight", "fc_norm.bias"} <= {t.target for t in mean_pooled.takes}
    first_token = plan_original(_original(depth=2, head=174)).spec
    assert (first_token.pooling, first_token.final_norm) == ("first_token", True)


def test_a_missing_or_extra_encoder_tensor_is_named_in_one_line():
    shapes = _original(depth=3, prefix="encoder.", decoder=1)
    del shapes["encoder.blocks.1.mlp.fc2.bias"]
    with pytest.raises(CheckpointError) as missing:
        plan_original(shapes)
    assert "missing encoder key(s) encoder.blocks.1.mlp.fc2.bias" in str(missing.value) and "\n" not in str(missing.value)
    shapes = _original(depth=3)
    shapes["blocks.0.gamma_1"] = (768,)  # layer scale: transformers' VideoMAEModel has no place for it
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\) blocks.0.gamma_1 \(for a depth-3"):
        plan_original(shapes)
    shapes = _original(depth=2)
    shapes["blocks.1.mlp.fc1.weight"] = (3000, 768)
    with pytest.raises(CheckpointError, match=r"blocks.1.mlp.fc1.weight has shape \(3000, 768\)"):
        plan_original(shapes)


def test_a_ddp_prefix_is_stripped_and_a_wrong_tubelet_refused():
    plan = plan_original({f"module.{k}": v for k, v in _original(depth=2, prefix="encoder.", decoder=1).items()})
    assert plan.spec.kind == "pretraining" and all(t.source.startswith("module.encoder.") for t in plan.takes)
    with pytest.raises(CheckpointError, match="args.tubelet_size 4 disagrees"):
        plan_original(_original(depth=1), {"tubelet_size": 4})


def _transformers(depth=3, dim=128, prefix="videomae.", old_bias=False, extra=()) -> dict:
    spec = plan_original(_original(depth=depth, dim=dim, mlp=2 * dim)).spec
    shapes = {prefix + k: v for k, v in model_keys(spec).items()}
    if old_bias:
        shapes = {k.replace("query.bias", "q_bias").replace("value.bias", "v_bias"): v for k, v in shapes.items()}
    return {**shapes, **{k: (1,) for k in extra}}


def test_a_transformers_folder_reads_its_config_and_the_config_must_match_the_weights():
    config = {"model_type": "videomae", "architectures": ["VideoMAEForPreTraining"], "hidden_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
              "intermediate_size": 256, "patch_size": 16, "tubelet_size": 2, "num_frames": 8, "image_size": 64, "use_mean_pooling": False, "layer_norm_eps": 1e-6}
    plan = plan_transformers(_transformers(old_bias=True, extra=("decoder.decoder_norm.weight", "mask_token")), config, {"image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    spec = plan.spec
    assert (spec.layout, spec.kind, spec.depth, spec.heads, spec.frames, spec.image_size, spec.pooling) == ("transformers", "pretraining", 3, 4, 8, 64, "mean")
    assert spec.mean == (0.5, 0.5, 0.5) and plan.ignored == {"decoder": 2}
    assert any(t.source.endswith("attention.attention.q_bias") and t.target.endswith("query.bias") for t in plan.takes)
    with pytest.raises(CheckpointError, match="config.json says 12 layers but the weights hold 3"):
        plan_transformers(_transformers(), {**config, "num_hidden_layers": 12})
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\) videomae.encoder.layer.0.extra.weight"):
        plan_transformers(_transformers(extra=("videomae.encoder.layer.0.extra.weight",)), config)
