"""The crop pages, served by the real labelling server over a site built the way a user
builds one (two farms processed, catalogued, labelled, a dataset built; ``crop_site``),
with tokens required (the HTTP checks sign in as a reviewer with a Bearer token; the pages
open without a sign-in on 127.0.0.1 is ``test_sign_in``'s).

Over HTTP: every provenance row shows the crops manifest's value, the labels and their
history are the store's, the dataset build holding the crop is named by the sha256 of its
``dataset.json``, the list filters, ids and paths (a dataset list's) lead to the crop, the
video answers range requests, the context picture is the clip frame with the window drawn,
and a missing crop is a 404 page that says so.

In Chromium, against the real Dagster webserver over the site's instance: from a row of the
dataset's ``test.csv`` to the crop page (``vitcow provenance`` prints its address; the
browser signs in there once), the video plays, the rows match the manifest; from there to
the Dagster run and the partition that made it, whose crops preview names the page, and back. Screenshots go to
``$VITCOW_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets.lineage.records import crop_records
from vitcow_assets.lineage.story import value_text
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.context import context_view
from vitcow_assets_tests.helpers import run_cli
from vitcow_assets_tests.labelling.crop_site import build_site, dagster_webserver
from vitcow_testbed.servers import label_server
from vitcow_assets_tests.labelling.test_browser import ARTIFACTS, browser, wait  # noqa: F401  (the Chromium fixture)

#: the manifest columns a crop page shows as they are
SHOWN = ("crop_path", "video_id", "source_path", "source_uri", "source_sha256", "farm", "camera", "recorded_at", "clip_id", "object_id",
         "part", "track_id", "source_frame_start", "source_frame_end", "frame_step", "frames", "frames_present", "segmenter", "prompt",
         "code_version", "run_id", "crop_size", "margin", "mask_background")


#: the Bearer header every HTTP check sends (a reviewer's token, made by the ``site`` fixture)
AUTH: dict[str, str] = {}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    built = build_site(tmp_path_factory.mktemp("site"))
    with LabelStore(default_url(built.home)) as store:
        tokens = {"researcher": store.create_token("researcher", "reviewer"), "bob": store.create_token("bob")}
    AUTH["Authorization"] = f"Bearer {tokens['researcher']}"
    with label_server(built.home, None, "--require-tokens", port=built.pages_port, env=built.env) as (url, _):
        yield {"site": built, "url": url, "root": StorageRoot(built.home), "tokens": tokens,
               "catalog": pq.read_table(built.home / "catalog" / "crops.parquet").to_pylist()}


def get(url: str, headers: dict | None = None) -> tuple[int, str, dict]:
    """(status, body, headers) of a GET signed in (``AUTH``, or ``headers``), following redirects; error statuses included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH if headers is None else headers), timeout=30) as reply:
            return reply.status, reply.read().decode(errors="replace"), dict(reply.headers) | {"url": reply.url}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers) | {"url": url}


