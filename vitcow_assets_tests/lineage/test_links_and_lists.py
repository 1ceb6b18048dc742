"""The addresses (``lineage.links``) and the lists of crops (``lineage.listing``): the forms
the Dagster UI and the crop pages answer to, the list's filters and pages, and the Dagster
preview's cap."""

from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest

from vitcow_assets.lineage.links import Links, list_path
from vitcow_assets.lineage.listing import CropQuery, QueryError, list_crops, preview_rows

LINKS = Links("http://pages.example:8765/", "http://dagster.example:3000")


def _row(i: int, video: str = "v1", track: int = 0) -> dict:
    return {"crop_id": f"{i:020x}", "video_id": video, "track_id": track, "farm": "FARM_A", "camera": "D01", "clip_id": f"c{i:05d}",
            "segmenter": "motion/v3", "object_id": 0, "part": 0, "source_frame_start": 18 * i, "source_frame_end": 18 * i + 18,
            "frame_step": 2, "frames": 10, "frames_present": 10 - i % 3, "presence_ratio": (10 - i % 3) / 10}


def test_addresses_of_crop_pages_runs_and_partitions():
    assert LINKS.crop_page("abc") == "http://pages.example:8765/crops/abc"
    assert LINKS.crop_list(video="2025 cam#1", track=3, farm=None) == "http://pages.example:8765/crops?video=2025+cam%231&track=3"
    assert LINKS.run("0f0e-11") == "http://dagster.example:3000/runs/0f0e-11"
    url = LINKS.asset_partition("object_crops", "202401010800_D01-a1b2c3")
    parts = urlsplit(url)
    assert parts.path == "/assets/object_crops" and parse_qs(parts.query) == {"view": ["partitions"], "partition": ["202401010800_D01-a1b2c3"]}
    off = Links(None, None)
    assert (off.crop_page("abc"), off.crop_list(video="v"), off.run("r"), off.asset_partition("clips", "k")) == (None, None, None, None)
    assert LINKS.run(None) is None and list_path() == "/crops"


def test_query_parameters_are_parsed_and_bad_ones_refused_naming_the_parameter():
    query = CropQuery.of({"video": " v1 ", "track": "3", "labelled": "0", "split": "test", "offset": "100", "junk": "x", "farm": ""})
    assert (query.video, query.track, query.labelled, query.split, query.offset, query.farm) == ("v1", 3, False, "test", 100, None)
    assert query.filters() == {"video": "v1", "track": 3, "labelled": False, "split": "test"}
    for params, name in [({"track": "three"}, "track"), ({"labelled": "maybe"}, "labelled"), ({"split": "holdout"}, "split"), ({"limit": "0"}, "limit")]:
        with pytest.raises(QueryError, match=name):
            CropQuery.of(params)


def test_filters_keep_the_crops_that_match_in_catalog_order_a_page_at_a_time():
    rows = [_row(i, "v1", i % 2) for i in range(6)] + [_row(10 + i, "v2", 0) for i in range(3)]
    labels = {rows[0]["crop_id"]: ["Lying"], rows[2]["crop_id"]: ["Standing", "Lying"]}
    found = list_crops(rows, CropQuery(video="v1", track=0), labels)
    assert [r["crop_id"] for r in found.rows] == [rows[i]["crop_id"] for i in (0, 2, 4)] and found.total == 3
    assert found.rows[1]["labels"] == ["Standing", "Lying"] and found.rows[0]["href"] == f"/crops/{rows[0]['crop_id']}"
    assert [r["crop_id"] for r in list_crops(rows, CropQuery(label="Lying"), labels).rows] == [rows[0]["crop_id"], rows[2]["crop_id"]]
    assert list_crops(rows, CropQuery(labelled=False), labels).total == 7
    members = {rows[7]["crop_id"]: ["test.csv"], rows[1]["crop_id"]: ["train.csv", "pretrain_train.csv"]}
    in_build = list_crops(rows, CropQuery(dataset="ab12"), labels, members)
    assert [(r["crop_id"], r["lists"]) for r in in_build.rows] == [(rows[1]["crop_id"], ["train.csv", "pretrain_train.csv"]), (rows[7]["crop_id"], ["test.csv"])]
    page = list_crops(rows, CropQuery(offset=4, limit=3), labels)
    assert [r["crop_id"] for r in page.rows] == [rows[i]["crop_id"] for i in (4, 5, 6)] and page.total == len(rows)


def test_the_dagster_preview_is_capped_and_counts_the_rest():
    table = pa.Table.from_pylist([_row(i) for i in range(7)])
    rows, rest = preview_rows(table, LINKS, limit=5)
    assert len(rows) == 5 and rest == 2
    first = rows[1]
    assert first == {"crop_id": table["crop_id"][1].as_py(), "track": 0, "clip": "c00001", "object": 0, "source_frames": "18–36 step 2",
                     "present": "9/10 (0.90)", "page": f"http://pages.example:8765/crops/{table['crop_id'][1].as_py()}"}
    assert preview_rows(table, LINKS, limit=50)[1] == 0
    assert preview_rows(table, Links(None, None), limit=1)[0][0]["page"] == ""
