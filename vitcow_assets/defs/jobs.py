import dagster as dg

from vitcow_assets.defs.assets import ASSETS

#: every asset (and its checks) of one video partition (the assets' partitions)
process_video_job = dg.define_asset_job(
    "process_video",
    selection=dg.AssetSelection.assets(*ASSETS),
    description="Raw video -> clips -> masks -> crops and previews, for one video partition.",
)
