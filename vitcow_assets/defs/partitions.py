"""The dynamic partitions: one per registered source video; one per registered checkpoint
(``crop_embeddings`` and the evaluations of its embeddings); one per imported predictions file."""

import dagster as dg

VIDEO_PARTITIONS_NAME = "videos"
CHECKPOINT_PARTITIONS_NAME = "checkpoints"
PREDICTIONS_PARTITIONS_NAME = "predictions"

#: one partition per registered source video; keys come from ``storage.partition_key_for``
video_partitions = dg.DynamicPartitionsDefinition(name=VIDEO_PARTITIONS_NAME)
#: one partition per registered checkpoint: ``crop_embeddings``, ``retrieval_eval``, ``probe_eval``
checkpoint_partitions = dg.DynamicPartitionsDefinition(name=CHECKPOINT_PARTITIONS_NAME)
#: one partition per imported predictions file (``predictions_eval``), named by its importer
prediction_partitions = dg.DynamicPartitionsDefinition(name=PREDICTIONS_PARTITIONS_NAME)
