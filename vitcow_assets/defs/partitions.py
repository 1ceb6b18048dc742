"""The dynamic partitions: one per registered source video; one per registered encoder
checkpoint (the evaluation assets)."""

import dagster as dg

VIDEO_PARTITIONS_NAME = "videos"
CHECKPOINT_PARTITIONS_NAME = "checkpoints"

#: one partition per registered source video; keys come from ``storage.partition_key_for``
video_partitions = dg.DynamicPartitionsDefinition(name=VIDEO_PARTITIONS_NAME)
#: one partition per registered encoder checkpoint; keys come from ``encoders.registry.checkpoint_key``
checkpoint_partitions = dg.DynamicPartitionsDefinition(name=CHECKPOINT_PARTITIONS_NAME)
