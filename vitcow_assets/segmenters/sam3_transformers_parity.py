"""Where transformers' SAM3 video pipeline (5.24) departs from Meta's (``sam3`` 0.1.4), Meta's
way, on one loaded model (methods of that model object replaced at load; no source edited).

Found by running one release state dict through both implementations at test size
(``vitcow_assets_tests/segmenters/test_sam3_implementations.py``): the converted weights
give the same vision features (to 2e-7) and text features (exactly); what differed is how
the pipelines use them:

1. **The detector's prompt.** Meta's detector always encodes the (here empty) geometric
   prompt, whose CLS token joins the text tokens as one more prompt token; transformers' video
   model passes the text alone. Detection scores differed (0.397 against 0.364 at test size).
   Fixed by handing transformers' detector one padded box (label -10, masked out), which makes
   it encode the CLS token as Meta's does; scores then agree to float precision.
2. **New objects entering the tracker.** Meta upsamples the detector's low-resolution mask
   logits four times (to the tracker's input-mask size) and keeps logits above 0;
   transformers keeps the low-resolution logits above 0.5 (a probability threshold on logits).
3. **A mask used as the output** (a new object's first frame): Meta works at that input-mask
   size; transformers first resizes the mask to the image size.

With these, masks agree to IoU 0.989 or more per object and frame at test size when Meta's
memory selection is off; what remains is listed in docs/sam3-implementations.md (Meta's
tracker selects its memory frames by score, transformers has no memory selection; Meta
encodes a new object's first memory from its mask at the video's resolution).
"""

import types

#: the methods replaced, which must exist as in transformers 5.24
REPLACED = ("_tracker_add_new_objects", "_use_mask_as_output", "_single_frame_forward", "mask_downsample")
#: logits of a binary mask used as output (Meta's and transformers' constants)
OUT_SCALE, OUT_BIAS = 20.0, -10.0
#: the logit Meta's tracker gives background (and, negated, foreground) of a mask at the video's resolution
NO_OBJ_SCORE = -1024.0
#: the padded box label transformers' detector masks out
PADDING_LABEL = -10
#: the tracker's input-mask size and its low-resolution mask size, over its low-resolution mask size
INPUT_MASK_SCALE = 4


def missing_internals(model) -> list[str]:
    """The replaced methods this transformers does not have (empty: parity can be installed)."""
    owners = {"_tracker_add_new_objects": model, "_use_mask_as_output": model.tracker_model}
    owners.update(_single_frame_forward=model.tracker_model, mask_downsample=model.tracker_model)
    return [name for name in REPLACED if not hasattr(owners[name], name)]


def install(model) -> None:
    """Make ``model`` (a ``Sam3VideoModel``) follow Meta's pipeline in points 1 to 3 above."""
    _detector_with_geometry_token(model.detector_model)
    model._tracker_add_new_objects = types.MethodType(_add_new_objects, model)
    model.tracker_model._use_mask_as_output = types.MethodType(_use_mask_as_output, model.tracker_model)


def _detector_with_geometry_token(detector) -> None:
    """Point 1: text-only calls get one masked box, so the geometry encoder's CLS token is made."""
    import torch

    forward = detector.forward

    def with_geometry_token(*args, **kwargs):
        vision = kwargs.get("vision_embeds")
        if kwargs.get("input_boxes") is None and vision is not None:
            features = vision.fpn_hidden_states[0]
            batch = features.shape[0]
            kwargs["input_boxes"] = torch.zeros(batch, 1, 4, device=features.device, dtype=features.dtype)
            kwargs["input_boxes_labels"] = torch.full((batch, 1), PADDING_LABEL, dtype=torch.long, device=features.device)
        return forward(*args, **kwargs)

    detector.forward = with_geometry_token


def _add_new_objects(self, inference_session, frame_idx, new_obj_ids, new_obj_masks, reverse=False):
    """Point 2: new objects' masks at the tracker's input-mask size, logits above 0."""
    import torch.nn.functional as F

    size = self.low_res_mask_size * INPUT_MASK_SCALE
    masks = F.interpolate(new_obj_masks.unsqueeze(1).float(), size=(size, size), mode="bilinear", align_corners=False).squeeze(1) > 0
    for obj_id, mask in zip(new_obj_ids, masks):
        inference_session.add_mask_inputs(inference_session.obj_id_to_idx(obj_id), frame_idx, mask.unsqueeze(0).unsqueeze(0))
    inference_session.obj_with_new_inputs = list(new_obj_ids)
    self.tracker_model(inference_session=inference_session, frame_idx=frame_idx, reverse=reverse, run_mem_encoder=True)
    _first_memory_as_meta(self.tracker_model, inference_session, frame_idx, list(new_obj_ids), masks)


