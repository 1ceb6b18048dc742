"""The jobs: one video partition end to end; the crop catalog; the labelling snapshot; the
training sets (every labelling and dataset asset, in order); one checkpoint's embeddings."""

import dagster as dg

from vitcow_assets.defs.assets import ASSETS, SOURCE_ASSETS
from vitcow_assets.defs.datasets import DATASET_ASSETS
from vitcow_assets.defs.embeddings import crop_embeddings
from vitcow_assets.defs.labels import LABEL_ASSETS, crop_catalog
from vitcow_assets.defs.publishing import published_crops

#: every asset (and its checks) of one video partition (the assets' partitions), after
#: observing the checkpoint (so that the masks record the checkpoint they were made with)
process_video_job = dg.define_asset_job(
    "process_video",
    selection=dg.AssetSelection.assets(*ASSETS, published_crops, *(source.key for source in SOURCE_ASSETS)),
    description="Checkpoint observed; raw video -> clips -> masks -> crops and previews (-> published crops), for one video partition.",
)
catalog_job = dg.define_asset_job("crop_catalog_job", selection=dg.AssetSelection.assets(crop_catalog), description="The crop catalog of every video.")
labels_job = dg.define_asset_job("labels_snapshot", selection=dg.AssetSelection.assets(*LABEL_ASSETS), description="Catalog, taxonomy, label snapshot and trimmed crops.")
dataset_job = dg.define_asset_job(
    "build_dataset", selection=dg.AssetSelection.assets(*LABEL_ASSETS, *DATASET_ASSETS), description="Labels snapshot to training sets and their export."
)
embeddings_job = dg.define_asset_job(
    "crop_embeddings_job", selection=dg.AssetSelection.assets(crop_embeddings),
    description="Every catalog crop embedded by one registered checkpoint's encoder (one partition per checkpoint).",
)
#: the run config the sensors and the catch-up give their runs: the console at INFO (Dagster
#: prints every step event at DEBUG when a run names no level, burying what matters on
#: ``dagster dev``'s console)
INFO_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

JOBS = [process_video_job, catalog_job, labels_job, dataset_job, embeddings_job]
