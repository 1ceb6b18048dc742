"""transformers' SAM3 video model at test size: the real classes (``Sam3VideoModel``) with a
small configuration and random weights, the same sizes as ``sam3_tiny``'s Meta model (112 px,
ViT 64 wide and 2 deep, one encoder and decoder layer, 5 queries, a 1-layer text encoder,
1-layer memory attention), so that one state dict can run through both implementations.

- ``tiny_config()``: the ``Sam3VideoConfig``; ``write_tiny_config(path)`` its ``config.json``
  (the ``transformers_config`` setting for a release-layout checkpoint);
- ``write_tiny_folder(folder)``: a transformers model folder (``config.json`` +
  ``model.safetensors``, no tokenizer: the backend makes CLIP's from open_clip's BPE file),
  random weights biased as ``sam3_tiny.write_tiny_checkpoint`` biases Meta's (the tracker's
  object-score and IoU heads).

Where the two implementations' sizes meet: layer norms of the ViT at 1e-5 (Meta's), CLIP's
text MLP with exact GELU (transformers' CLIP default is quick GELU), the decoder's
feed-forward as wide as the scoring MLP, which transformers sizes by it
(``sam3_tiny.DECODER_FEED_FORWARD``).
"""

import torch

from vitcow_assets.segmenters.torch_imports import make_torch_stack_importable
from vitcow_testbed.sam3_tiny import DECODER_FEED_FORWARD, FEED_FORWARD, IOU_BIAS, SIZE

#: the tracker's object-score bias, as ``sam3_tiny`` sets it (objects are "present")
OBJECT_SCORE_BIAS = 10.0


def tiny_config(size: int = SIZE, queries: int = 5):
    make_torch_stack_importable()
    from transformers import CLIPTextConfig, Sam3Config, Sam3VideoConfig, Sam3VisionConfig, Sam3ViTConfig
    from transformers.models.sam3.configuration_sam3 import Sam3DETRDecoderConfig, Sam3DETREncoderConfig, Sam3GeometryEncoderConfig
    from transformers.models.sam3_tracker_video.configuration_sam3_tracker_video import Sam3TrackerVideoConfig

    feat = size // 14

    def vision():
        backbone = Sam3ViTConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=size, pretrain_image_size=size,
            window_size=feat // 2, global_attn_indexes=[1], layer_norm_eps=1e-5,
        )
        return Sam3VisionConfig(backbone_config=backbone, backbone_feature_sizes=[[feat * 4] * 2, [feat * 2] * 2, [feat] * 2])

    detector = Sam3Config(
        vision_config=vision(),
        text_config=CLIPTextConfig(
            hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
            projection_dim=512, hidden_act="gelu",
        ),
        geometry_encoder_config=Sam3GeometryEncoderConfig(num_layers=1, intermediate_size=FEED_FORWARD),
        detr_encoder_config=Sam3DETREncoderConfig(num_layers=1, intermediate_size=FEED_FORWARD),
        detr_decoder_config=Sam3DETRDecoderConfig(num_layers=1, intermediate_size=DECODER_FEED_FORWARD, num_queries=queries),
    )
    tracker = Sam3TrackerVideoConfig(
        vision_config=vision(), image_size=size, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=FEED_FORWARD,
        memory_fuser_num_layers=1,
    )
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=feat * 4)


def write_tiny_config(path) -> None:
    tiny_config().to_json_file(str(path))


def write_tiny_folder(folder, seed: int = 0) -> None:
    """A transformers SAM3 model folder with random test-size weights."""
    make_torch_stack_importable()
    from transformers import Sam3VideoModel

    torch.manual_seed(seed)
    model = Sam3VideoModel(tiny_config())
    with torch.no_grad():
        decoder = model.tracker_model.mask_decoder
        decoder.pred_obj_score_head.proj_out.bias.fill_(OBJECT_SCORE_BIAS)
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.proj_out.bias.add_(0.05)
        decoder.iou_prediction_head.proj_out.bias.fill_(IOU_BIAS)
    model.save_pretrained(str(folder))