def _first_memory_as_meta(tracker, session, frame_idx: int, obj_ids: list, masks) -> None:
    """Point 4: new objects' first memory from their masks as Meta's tracker holds them: at
    the video's resolution (``±NO_OBJ_SCORE``; an object added later takes the pixels it
    shares with earlier ones), brought to the low resolution, then to the image size, overlaps
    given to the highest score, binarised (a mask from user input)."""
    import torch
    import torch.nn.functional as F

    dtype = next(tracker.parameters()).dtype
    video_size = (int(session.video_height), int(session.video_width))
    low_size = tuple(s // INPUT_MASK_SCALE for s in masks.shape[-2:])
    at_video = F.interpolate(masks.unsqueeze(1).float(), size=video_size, mode="bilinear", align_corners=False, antialias=True) > 0.5
    logits = torch.where(at_video, -NO_OBJ_SCORE, NO_OBJ_SCORE)
    for k in range(1, len(obj_ids)):  # objects added one by one: each takes its pixels from those added before
        logits[:k] = torch.where(at_video[k : k + 1], NO_OBJ_SCORE, logits[:k])
    low = F.interpolate(logits, size=low_size, mode="bilinear", align_corners=False, antialias=True)
    high = F.interpolate(low, size=(tracker.image_size, tracker.image_size), mode="bilinear", align_corners=False)
    high = _non_overlapping(high).to(dtype)
    features, _ = tracker._prepare_vision_features(session, frame_idx, batch_size=1)
    scores = torch.where(at_video.flatten(1).any(dim=1), OUT_SCALE + OUT_BIAS, OUT_BIAS)[:, None, None].to(dtype)
    memory, position = tracker._encode_new_memory(
        current_vision_feats=features[-1].expand(-1, len(obj_ids), -1), pred_masks_high_res=high, object_score_logits=scores,
        is_mask_from_pts=True,
    )
    for i, obj_id in enumerate(obj_ids):
        stored = session.output_dict_per_obj[session.obj_id_to_idx(obj_id)]["cond_frame_outputs"].get(frame_idx)
        if stored is not None:
            stored["maskmem_features"], stored["maskmem_pos_enc"] = memory[:, i : i + 1], position[:, i : i + 1]


def _non_overlapping(masks):
    """Each pixel kept by the object of highest logit only (the others at most -10), as Meta's
    tracker does before encoding memories of several objects."""
    import torch

    if masks.shape[0] == 1:
        return masks
    winner = torch.argmax(masks, dim=0, keepdim=True)
    mine = winner == torch.arange(masks.shape[0], device=masks.device)[:, None, None, None]
    return torch.where(mine, masks, torch.clamp(masks, max=OUT_BIAS))


def _use_mask_as_output(self, backbone_features, high_res_features, mask_inputs):
    """Point 3: the mask's low-resolution logits a quarter of its own (input-mask) size and the
    object pointer from the mask downsampled there, as Meta's tracker."""
    import torch
    import torch.nn.functional as F
    from transformers.models.sam3_tracker_video.modeling_sam3_tracker_video import Sam3TrackerVideoImageSegmentationOutput

    dtype = backbone_features[0].dtype
    masks = mask_inputs.to(dtype)
    high_res_masks = masks * OUT_SCALE + OUT_BIAS
    low_size = (high_res_masks.shape[-2] // INPUT_MASK_SCALE, high_res_masks.shape[-1] // INPUT_MASK_SCALE)
    low_res_masks = F.interpolate(high_res_masks.float(), size=low_size, align_corners=False, mode="bilinear", antialias=True).to(dtype)
    embeddings = high_res_features + [backbone_features]
    pointer = self._single_frame_forward(input_masks=self.mask_downsample(masks), image_embeddings=embeddings).object_pointer
    # at the image size, as transformers' other outputs, which it encodes into memory with these
    # (the first memory of a new object is then made as Meta makes it: ``_first_memory_as_meta``)
    high_res_masks = F.interpolate(high_res_masks.float(), size=(self.image_size, self.image_size), mode="bilinear", antialias=True).to(dtype)
    appearing = torch.any(mask_inputs.flatten(1).float() > 0.0, dim=1)[..., None].to(dtype)
    pointer = appearing * pointer + (1 - appearing) * self.no_object_pointer
    return Sam3TrackerVideoImageSegmentationOutput(
        iou_scores=mask_inputs.new_ones(mask_inputs.size(0), 1).to(dtype), pred_masks=low_res_masks, high_res_masks=high_res_masks,
        object_pointer=pointer, object_score_logits=(OUT_SCALE * appearing + OUT_BIAS).unsqueeze(-1), image_embeddings=embeddings,
    )
