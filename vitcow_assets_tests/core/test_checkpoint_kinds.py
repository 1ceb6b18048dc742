"""Telling SAM3 checkpoint layouts apart by their tensor names, and naming differences."""

from vitcow_assets.core.checkpoint_kinds import CheckpointKind, checkpoint_kind, key_differences

RELEASE = ["detector.backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis", "tracker.sam_mask_decoder.iou_token.weight"]


def test_each_layout_is_told_from_its_names():
    assert checkpoint_kind(RELEASE) is CheckpointKind.SAM3_RELEASE
    assert checkpoint_kind(["detector_model.vision_encoder.x", "tracker_model.y", "tracker_neck.z"]) is CheckpointKind.TRANSFORMERS
    assert checkpoint_kind(["detector.backbone.x", "tracker.model.sam_mask_decoder.w"]) is CheckpointKind.SAM31_MULTIPLEX
    assert checkpoint_kind([*RELEASE, "detector.backbone.vision_backbone.interactive_convs.0.weight"]) is CheckpointKind.SAM31_MULTIPLEX
    assert checkpoint_kind(["detector.backbone.x"]) is CheckpointKind.NOT_SAM3  # an image model: no tracker
    assert checkpoint_kind(["layer.weight"]) is CheckpointKind.NOT_SAM3
    assert checkpoint_kind([]) is CheckpointKind.NOT_SAM3


def test_differences_name_the_first_few_of_each_sorted():
    expected = [f"tracker.k{i}" for i in range(6)] + ["detector.a"]
    found = ["detector.a", "tracker.k0", "extra.b", "extra.a"]
    assert key_differences(expected, found) == "missing tracker.k1, tracker.k2, tracker.k3 (+2 more); unexpected extra.a, extra.b"
    assert key_differences(expected, expected) == ""