class _Rows(HTMLParser):
    """``data-field`` -> ``data-value`` of a crop page's provenance rows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows, self._field = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-field" in attrs:
            self._field = attrs["data-field"]
        elif tag == "span" and "data-value" in attrs and self._field:
            self.rows[self._field], self._field = attrs["data-value"], None


def page_rows(html: str) -> dict:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def manifest_row(site, crop: dict) -> dict:
    return crop_records(site["root"], crop).manifest


def test_the_page_shows_the_manifest_the_labels_and_the_build(site):
    built = site["site"]
    crop = next(c for c in site["catalog"] if c["farm"] == "FARM_B")  # bob relabelled it; it is in the test split
    status, html, _ = get(f"{site['url']}/crops/{crop['crop_id']}")
    assert status == 200
    rows, manifest = page_rows(html), manifest_row(site, crop)
    assert {name: rows[name] for name in SHOWN} == {name: value_text(manifest[name]) for name in SHOWN}
    assert rows["crop_id"] == crop["crop_id"] and rows["model_checkpoint_sha256"] == ""  # motion: no weights
    with LabelStore(default_url(built.home)) as store:
        history = store.history(crop["crop_id"]).to_pylist()
    story = json.loads(get(f"{site['url']}/crops/{crop['crop_id']}/story.json")[1])
    assert [(e["kind"], e["annotator"], e["label"]) for e in story["labels"]["history"]] == [(e["kind"], e["annotator"], e["label"] or "") for e in history]
    assert [e["kind"] for e in history] == ["label", "label", "undo", "label"]
    assert sorted((c["annotator"], c["label"]) for c in story["labels"]["current"]) == [("alice", "Standing"), ("bob", "Standing")]
    fingerprint = hashlib.sha256((built.dataset / "dataset.json").read_bytes()).hexdigest()[:16]
    (build,) = story["datasets"]
    assert (build["fingerprint"], build["split"], build["current"]) == (fingerprint, "test", True) and "test.csv" in build["lists"]
    assert f'href="/crops?dataset={fingerprint}"' in html
    dagster = f"http://127.0.0.1:{built.dagster_port}"
    assert f'href="{dagster}/runs/{built.runs[crop["video_id"]]}"' in html
    for asset in ("raw_video", "clips", "object_masks", "object_crops"):
        assert f'href="{dagster}/assets/{asset}?view=partitions&amp;partition={crop["video_id"]}"' in html


def test_an_annotator_sees_their_own_labels_and_no_dataset_class_and_nobody_signed_in_sees_nothing(site):
    crop = next(c for c in site["catalog"] if c["farm"] == "FARM_B")  # alice and bob labelled it; in the test split
    bob = {"Authorization": f"Bearer {site['tokens']['bob']}"}
    story = json.loads(get(f"{site['url']}/crops/{crop['crop_id']}/story.json", bob)[1])
    assert [(c["annotator"], c["label"]) for c in story["labels"]["current"]] == [("bob", "Standing")]
    assert {e["annotator"] for e in story["labels"]["history"]} == {"bob"}
    (build,) = story["datasets"]
    assert build["split"] == "test" and build["class_name"] is None  # the class says what the others labelled
    full = json.loads(get(f"{site['url']}/crops/{crop['crop_id']}/story.json")[1])
    assert full["datasets"][0]["class_name"] == "Standing"
    trimmed = site["catalog"][0]["crop_id"]  # alice's segment label made a trimmed copy: not bob's to see
    assert "trimmed copy" in get(f"{site['url']}/crops/{trimmed}")[1] and "trimmed copy" not in get(f"{site['url']}/crops/{trimmed}", bob)[1]
    status, html, _ = get(f"{site['url']}/crops/{crop['crop_id']}", {})
    assert status == 401 and crop["crop_id"] not in html.replace(f'value="/crops/{crop["crop_id"]}"', "") and "alice" not in html


def test_the_catalog_labels_and_dataset_assets_link_the_crop_list(site):
    built = site["site"]
    fingerprint = hashlib.sha256((built.dataset / "dataset.json").read_bytes()).hexdigest()[:16]
    links = {name: meta["crop_pages"].value for name, meta in built.metadata.items() if "crop_pages" in meta}
    assert links == {"crop_catalog": f"{site['url']}/crops", "behaviour_labels": f"{site['url']}/crops?labelled=1",
                     "behaviour_splits": f"{site['url']}/crops?labelled=1", "dataset_export": f"{site['url']}/crops?dataset={fingerprint}"}
    assert built.metadata["dataset_export"]["dataset_fingerprint"].value == fingerprint
    status, html, _ = get(links["dataset_export"])
    listed = sorted(re.findall(r'<td><a href="/crops/([0-9a-f]{20})">', html))
    assert status == 200 and listed == sorted({r["crop_id"] for r in pq.read_table(built.dataset / "splits.parquet").to_pylist()}
                                              | {r["crop_id"] for r in pq.read_table(built.dataset / "pretrain.parquet").to_pylist()})


def test_a_missing_crop_is_a_404_page_that_says_what_was_looked_for(site):
    status, html, headers = get(f"{site['url']}/crops/0123456789abcdef0123")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert "No crop 0123456789abcdef0123" in html and str(site["site"].home / "catalog" / "crops.parquet") in html
    assert f"holds {len(site['catalog'])} crops" in html
    assert get(f"{site['url']}/crops/0123456789abcdef0123/video")[0] == 404
    assert get(f"{site['url']}/crops?path=/nowhere/obj0000.mp4")[0] == 404


def test_ids_prefixes_and_dataset_paths_lead_to_the_crop(site):
    built, crop = site["site"], site["catalog"][3]
    page = f"{site['url']}/crops/{crop['crop_id']}"
    assert get(f"{site['url']}/crops/{crop['crop_id'][:9]}")[2]["url"] == page
    assert get(f"{site['url']}/crops?id={crop['crop_id'][:9]}")[2]["url"] == page
    listed = (built.dataset / "test.csv").read_text().split()[0]
    ids = {r["crop_path"]: r["crop_id"] for r in pq.read_table(built.dataset / "splits.parquet").to_pylist()}
    status, _, headers = get(f"{site['url']}/crops?path={urllib.request.quote(listed)}")
    assert status == 200 and headers["url"] == f"{site['url']}/crops/{ids[listed]}"
    trimmed = next(p for name in ("train", "val") for p in (built.dataset / f"{name}.csv").read_text().split()[::2] if "/labels/trimmed/" in p)
    assert ids[trimmed] == site["catalog"][0]["crop_id"]  # the segment label's crop
    assert get(f"{site['url']}/crops?path={urllib.request.quote(trimmed)}")[2]["url"] == f"{site['url']}/crops/{ids[trimmed]}"


def test_the_list_filters_by_video_track_label_and_dataset(site):
    built, catalog = site["site"], site["catalog"]
    crop = catalog[0]
    html = get(f"{site['url']}/crops?video={crop['video_id']}&track={crop['track_id']}")[1]
    want = [c["crop_id"] for c in catalog if (c["video_id"], c["track_id"]) == (crop["video_id"], crop["track_id"])]
    assert re.findall(r'<td><a href="/crops/([0-9a-f]{20})">', html) == want
    assert f"1–{len(want)} of {len(want)} crops" in html
    assert html.count(f'href="http://127.0.0.1:{built.dagster_port}/runs/{built.runs[crop["video_id"]]}"') == len(want)
    fingerprint = hashlib.sha256((built.dataset / "dataset.json").read_bytes()).hexdigest()[:16]
    test_ids = sorted(r["crop_id"] for r in pq.read_table(built.dataset / "splits.parquet").to_pylist() if r["split"] == "test")
    html = get(f"{site['url']}/crops?dataset={fingerprint[:8]}&split=test")[1]
    assert sorted(re.findall(r'<td><a href="/crops/([0-9a-f]{20})">', html)) == test_ids
    walking = get(f"{site['url']}/crops?label=Walking")[1]  # undone: nobody's current label
    assert "no crop matches these filters" in walking
    assert get(f"{site['url']}/crops?track=three")[0] == 400
    assert get(f"{site['url']}/crops?dataset=ffffffffffff")[0] == 400


def test_the_video_answers_ranges_and_the_context_picture_is_the_clip_frame_with_the_window(site):
    crop = site["catalog"][0]
    request = urllib.request.Request(f"{site['url']}/crops/{crop['crop_id']}/video", headers={"Range": "bytes=0-99", **AUTH})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 206 and len(reply.read()) == 100
    records = crop_records(site["root"], crop)
    with urllib.request.urlopen(urllib.request.Request(f"{site['url']}/crops/{crop['crop_id']}/context.jpg?frame=4", headers=AUTH), timeout=30) as reply:
        served = cv2.imdecode(np.frombuffer(reply.read(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    expected = context_view(records.clip["clip_path"], 4, records.manifest["window_xyxy"][4])
    assert served.shape == expected.shape and np.abs(served.astype(int) - expected).mean() < 3  # JPEG's loss only


def _playing(driver) -> None:
    wait(driver, lambda d: d.execute_script("const v = document.getElementById('crop-video'); return v.readyState === 4 && v.currentTime > 0"), "crop video playing")
    t0 = driver.execute_script("return document.getElementById('crop-video').currentTime")
    wait(driver, lambda d: d.execute_script("return document.getElementById('crop-video').currentTime") != t0, "currentTime advances")


def test_from_a_test_csv_row_to_the_crop_page_to_dagster_and_back(site, browser):
    from selenium.webdriver.common.keys import Keys

    built, driver = site["site"], browser
    listed = (built.dataset / "test.csv").read_text().split()[0]
    found = run_cli(["provenance", listed], built.home, {k: built.env[k] for k in ("VITCOW_PAGES_URL", "VITCOW_DAGSTER_URL")})
    assert found.returncode == 0, found.stderr
    prov = json.loads(found.stdout)
    crop_id, page = prov["crop_id"], prov["crop_page"]
    assert page == f"{site['url']}/crops/{crop_id}"

    driver.get(page)  # tokens are required: the page asks this browser to sign in, once
    driver.find_element("id", "token-input").send_keys(site["tokens"]["researcher"], Keys.ENTER)
    wait(driver, lambda d: d.current_url == page and d.find_elements("id", "crop-video"), "the crop page after signing in")
    _playing(driver)
    wait(driver, lambda d: d.execute_script("const i = document.getElementById('context'); return i.complete && i.naturalWidth > 0"), "context picture")
    rows = {tr.get_attribute("data-field"): tr.find_element("css selector", "span.v").get_attribute("data-value")
            for tr in driver.find_elements("css selector", "tr[data-field]")}
    manifest = manifest_row(site, next(c for c in site["catalog"] if c["crop_id"] == crop_id))
    assert manifest["crop_path"] == prov["crop_path"] == listed
    assert {name: rows[name] for name in SHOWN} == {name: value_text(manifest[name]) for name in SHOWN}
    assert "test" in driver.find_element("id", "datasets").text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "crop_page.png"))
    driver.execute_script("document.getElementById('track').scrollIntoView()")
    driver.save_screenshot(str(ARTIFACTS / "crop_page_labels_datasets.png"))

    with dagster_webserver(built):
        driver.find_element("link text", f"object_crops · {prov['video_id']}").click()
        wait(driver, lambda d: crop_id in d.find_element("tag name", "body").text, "the crops preview in the Dagster UI", timeout=120)
        cell = driver.find_element("xpath", f"//td[normalize-space()='{crop_id}']/ancestor::tr[1]/td[last()]")
        assert cell.text.strip() == page  # the preview's page column names the crop page
        list_link = driver.find_element("css selector", f"a[href='{site['url']}/crops?video={prov['video_id']}']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
        time.sleep(1.5)  # nothing to wait for but the eye: the UI would show its first-visit dialog after 1 s (skipped)
        driver.save_screenshot(str(ARTIFACTS / "dagster_partition.png"))
        driver.get(list_link.get_attribute("href"))  # the UI opens it in a new tab
        driver.find_element("link text", crop_id).click()
        wait(driver, lambda d: d.current_url == page, "back on the crop page from the Dagster UI")
        _playing(driver)

        for asset in ("object_masks", "clips", "raw_video"):  # the other partitions it links: each shows this run's materialization
            driver.get(page)
            driver.find_element("link text", f"{asset} · {prov['video_id']}").click()
            # the partition's page names the run of its latest materialization once its data has come (it shows "None" until then)
            wait(driver, lambda d: prov["run_id"][:8] in d.find_element("tag name", "body").text, f"{asset}'s partition on the crop's run", timeout=60)
            assert f"Assets\n{asset}" in driver.find_element("tag name", "body").text and f"partition={prov['video_id']}" in driver.current_url
        driver.get(page)
        driver.find_element("link text", prov["run_id"]).click()
        wait(driver, lambda d: "RUN_SUCCESS" in d.find_element("tag name", "body").text, "the run in the Dagster UI", timeout=60)
        assert driver.current_url.endswith(f"/runs/{prov['run_id']}") and prov["run_id"][:8] in driver.find_element("tag name", "body").text
        assert f"partition: {prov['video_id']}" in driver.find_element("tag name", "body").text
        time.sleep(1.5)
        assert not driver.find_elements("xpath", "//*[normalize-space()='Join the Dagster community']")
        driver.save_screenshot(str(ARTIFACTS / "dagster_run.png"))

    driver.get(f"{site['url']}/crops/{crop_id[:-1]}0" if not crop_id.endswith("0") else f"{site['url']}/crops/{crop_id[:-1]}1")
    assert "No crop" in driver.find_element("tag name", "h1").text
    driver.save_screenshot(str(ARTIFACTS / "crop_page_404.png"))
