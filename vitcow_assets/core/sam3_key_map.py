"""Where each tensor of SAM3's release checkpoint (``sam3.pt``: ``detector.*``, ``tracker.*``)
lives in transformers' ``Sam3VideoModel`` (``detector_model.*``, ``tracker_model.*``,
``tracker_neck.*``): pure renaming rules, no tensors.

Written from the facts of transformers' conversion scripts (``convert_sam3_video_to_hf.py``,
which works on Meta's internal names ``sam3_model.*`` / ``sam2_predictor.model.*``): the
release names are mapped directly. Besides renames, a few tensors change shape on the way
(``Op``), which ``segmenters.sam3_conversion`` carries out:

- ``SPLIT_QKV``: a fused ``qkv`` / ``in_proj`` tensor becomes ``q_proj``, ``k_proj``, ``v_proj``
  (the target holds ``{}`` for ``q``, ``k``, ``v``);
- ``TRANSPOSE``: CLIP's text projection is stored transposed in the release;
- ``DROP_CLS``: the ViT's position embedding loses its first (class token) position;
- ``STACK_ROWS``: the tracker prompt encoder's four point embeddings (one row each) become one
  four-row table; ``index`` says which row;
- ``COPY``: as it is, to every target (the prompt encoder's Gaussian matrix has two).

``DROPPED`` says which release tensors transformers has no place for, and why; every other
name without a rule is an error of the checkpoint (``transformers_names`` raises ``KeyError``).
"""

import dataclasses
import enum
import re


class Op(enum.Enum):
    COPY = "copy"
    SPLIT_QKV = "split q, k, v"
    TRANSPOSE = "transpose"
    DROP_CLS = "drop the class-token position"
    STACK_ROWS = "stack rows"


@dataclasses.dataclass(frozen=True)
class Mapped:
    targets: tuple[str, ...]
    op: Op = Op.COPY
    index: int = 0


#: release tensors transformers does not hold, and why (regex on the release name)
DROPPED = {
    r"\.attn\.freqs_cis$": "the ViT's rotary tables: transformers computes them from the config",
    r"^detector\.geometry_encoder\.points_": "the detector's point-prompt projections: transformers' geometry encoder takes boxes only (video clicks go to the tracker)",
}

_NECK = [  # a ViTDet FPN level, for the detector's neck and the tracker's
    (r"\.dconv_2x2_0\.", ".scale_layers.0."),
    (r"\.dconv_2x2_1\.", ".scale_layers.2."),
    (r"\.dconv_2x2\.", ".scale_layers.0."),
    (r"\.maxpool_2x2\.", ".scale_layers.0."),
    (r"\.conv_1x1\.", ".proj1."),
    (r"\.conv_3x3\.", ".proj2."),
]
_ATTENTION = [(r"\.out_proj\.", ".o_proj.")]
_NORMS = [(r"\.norm([1-4])\.", r".layer_norm\1.")]

