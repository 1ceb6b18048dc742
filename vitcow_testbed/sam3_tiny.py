"""SAM3 at test size: Meta's real classes and builder, with small sizes and random weights.

``tiny_builder()`` swaps the private size helpers of ``sam3.model_builder`` (ViT width and
depth, encoder/decoder layers, query count, text encoder, tracker sizes, and the 1008 px
input that ``build_tracker``/``build_sam3_video_model`` hard-code) while the real builder
runs: the same classes at 112 px, ~22M parameters, built in under a second.
``write_tiny_checkpoint`` saves such a model's state dict so that the project's backend
loads it through ``checkpoint_path`` exactly as it loads a real one.

With random weights the detector's scores sit around 0.3, so tests lower the detection
threshold to 0; the tracker's object-score head is biased so tracked masks are not empty, and
its IoU head so that its memory keeps every frame.
"""

import contextlib

import torch

SIZE = 112  # multiple of the backbone's patch stride 14
#: the tracker's predicted-IoU bias (see ``write_tiny_checkpoint``)
IOU_BIAS = 1.0
#: feed-forward width of the detector's encoder and of the tracker's memory attention
FEED_FORWARD = 64
#: feed-forward width of the detector's decoder: the builder's (2048), which transformers also
#: gives the scoring MLP (that the builder hard-codes at 2048), so the tiny model stays
#: expressible in transformers (``sam3_hf_tiny``)
DECODER_FEED_FORWARD = 2048


