"""The addresses that tie a crop to its page and its page to the Dagster UI.

``Links(pages_url, dagster_url)`` (the storage settings ``pages_url`` and ``dagster_url``)
makes every address: a crop's page (``/crops/<crop_id>``) and the list of crops with
filters (``/crops?video=...&track=...``) on the platform's web server, and in the Dagster UI
a run (``/runs/<run_id>``) and one partition of an asset
(``/assets/<key>?view=partitions&partition=<partition>``: the asset's Partitions tab with that
partition selected, as the UI's own links write it in Dagster 1.13). Either base may be None
(not served): its addresses are then None and the pages leave the links out.

``links_from(environ)`` reads both bases from the storage settings' environment variables
(``VITCOW_PAGES_URL``, ``VITCOW_DAGSTER_URL``), as the Dagster resource, the crop pages and
``vitcow provenance`` do.

Pure: strings (and a mapping of the environment) in, strings out.
"""

import dataclasses
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from vitcow_assets.core.settings import build, from_environ
from vitcow_assets.footage.settings import StorageSettings

#: the partitioned assets a crop page links to, in the order the pipeline makes them
PARTITION_ASSETS = ("raw_video", "clips", "object_masks", "object_crops")


def _base(url: str | None) -> str | None:
    return url.rstrip("/") if url else None


@dataclasses.dataclass(frozen=True)
class Links:
    """Where the crop pages and the Dagster UI are served (None: not served)."""

    pages_url: str | None = None
    dagster_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages_url", _base(self.pages_url))
        object.__setattr__(self, "dagster_url", _base(self.dagster_url))

    # -- the platform's pages ------------------------------------------------------------

    def crop_page(self, crop_id: str) -> str | None:
        return None if self.pages_url is None else f"{self.pages_url}{crop_path(crop_id)}"

    def crop_list(self, **filters) -> str | None:
        """The list of crops with ``filters`` (video, track, farm, camera, clip, label,
        dataset, split, labelled: the query parameters of ``/crops``); None values left out."""
        return None if self.pages_url is None else f"{self.pages_url}{list_path(**filters)}"

    # -- the Dagster UI ------------------------------------------------------------------

    def run(self, run_id: str | None) -> str | None:
        if self.dagster_url is None or not run_id:
            return None
        return f"{self.dagster_url}/runs/{quote(run_id, safe='')}"

    def asset_partition(self, asset: str, partition: str) -> str | None:
        """The asset's Partitions tab with ``partition`` selected."""
        if self.dagster_url is None:
            return None
        query = urlencode({"view": "partitions", "partition": partition})
        return f"{self.dagster_url}/assets/{quote(asset, safe='')}?{query}"

    def asset(self, asset: str) -> str | None:
        return None if self.dagster_url is None else f"{self.dagster_url}/assets/{quote(asset, safe='')}"


def crop_path(crop_id: str) -> str:
    """The path (no host) of a crop's page."""
    return f"/crops/{quote(crop_id, safe='')}"


def list_path(**filters) -> str:
    """The path (no host) of the crop list with ``filters``."""
    query = urlencode([(k, str(v)) for k, v in filters.items() if v is not None and v != ""])
    return "/crops" + (f"?{query}" if query else "")


def links_from(environ: Mapping[str, str]) -> Links:
    """The page and Dagster UI addresses the storage settings in ``environ`` give."""
    settings = build(StorageSettings, from_environ(StorageSettings, environ))
    return Links(settings.pages_url, settings.dagster_url)