#: (release prefix, transformers prefix, renames applied to the rest of the name, in order)
_SECTIONS = [
    ("detector.backbone.vision_backbone.trunk.", "detector_model.vision_encoder.backbone.", [
        (r"^pos_embed$", "embeddings.position_embeddings"),
        (r"^patch_embed\.proj\.", "embeddings.patch_embeddings.projection."),
        (r"^ln_pre\.", "layer_norm."),
        (r"^blocks\.", "layers."),
        (r"\.attn\.qkv\.", ".attention.{}_proj."),
        (r"\.attn\.proj\.", ".attention.o_proj."),
        *_NORMS,
    ]),
    ("detector.backbone.vision_backbone.convs.", "detector_model.vision_encoder.neck.fpn_layers.", _NECK),
    ("detector.backbone.vision_backbone.sam2_convs.", "tracker_neck.fpn_layers.", _NECK),
    ("detector.backbone.language_backbone.encoder.", "detector_model.text_encoder.", [
        (r"^token_embedding\.", "text_model.embeddings.token_embedding."),
        (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
        (r"^ln_final\.", "text_model.final_layer_norm."),
        (r"^text_projection$", "text_projection.weight"),
        (r"^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$", r"text_model.encoder.layers.\1.self_attn.{}_proj.\2"),
        (r"^transformer\.resblocks\.(\d+)\.attn\.", r"text_model.encoder.layers.\1.self_attn."),
        (r"^transformer\.resblocks\.(\d+)\.ln_([12])\.", r"text_model.encoder.layers.\1.layer_norm\2."),
        (r"^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.", r"text_model.encoder.layers.\1.mlp.fc1."),
        (r"^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.", r"text_model.encoder.layers.\1.mlp.fc2."),
    ]),
    ("detector.backbone.language_backbone.resizer.", "detector_model.text_projection.", []),
    ("detector.geometry_encoder.", "detector_model.geometry_encoder.", [
        (r"^encode\.", "layers."),
        (r"\.cross_attn_image\.", ".cross_attn."),
        (r"\.linear([12])\.", r".mlp.fc\1."),
        (r"^img_pre_norm\.", "vision_layer_norm."),
        (r"^norm\.", "prompt_layer_norm."),
        (r"^encode_norm\.", "output_layer_norm."),
        *_ATTENTION, *_NORMS,
    ]),
    ("detector.transformer.encoder.", "detector_model.detr_encoder.", [
        (r"\.cross_attn_image\.", ".cross_attn."),
        (r"\.linear([12])\.", r".mlp.fc\1."),
        *_ATTENTION, *_NORMS,
    ]),
    ("detector.transformer.decoder.", "detector_model.detr_decoder.", [
        (r"\.cross_attn\.", ".vision_cross_attn."),
        (r"\.ca_text\.", ".text_cross_attn."),
        (r"\.norm1\.", ".vision_cross_attn_layer_norm."),
        (r"\.catext_norm\.", ".text_cross_attn_layer_norm."),
        (r"\.norm2\.", ".self_attn_layer_norm."),
        (r"\.norm3\.", ".mlp_layer_norm."),
        (r"\.linear([12])\.", r".mlp.fc\1."),
        (r"^norm\.", "output_layer_norm."),
        (r"^bbox_embed\.", "box_head."),
        (r"^instance_bbox_embed\.", "instance_box_head."),
        (r"^presence_token_head\.", "presence_head."),
        (r"^presence_token_out_norm\.", "presence_layer_norm."),
        (r"^boxRPB_embed_([xy])\.", r"box_rpb_embed_\1."),
        (r"^(box_head|instance_box_head|presence_head|ref_point_head|box_rpb_embed_[xy])\.layers\.([0-2])\.", r"\1.layer{\2}."),
        *_ATTENTION,
    ]),
    ("detector.segmentation_head.", "detector_model.mask_decoder.", [
        (r"^mask_predictor\.mask_embed\.", "mask_embedder."),
        (r"^mask_embed\.", "mask_embedder."),
        (r"^instance_seg_head\.", "instance_projection."),
        (r"^semantic_seg_head\.", "semantic_projection."),
        (r"^cross_attend_prompt\.", "prompt_cross_attn."),
        (r"^cross_attn_norm\.", "prompt_cross_attn_norm."),
        *_ATTENTION,
    ]),
    ("detector.dot_prod_scoring.", "detector_model.dot_product_scoring.", [
        (r"^prompt_mlp\.layers\.([01])\.", r"text_mlp.layer{\1}."),
        (r"^prompt_mlp\.out_norm\.", "text_mlp_out_norm."),
        (r"^prompt_proj\.", "text_proj."),
        (r"^hs_proj\.", "query_proj."),
    ]),
    ("tracker.transformer.encoder.", "tracker_model.memory_attention.", [
        (r"^norm\.", "layer_norm."),
        *_ATTENTION, *_NORMS,
    ]),
    ("tracker.maskmem_backbone.", "tracker_model.memory_encoder.", [
        (r"^mask_downsampler\.encoder\.12\.", "mask_downsampler.final_conv."),
        (r"^mask_downsampler\.encoder\.(\d+)\.", "mask_downsampler.encoder{\\1}."),
        (r"^pix_feat_proj\.", "feature_projection."),
        (r"^fuser\.", "memory_fuser."),
        (r"\.gamma$", ".scale"),
        (r"\.dwconv\.", ".depthwise_conv."),
        (r"\.pwconv([12])\.", r".pointwise_conv\1."),
        (r"\.norm\.", ".layer_norm."),
        (r"^out_proj\.", "projection."),
    ]),
    ("tracker.sam_prompt_encoder.", "tracker_model.prompt_encoder.", [
        (r"^pe_layer\.positional_encoding_gaussian_matrix$", "shared_embedding.positional_embedding"),
        (r"^mask_downscaling\.0\.", "mask_embed.conv1."),
        (r"^mask_downscaling\.1\.", "mask_embed.layer_norm1."),
        (r"^mask_downscaling\.3\.", "mask_embed.conv2."),
        (r"^mask_downscaling\.4\.", "mask_embed.layer_norm2."),
        (r"^mask_downscaling\.6\.", "mask_embed.conv3."),
    ]),
    ("tracker.sam_mask_decoder.", "tracker_model.mask_decoder.", [
        (r"\.mlp\.lin1\.", ".mlp.proj_in."),
        (r"\.mlp\.lin2\.", ".mlp.proj_out."),
        (r"\.norm_final_attn\.", ".layer_norm_final_attn."),
        (r"^output_upscaling\.0\.", "upscale_conv1."),
        (r"^output_upscaling\.1\.", "upscale_layer_norm."),
        (r"^output_upscaling\.3\.", "upscale_conv2."),
        (r"^(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)\.layers\.([0-2])\.", r"\1.mlp{\2}."),
        *_ATTENTION, *_NORMS,
    ]),
    ("tracker.obj_ptr_proj.", "tracker_model.object_pointer_proj.", [(r"^layers\.([0-2])\.", r"mlp{\1}.")]),
    ("tracker.obj_ptr_tpos_proj.", "tracker_model.temporal_positional_encoding_projection_layer.", []),
    ("tracker.", "tracker_model.", [
        (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),
        (r"^no_mem_embed$", "no_memory_embedding"),
        (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
        (r"^no_obj_ptr$", "no_object_pointer"),
        (r"^no_obj_embed_spatial$", "occlusion_spatial_embedding_parameter"),
    ]),
]

#: numbered sub-layers whose numbering changes: ``layer{i}`` counts from 1; a three-layer MLP's
#: ``mlp{i}`` becomes ``proj_in``, ``layers.0``, ``proj_out``; the memory encoder's mask
#: downsampler ``encoder{i}`` (conv, norm, activation per stage) becomes ``layers.<i // 3>.conv`` / ``.layer_norm``
_NUMBERED = [
    (re.compile(r"layer\{(\d)\}"), lambda m: f"layer{int(m.group(1)) + 1}"),
    (re.compile(r"mlp\{(\d)\}"), lambda m: ("proj_in", "layers.0", "proj_out")[int(m.group(1))]),
    (re.compile(r"encoder\{(\d+)\}"), lambda m: f"layers.{int(m.group(1)) // 3}.{('conv', 'layer_norm')[int(m.group(1)) % 3]}"),
]
#: a fused attention input projection (PyTorch's ``nn.MultiheadAttention``), in every section
_FUSED = [(r"\.in_proj_(weight|bias)$", r".{}_proj.\1")]
_POINT_EMBEDDING = re.compile(r"^tracker\.sam_prompt_encoder\.point_embeddings\.(\d+)\.weight$")
_SHARED_GAUSSIAN = "tracker_model.shared_image_embedding.positional_embedding"


def dropped_reason(release_key: str) -> str | None:
    """Why transformers holds no copy of this release tensor, or None when it does."""
    return next((why for pattern, why in DROPPED.items() if re.search(pattern, release_key)), None)


def _renamed(release_key: str) -> str:
    for prefix, target, rules in _SECTIONS:
        if release_key.startswith(prefix):
            rest = release_key[len(prefix) :]
            for pattern, replacement in rules + _FUSED:
                rest = re.sub(pattern, replacement, rest)
            for pattern, number in _NUMBERED:
                rest = pattern.sub(number, rest)
            return target + rest
    raise KeyError(release_key)


def transformers_names(release_key: str) -> Mapped:
    """Where ``release_key`` goes in ``Sam3VideoModel``'s state dict (``KeyError`` for a
    name that is not SAM3's release layout; check ``dropped_reason`` first)."""
    point = _POINT_EMBEDDING.match(release_key)
    if point:
        return Mapped(("tracker_model.prompt_encoder.point_embed.weight",), Op.STACK_ROWS, int(point.group(1)))
    name = _renamed(release_key)
    if "{}" in name:
        return Mapped((name,), Op.SPLIT_QKV)
    if name.endswith("text_encoder.text_projection.weight"):
        return Mapped((name,), Op.TRANSPOSE)
    if name.endswith("backbone.embeddings.position_embeddings"):
        return Mapped((name,), Op.DROP_CLS)
    if name.endswith("prompt_encoder.shared_embedding.positional_embedding"):
        return Mapped((name, _SHARED_GAUSSIAN))
    return Mapped((name,))