@contextlib.contextmanager
def tiny_builder(size: int = SIZE, queries: int = 5):
    """``queries``: the detector's object queries (an upper bound on objects per frame)."""
    import sam3.model_builder as mb
    from sam3.model.decoder import (
        TransformerDecoder,
        TransformerDecoderLayer,
        TransformerDecoderLayerv2,
        TransformerEncoderCrossAttention,
    )
    from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer
    from sam3.model.geometry_encoders import SequenceGeometryEncoder
    from sam3.model.memory import (
        CXBlock,
        SimpleFuser,
        SimpleMaskDownSampler,
        SimpleMaskEncoder,
    )
    from sam3.model.model_misc import MultiheadAttentionWrapper as Attention
    from sam3.model.model_misc import TransformerWrapper
    from sam3.model.position_encoding import PositionEmbeddingSine
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer
    from sam3.model.vitdet import ViT
    from sam3.sam.transformer import RoPEAttention

    feat = size // 14

    def position_encoding(precompute_resolution=None):
        return PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None, temperature=10000,
                                     precompute_resolution=size if precompute_resolution else None)

    def vit(compile_mode=None, **newer):  # newer: use_fa3, use_rope_real of the repository's builder
        return ViT(img_size=size, pretrain_img_size=size, patch_size=14, embed_dim=64, depth=2, num_heads=2,
                   mlp_ratio=2.0, norm_layer="LayerNorm", drop_path_rate=0.0, qkv_bias=True, use_abs_pos=True,
                   tile_abs_pos=True, global_att_blocks=(1,), rel_pos_blocks=(), use_rope=True, use_interp_rope=True,
                   window_size=feat // 2, pretrain_use_cls_token=True, retain_cls_token=False, ln_pre=True,
                   ln_post=False, return_interm_layers=False, bias_patch_embed=False, compile_mode=compile_mode)

    def encoder_layer(batch_first, **kw):
        return TransformerEncoderLayer(
            activation="relu", d_model=256, dim_feedforward=FEED_FORWARD, dropout=0.0, pre_norm=True,
            self_attention=Attention(num_heads=8, dropout=0.0, embed_dim=256, batch_first=batch_first),
            cross_attention=Attention(num_heads=8, dropout=0.0, embed_dim=256, batch_first=batch_first), **kw)

    def transformer_encoder(**newer):
        layer = encoder_layer(True, pos_enc_at_attn=True, pos_enc_at_cross_attn_keys=False, pos_enc_at_cross_attn_queries=False)
        return TransformerEncoderFusion(layer=layer, num_layers=1, d_model=256, num_feature_levels=1, frozen=False,
                                        use_act_checkpoint=False, add_pooled_text_to_img_feat=False, pool_text_with_mask=True)

    def transformer_decoder(**newer):
        layer = TransformerDecoderLayer(activation="relu", d_model=256, dim_feedforward=DECODER_FEED_FORWARD, dropout=0.0,
                                        cross_attention=Attention(num_heads=8, dropout=0.0, embed_dim=256), n_heads=8,
                                        use_text_cross_attention=True)
        return TransformerDecoder(layer=layer, num_layers=1, num_queries=queries, return_intermediate=True, box_refine=True,
                                  num_o2m_queries=0, dac=True, boxRPB="log", d_model=256, frozen=False,
                                  interaction_layer=None, dac_use_selfatt_ln=True, resolution=size, stride=14,
                                  use_act_checkpoint=False, presence_token=True)

    def geometry_encoder():
        layer = encoder_layer(False, pos_enc_at_attn=False, pos_enc_at_cross_attn_queries=False, pos_enc_at_cross_attn_keys=True)
        return SequenceGeometryEncoder(pos_enc=position_encoding(), encode_boxes_as_points=False, points_direct_project=True,
                                       points_pool=True, points_pos_enc=True, boxes_direct_project=True, boxes_pool=True,
                                       boxes_pos_enc=True, d_model=256, num_layers=1, layer=layer, use_act_ckpt=False,
                                       add_cls=True, add_post_encode_proj=True)

    def text_encoder(bpe_path):
        return VETextEncoder(tokenizer=SimpleTokenizer(bpe_path=bpe_path), d_model=256, width=64, heads=2, layers=1)

    def maskmem_backbone():
        encoding = PositionEmbeddingSine(num_pos_feats=64, normalize=True, scale=None, temperature=10000, precompute_resolution=size)
        down = SimpleMaskDownSampler(kernel_size=3, stride=2, padding=1, interpol_size=[feat * 16, feat * 16])
        block = CXBlock(dim=256, kernel_size=7, padding=3, layer_scale_init_value=1.0e-06, use_dwconv=True)
        return SimpleMaskEncoder(out_dim=64, position_encoding=encoding, mask_downsampler=down, fuser=SimpleFuser(layer=block, num_layers=1))

    def tracker_transformer():
        self_attention = RoPEAttention(embedding_dim=256, num_heads=1, downsample_rate=1, dropout=0.0, rope_theta=10000.0,
                                       feat_sizes=[feat, feat], use_fa3=False, use_rope_real=False)
        cross_attention = RoPEAttention(embedding_dim=256, num_heads=1, downsample_rate=1, dropout=0.0, kv_in_dim=64,
                                        rope_theta=10000.0, feat_sizes=[feat, feat], rope_k_repeat=True, use_fa3=False,
                                        use_rope_real=False)
        layer = TransformerDecoderLayerv2(cross_attention_first=False, activation="relu", dim_feedforward=64, dropout=0.0,
                                          pos_enc_at_attn=False, pre_norm=True, self_attention=self_attention, d_model=256,
                                          pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                                          cross_attention=cross_attention)
        encoder = TransformerEncoderCrossAttention(remove_cross_attention_layers=[], batch_first=True, d_model=256, frozen=False,
                                                   pos_enc_at_input=True, layer=layer, num_layers=1, use_act_checkpoint=False)
        return TransformerWrapper(encoder=encoder, decoder=None, d_model=256)

    tracker_class = mb.Sam3TrackerPredictor
    video_class = mb.Sam3VideoInferenceWithInstanceInteractivity

    def sized(cls):
        return lambda **kw: cls(**{**kw, "image_size": size})

    replacements = {
        "_create_position_encoding": position_encoding,
        "_create_vit_backbone": vit,
        "_create_transformer_encoder": transformer_encoder,
        "_create_transformer_decoder": transformer_decoder,
        "_create_geometry_encoder": geometry_encoder,
        "_create_text_encoder": text_encoder,
        "_create_tracker_maskmem_backbone": maskmem_backbone,
        "_create_tracker_transformer": tracker_transformer,
        "Sam3TrackerPredictor": sized(tracker_class),
        "Sam3VideoInferenceWithInstanceInteractivity": sized(video_class),
    }
    saved = {name: getattr(mb, name) for name in replacements}
    try:
        for name, value in replacements.items():
            setattr(mb, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(mb, name, value)


def write_tiny_checkpoint(path, bpe_path: str, seed: int = 0) -> None:
    """Build the tiny model with random weights and save its state dict to ``path``."""
    from sam3.model_builder import build_sam3_video_model

    torch.manual_seed(seed)
    model = build_sam3_video_model(checkpoint_path=None, load_from_HF=False, bpe_path=bpe_path, device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            # the text encoder makes these two with torch.empty and never fills them: what
            # they hold is whatever memory they got (NaN, or huge finite values that make
            # every score NaN), which made results depend on what ran before in the process
            left_empty = name.endswith(("encoder.positional_embedding", "encoder.text_projection"))
            if left_empty or not torch.isfinite(parameter).all():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
        decoder = model.tracker.sam_mask_decoder
        head = decoder.pred_obj_score_head
        (head if isinstance(head, torch.nn.Linear) else head.layers[-1]).bias.fill_(10.0)
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.layers[-1].bias.add_(0.05)
        # a confident tracker: predicted IoUs near 1, so every frame's memory score passes
        # SAM3's memory selection (which transformers' tracker does not have)
        decoder.iou_prediction_head.layers[-1].bias.fill_(IOU_BIAS)
    torch.save(model.state_dict(), path)
