"""The job that materializes one video partition: every asset and check of it."""

import dagster as dg

from vitcow_assets.defs.assets import ASSETS
from vitcow_assets.defs.publishing import published_crops

#: every asset (and its checks) of one video partition (the assets' partitions)
process_video_job = dg.define_asset_job(
    "process_video",
    selection=dg.AssetSelection.assets(*ASSETS, published_crops),
    description="Raw video -> clips -> masks -> crops and previews (-> published crops), for one video partition.",
)
