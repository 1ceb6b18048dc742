"""SAM 3.1 (object multiplex) at test size: Meta's real classes and
``build_sam3_multiplex_video_predictor``, with small sizes and random weights. Only where the
installed ``sam3`` has the multiplex builder (from Meta's repository; no PyPI release has it).

``tiny_multiplex_builder()`` swaps, while the real builder runs, the private size helpers of
``sam3.model_builder`` (ViT, text encoder, detector encoder and decoder, geometry encoder, the
multiplex memory encoder and memory attention) and gives the two classes the builder makes
at 1008 px (``Sam3VideoTrackingMultiplexDemo``, ``Sam3MultiplexTrackingWithInteractivity``,
imported inside the builder from their modules) the test size: 112 px, as ``sam3_tiny`` does
for SAM3. ``write_tiny_multiplex_checkpoint`` saves such a model's state dict (``detector.*``,
``tracker.model.*``), loaded back through the project's backend as a real one is.
"""

import contextlib

import torch

from vitcow_testbed.sam3_tiny import DECODER_FEED_FORWARD, FEED_FORWARD, SIZE

def has_multiplex_builder() -> bool:
    try:
        from sam3.model_builder import build_sam3_multiplex_video_predictor  # noqa: F401
    except ImportError:
        return False
    return True


def _attention(**kw):
    from sam3.model.model_misc import MultiheadAttentionWrapper

    return MultiheadAttentionWrapper(num_heads=8, dropout=0.0, embed_dim=256, **kw)


def _detector_helpers(size: int, queries: int) -> dict:
    """The detector's size helpers (ViT, text, encoder, decoder, geometry) at ``size``."""
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer
    from sam3.model.geometry_encoders import SequenceGeometryEncoder
    from sam3.model.position_encoding import PositionEmbeddingSine
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer
    from sam3.model.vitdet import ViT

    feat = size // 14

    def position_encoding(precompute_resolution=None):
        return PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None, temperature=10000,
                                     precompute_resolution=size if precompute_resolution else None)

    def vit(compile_mode=None, use_fa3=False, use_rope_real=False):
        return ViT(img_size=size, pretrain_img_size=size, patch_size=14, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0,
                   norm_layer="LayerNorm", drop_path_rate=0.0, qkv_bias=True, use_abs_pos=True, tile_abs_pos=True, global_att_blocks=(1,),
                   rel_pos_blocks=(), use_rope=True, use_interp_rope=True, window_size=feat // 2, pretrain_use_cls_token=True,
                   retain_cls_token=False, ln_pre=True, ln_post=False, return_interm_layers=False, bias_patch_embed=False,
                   compile_mode=compile_mode, use_fa3=use_fa3, use_rope_real=use_rope_real)

    def encoder_layer(batch_first, use_fa3=False, **kw):
        fa3 = {"use_fa3": use_fa3} if use_fa3 else {}
        return TransformerEncoderLayer(activation="relu", d_model=256, dim_feedforward=FEED_FORWARD, dropout=0.0, pre_norm=True,
                                       self_attention=_attention(batch_first=batch_first, **fa3),
                                       cross_attention=_attention(batch_first=batch_first, **fa3), **kw)

    def transformer_encoder(use_fa3=False):
        layer = encoder_layer(True, use_fa3, pos_enc_at_attn=True, pos_enc_at_cross_attn_keys=False, pos_enc_at_cross_attn_queries=False)
        return TransformerEncoderFusion(layer=layer, num_layers=1, d_model=256, num_feature_levels=1, frozen=False, use_act_checkpoint=False,
                                        add_pooled_text_to_img_feat=False, pool_text_with_mask=True)

    def transformer_decoder(use_fa3=False):
        layer = TransformerDecoderLayer(activation="relu", d_model=256, dim_feedforward=DECODER_FEED_FORWARD, dropout=0.0,
                                        cross_attention=_attention(**({"use_fa3": use_fa3} if use_fa3 else {})), n_heads=8,
                                        use_text_cross_attention=True)
        return TransformerDecoder(layer=layer, num_layers=1, num_queries=queries, return_intermediate=True, box_refine=True,
                                  num_o2m_queries=0, dac=True, boxRPB="log", d_model=256, frozen=False, interaction_layer=None,
                                  dac_use_selfatt_ln=True, resolution=size, stride=14, use_act_checkpoint=False, presence_token=True)

    def geometry_encoder():
        layer = encoder_layer(False, pos_enc_at_attn=False, pos_enc_at_cross_attn_queries=False, pos_enc_at_cross_attn_keys=True)
        return SequenceGeometryEncoder(pos_enc=position_encoding(), encode_boxes_as_points=False, points_direct_project=True, points_pool=True,
                                       points_pos_enc=True, boxes_direct_project=True, boxes_pool=True, boxes_pos_enc=True, d_model=256,
                                       num_layers=1, layer=layer, use_act_ckpt=False, add_cls=True, add_post_encode_proj=True)

    def text_encoder(bpe_path):
        return VETextEncoder(tokenizer=SimpleTokenizer(bpe_path=bpe_path), d_model=256, width=64, heads=2, layers=1)

    return {
        "_create_position_encoding": position_encoding, "_create_vit_backbone": vit, "_create_transformer_encoder": transformer_encoder,
        "_create_transformer_decoder": transformer_decoder, "_create_geometry_encoder": geometry_encoder, "_create_text_encoder": text_encoder,
    }


