"""Lists of crops: the crop pages' list with its filters (``/crops?video=...&track=...``),
and the preview of a video's crops that its ``object_crops`` materialization shows in the
Dagster UI (one row per crop with the address of its page).

Pure: catalog rows (dicts, or a table) in, rows out.
"""

import dataclasses
from collections.abc import Mapping

import pyarrow as pa

from vitcow_assets.lineage.links import Links, crop_path

#: rows a list page shows at once
PAGE_ROWS = 100
#: rows of the Dagster UI's preview of a video's crops (the rest are counted, and listed on the crop pages)
PREVIEW_ROWS = 200
#: the filters of the list, in the order the page shows them
FILTERS = ("video", "track", "farm", "camera", "clip", "segmenter", "label", "labelled", "dataset", "split")
#: filter -> the catalog column it compares (the others need labels or the build index)
_COLUMN_FILTERS = {"video": "video_id", "track": "track_id", "farm": "farm", "camera": "camera", "clip": "clip_id", "segmenter": "segmenter"}
_SPLITS = ("train", "val", "test")


class QueryError(ValueError):
    """A filter value the list cannot use; the message names the parameter."""


@dataclasses.dataclass(frozen=True)
class CropQuery:
    """The list's filters (None: any) and the page of results asked for."""

    video: str | None = None
    track: int | None = None
    farm: str | None = None
    camera: str | None = None
    clip: str | None = None
    segmenter: str | None = None
    #: crops whose current labels include this fine label
    label: str | None = None
    #: True: crops with a current label; False: crops without one
    labelled: bool | None = None
    #: fingerprint (or a unique prefix) of a recorded dataset build
    dataset: str | None = None
    split: str | None = None
    offset: int = 0
    limit: int = PAGE_ROWS

    @classmethod
    def of(cls, params: Mapping[str, str]) -> "CropQuery":
        """The query of a request's parameters (empty values are no filter); ``QueryError``."""
        given = {k: v.strip() for k, v in params.items() if k in (*FILTERS, "offset", "limit") and v.strip()}
        values: dict = dict(given)
        for name in ("track", "offset", "limit"):
            if name in given:
                try:
                    values[name] = int(given[name])
                except ValueError:
                    raise QueryError(f"{name}: give a whole number, not {given[name]!r}") from None
        if "labelled" in given:
            if given["labelled"].lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise QueryError(f"labelled: give 1 or 0, not {given['labelled']!r}")
            values["labelled"] = given["labelled"].lower() in ("1", "true", "yes")
        if values.get("split") not in (None, *_SPLITS):
            raise QueryError(f"split: one of {', '.join(_SPLITS)}, not {values['split']!r}")
        if values.get("offset", 0) < 0 or not 1 <= values.get("limit", PAGE_ROWS) <= 10 * PAGE_ROWS:
            raise QueryError(f"offset must be >= 0 and limit between 1 and {10 * PAGE_ROWS}")
        return cls(**values)

    def filters(self) -> dict:
        """The filters set, as query parameters (what links to this list carry)."""
        return {k: getattr(self, k) for k in FILTERS if getattr(self, k) is not None}


@dataclasses.dataclass(frozen=True)
class CropList:
    rows: list[dict]
    #: crops matching the filters (the rows are one page of them)
    total: int
    query: CropQuery


def _keep(row: dict, query: CropQuery, labels: Mapping[str, list[str]], members: Mapping[str, list[str]] | None) -> bool:
    for name, column in _COLUMN_FILTERS.items():
        wanted = getattr(query, name)
        if wanted is not None and row[column] != wanted:
            return False
    mine = labels.get(row["crop_id"], [])
    if query.label is not None and query.label not in mine:
        return False
    if query.labelled is not None and bool(mine) != query.labelled:
        return False
    return members is None or row["crop_id"] in members


def list_crops(rows: list[dict], query: CropQuery, labels: Mapping[str, list[str]], members: Mapping[str, list[str]] | None = None) -> CropList:
    """The catalog ``rows`` (in catalog order) matching ``query``: one page of them, each
    with its current labels (``labels``: crop_id -> fine labels) and, for a dataset filter,
    the lists of the build naming it (``members``: crop_id -> lists; None: no such filter)."""
    kept = [r for r in rows if _keep(r, query, labels, members)]
    page = kept[query.offset : query.offset + query.limit]
    out = [
        {**r, "labels": labels.get(r["crop_id"], []), "lists": (members or {}).get(r["crop_id"], []), "href": crop_path(r["crop_id"])}
        for r in page
    ]
    return CropList(out, len(kept), query)


def preview_rows(catalog: pa.Table, links: Links, limit: int = PREVIEW_ROWS) -> tuple[list[dict], int]:
    """The first ``limit`` crops of a video's catalog rows as the Dagster UI's table preview
    shows them (crop id, track, clip, object, source frames, presence, page address), and
    how many more there are."""
    cols = ["crop_id", "track_id", "clip_id", "object_id", "part", "source_frame_start", "source_frame_end", "frame_step", "frames", "frames_present", "presence_ratio"]
    rows = []
    for r in catalog.slice(0, limit).select(cols).to_pylist():
        rows.append({
            "crop_id": r["crop_id"], "track": r["track_id"], "clip": r["clip_id"], "object": r["object_id"] if not r["part"] else f"{r['object_id']} part {r['part']}",
            "source_frames": f"{r['source_frame_start']}–{r['source_frame_end']} step {r['frame_step']}",
            "present": f"{r['frames_present']}/{r['frames']} ({r['presence_ratio']:.2f})", "page": links.crop_page(r["crop_id"]) or "",
        })
    return rows, max(0, catalog.num_rows - limit)
