"""The dynamic partitions: one per registered source video."""

import dagster as dg

VIDEO_PARTITIONS_NAME = "videos"

#: one partition per registered source video; keys come from ``storage.partition_key_for``
video_partitions = dg.DynamicPartitionsDefinition(name=VIDEO_PARTITIONS_NAME)