def _tracker_helpers(size: int) -> dict:
    """The multiplex tracker's memory encoder and memory attention at ``size``."""
    from sam3.model.decoder import DecoupledTransformerDecoderLayerv2, SimpleRoPEAttention, TransformerEncoderDecoupledCrossAttention
    from sam3.model.memory import CXBlock, SimpleFuser, SimpleMaskDownSampler, SimpleMaskEncoder
    from sam3.model.model_misc import TransformerWrapper
    from sam3.model.position_encoding import PositionEmbeddingSine

    feat = size // 14

    def maskmem_backbone(multiplex_count=16):
        encoding = PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None, temperature=10000, precompute_resolution=size)
        down = SimpleMaskDownSampler(kernel_size=3, stride=2, padding=1, interpol_size=[feat * 16, feat * 16], multiplex_count=multiplex_count,
                                     starting_out_chan=4, input_channel_multiplier=2)
        block = CXBlock(dim=256, kernel_size=7, padding=3, layer_scale_init_value=1.0e-06, use_dwconv=True)
        return SimpleMaskEncoder(out_dim=256, position_encoding=encoding, mask_downsampler=down, fuser=SimpleFuser(layer=block, num_layers=1))

    def multiplex_transformer(use_fa3=False, use_rope_real=False):
        def rope(**kw):
            return SimpleRoPEAttention(d_model=256, num_heads=8, dropout_p=0.0, rope_theta=10000.0, feat_sizes=[feat, feat], use_fa3=use_fa3,
                                       use_rope_real=use_rope_real, **kw)

        layer = DecoupledTransformerDecoderLayerv2(activation="gelu", d_model=256, num_heads=8, dropout=0.0, dim_feedforward=FEED_FORWARD,
                                                   pos_enc_at_attn=False, pre_norm=True, pos_enc_at_cross_attn_keys=True,
                                                   pos_enc_at_cross_attn_queries=False, self_attention_rope=rope(),
                                                   cross_attention_rope=rope(rope_k_repeat=True))
        encoder = TransformerEncoderDecoupledCrossAttention(d_model=256, frozen=False, pos_enc_at_input=True, use_image_in_output=False,
                                                            layer=layer, num_layers=1, use_act_checkpoint=False, batch_first=True)
        return TransformerWrapper(encoder=encoder, decoder=None, d_model=256)

    return {"_create_multiplex_maskmem_backbone": maskmem_backbone, "_create_multiplex_transformer": multiplex_transformer}


@contextlib.contextmanager
def _replaced(module, replacements: dict):
    saved = {name: getattr(module, name) for name in replacements}
    try:
        for name, value in replacements.items():
            setattr(module, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


@contextlib.contextmanager
def tiny_multiplex_builder(size: int = SIZE, queries: int = 5):
    import sam3.model.sam3_multiplex_tracking as tracking
    import sam3.model.video_tracking_multiplex_demo as demo
    import sam3.model_builder as mb

    def sized(cls):
        return lambda *args, **kw: cls(*args, **{**kw, "image_size": size})

    with _replaced(mb, {**_detector_helpers(size, queries), **_tracker_helpers(size)}):
        with _replaced(demo, {"Sam3VideoTrackingMultiplexDemo": sized(demo.Sam3VideoTrackingMultiplexDemo)}):
            with _replaced(tracking, {"Sam3MultiplexTrackingWithInteractivity": sized(tracking.Sam3MultiplexTrackingWithInteractivity)}):
                yield


def write_tiny_multiplex_checkpoint(path, bpe_path: str, seed: int = 0) -> None:
    """Build the tiny multiplex model with random weights (without loading any) and save its
    state dict: ``detector.*`` and ``tracker.model.*`` as ``sam3.1_multiplex.pt`` has them."""
    import sam3.model_builder as mb

    torch.manual_seed(seed)
    with _replaced(mb, {"download_ckpt_from_hf": lambda version="sam3": None}):  # no path: the builder would download
        predictor = mb.build_sam3_multiplex_video_predictor(
            checkpoint_path=None, bpe_path=bpe_path, use_fa3=False, use_rope_real=False, async_loading_frames=False,
        )
    model = predictor.model
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            left_empty = name.endswith(("encoder.positional_embedding", "encoder.text_projection"))
            if left_empty or not torch.isfinite(parameter).all():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    torch.save(model.state_dict(), path)
