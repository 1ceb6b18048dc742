"""Where Meta's SAM3 release tensors go in transformers' Sam3VideoModel: the naming rules alone
(the complete mapping of a real state dict is checked against transformers' model in
``segmenters/test_sam3_implementations.py``)."""

import pytest

from vitcow_assets.core.sam3_key_map import Op, dropped_reason, transformers_names


@pytest.mark.parametrize(
    "release, target, op",
    [
        ("detector.backbone.vision_backbone.trunk.blocks.3.attn.qkv.weight", "detector_model.vision_encoder.backbone.layers.3.attention.{}_proj.weight", Op.SPLIT_QKV),
        ("detector.backbone.vision_backbone.trunk.pos_embed", "detector_model.vision_encoder.backbone.embeddings.position_embeddings", Op.DROP_CLS),
        ("detector.backbone.vision_backbone.trunk.blocks.0.norm2.bias", "detector_model.vision_encoder.backbone.layers.0.layer_norm2.bias", Op.COPY),
        ("detector.backbone.vision_backbone.convs.0.dconv_2x2_1.weight", "detector_model.vision_encoder.neck.fpn_layers.0.scale_layers.2.weight", Op.COPY),
        ("detector.backbone.vision_backbone.sam2_convs.2.conv_3x3.bias", "tracker_neck.fpn_layers.2.proj2.bias", Op.COPY),
        ("detector.backbone.language_backbone.encoder.transformer.resblocks.5.attn.in_proj_bias", "detector_model.text_encoder.text_model.encoder.layers.5.self_attn.{}_proj.bias", Op.SPLIT_QKV),
        ("detector.backbone.language_backbone.encoder.text_projection", "detector_model.text_encoder.text_projection.weight", Op.TRANSPOSE),
        ("detector.backbone.language_backbone.resizer.weight", "detector_model.text_projection.weight", Op.COPY),
        ("detector.transformer.decoder.layers.1.ca_text.out_proj.weight", "detector_model.detr_decoder.layers.1.text_cross_attn.o_proj.weight", Op.COPY),
        ("detector.transformer.decoder.layers.1.norm2.weight", "detector_model.detr_decoder.layers.1.self_attn_layer_norm.weight", Op.COPY),
        ("detector.transformer.decoder.bbox_embed.layers.2.bias", "detector_model.detr_decoder.box_head.layer3.bias", Op.COPY),
        ("detector.transformer.decoder.boxRPB_embed_y.layers.0.weight", "detector_model.detr_decoder.box_rpb_embed_y.layer1.weight", Op.COPY),
        ("detector.geometry_encoder.encode.0.cross_attn_image.in_proj_weight", "detector_model.geometry_encoder.layers.0.cross_attn.{}_proj.weight", Op.SPLIT_QKV),
        ("detector.geometry_encoder.encode_norm.weight", "detector_model.geometry_encoder.output_layer_norm.weight", Op.COPY),
        ("detector.segmentation_head.mask_predictor.mask_embed.layers.1.bias", "detector_model.mask_decoder.mask_embedder.layers.1.bias", Op.COPY),
        ("detector.dot_prod_scoring.prompt_mlp.layers.1.weight", "detector_model.dot_product_scoring.text_mlp.layer2.weight", Op.COPY),
        ("tracker.maskmem_backbone.mask_downsampler.encoder.7.bias", "tracker_model.memory_encoder.mask_downsampler.layers.2.layer_norm.bias", Op.COPY),
        ("tracker.maskmem_backbone.mask_downsampler.encoder.12.weight", "tracker_model.memory_encoder.mask_downsampler.final_conv.weight", Op.COPY),
        ("tracker.maskmem_backbone.fuser.layers.1.gamma", "tracker_model.memory_encoder.memory_fuser.layers.1.scale", Op.COPY),
        ("tracker.sam_mask_decoder.output_hypernetworks_mlps.3.layers.1.weight", "tracker_model.mask_decoder.output_hypernetworks_mlps.3.layers.0.weight", Op.COPY),
        ("tracker.sam_mask_decoder.pred_obj_score_head.layers.2.bias", "tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias", Op.COPY),
        ("tracker.sam_mask_decoder.transformer.layers.0.mlp.lin2.weight", "tracker_model.mask_decoder.transformer.layers.0.mlp.proj_out.weight", Op.COPY),
        ("tracker.transformer.encoder.layers.2.cross_attn_image.out_proj.bias", "tracker_model.memory_attention.layers.2.cross_attn_image.o_proj.bias", Op.COPY),
        ("tracker.obj_ptr_proj.layers.0.weight", "tracker_model.object_pointer_proj.proj_in.weight", Op.COPY),
        ("tracker.no_obj_embed_spatial", "tracker_model.occlusion_spatial_embedding_parameter", Op.COPY),
    ],
)
def test_release_names_map_to_transformers_names(release, target, op):
    mapped = transformers_names(release)
    assert dropped_reason(release) is None
    assert (mapped.targets[0], mapped.op) == (target, op)


def test_the_point_embeddings_become_rows_of_one_table_and_the_gaussian_matrix_goes_twice():
    rows = [transformers_names(f"tracker.sam_prompt_encoder.point_embeddings.{i}.weight") for i in range(4)]
    assert {m.targets for m in rows} == {("tracker_model.prompt_encoder.point_embed.weight",)}
    assert [m.index for m in rows] == [0, 1, 2, 3] and {m.op for m in rows} == {Op.STACK_ROWS}
    gaussian = transformers_names("tracker.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix")
    assert gaussian.targets == ("tracker_model.prompt_encoder.shared_embedding.positional_embedding", "tracker_model.shared_image_embedding.positional_embedding")


def test_what_transformers_has_no_place_for_is_named_with_why_and_anything_else_is_not_sam3():
    assert "computes them" in dropped_reason("detector.backbone.vision_backbone.trunk.blocks.7.attn.freqs_cis")
    assert "boxes only" in dropped_reason("detector.geometry_encoder.points_pool_project.weight")
    with pytest.raises(KeyError):
        transformers_names("model.layers.0.weight")
