import dagster as dg

from vitcow_assets.defs.assets import ASSETS
from vitcow_assets.defs.partitions import video_partitions
from vitcow_assets.defs.publishing import published_crops

#: every asset (and its checks) of one video partition
process_video_job = dg.define_asset_job(
    "process_video",
    selection=dg.AssetSelection.assets(*ASSETS, published_crops),
    partitions_def=video_partitions,
    description="Raw video -> clips -> masks -> crops and previews (-> published crops), for one video partition.",
)
