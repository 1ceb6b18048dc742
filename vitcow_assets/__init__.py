"""vitcow_assets: fixed-camera farm footage -> per-animal crop videos, as Dagster assets."""

__version__ = "0.1.0"
