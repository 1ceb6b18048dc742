"""The labelling page in a real headless browser (Debian's Chromium through its
chromedriver; no browser is downloaded): the crop plays, a label key, undo, another label,
a trimmed segment; the database and the behaviour_labels snapshot hold exactly that. The
screenshot is kept in ``$VITCOW_TEST_ARTIFACTS`` (default ``test-artifacts/`` at the
repository root)."""

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from vitcow_assets.labelling.snapshot import label_snapshot, trim_plan
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets.labelling.taxonomy_file import load_taxonomy
from vitcow_assets.labelling.trimming import render_trims
from vitcow_assets.media.video import probe_video
from vitcow_assets_tests.labelling.crops import pipeline_catalog
from vitcow_testbed.servers import label_server
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, MovingBox, write_video

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--mute-audio", "--window-size=1360,1000",
]
ARTIFACTS = Path(os.environ.get("VITCOW_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    video = tmp_path_factory.mktemp("in") / "FARM_A" / "D01" / "202502052200_D01.mp4"
    video.parent.mkdir(parents=True)
    write_video(video, frames=60, width=160, height=120, objects=tuple(MovingBox(o.start, o.velocity, (20, 16), o.colour) for o in DEFAULT_OBJECTS))
    with dg.instance_for_test() as instance:
        _, catalog = pipeline_catalog(video, home, instance)
    with label_server(home) as (url, _):
        yield {"home": home, "url": url, "catalog": catalog}


def shown(driver) -> str | None:
    """The crop the page shows, once it is ready for the next key (no request under way)."""
    return driver.execute_script("return document.body.dataset.busy === '1' ? null : document.getElementById('work').dataset.cropId || null")


def press(driver, *keys) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    for key in keys:
        ActionChains(driver).send_keys(key).perform()


def wait(driver, condition, what: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def labels_of(home: Path) -> tuple[dict, list]:
    with LabelStore(default_url(home)) as store:
        current = {r["crop_id"]: (r["label"], r["start_frame"], r["end_frame"]) for r in store.current_labels("alice").to_pylist()}
        history = [(e["kind"], e["crop_id"], e["label"], e["source"]) for e in store.history(annotator="alice").to_pylist()]
    return current, history


def test_label_undo_relabel_and_trim_in_the_browser(browser, site):
    from selenium.webdriver.common.keys import Keys

    home, driver = site["home"], browser
    driver.get(f"{site['url']}/?annotator=alice")
    # the crop plays: enough data to play on, and the clock moves
    wait(driver, lambda d: d.execute_script("const v = document.getElementById('video'); return v.readyState === 4 && v.currentTime > 0"), "video playing")
    t0 = driver.execute_script("return document.getElementById('video').currentTime")
    wait(driver, lambda d: d.execute_script("return document.getElementById('video').currentTime") != t0, "currentTime advances")
    taxonomy = load_taxonomy()
    assert len(driver.find_elements("css selector", "button.label")) == len(taxonomy.labels)
    assert "FARM_A" in driver.find_element("id", "meta").text and "D01" in driver.find_element("id", "meta").text

    a = wait(driver, shown, "the page ready for keys")
    press(driver, "s")  # Standing
    wait(driver, lambda d: shown(d) not in (None, a), "next crop after labelling")
    assert labels_of(home)[0] == {a: ("Standing", None, None)}
    press(driver, "z")  # undo: the page goes back to the crop
    wait(driver, lambda d: shown(d) == a, "the undone crop again")
    assert labels_of(home)[0] == {}
    press(driver, "l")  # Lying
    wait(driver, lambda d: shown(d) not in (None, a), "next crop after the new label")
    b = shown(driver)

    # trim: pause, go to frame 2, set start, frame 5, set end, preview the loop
    press(driver, " ")
    wait(driver, lambda d: d.execute_script("return document.getElementById('video').paused"), "paused")
    press(driver, *[Keys.ARROW_LEFT] * 12, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, "[", *[Keys.ARROW_RIGHT] * 3, "]")
    assert driver.find_element("id", "trim-info").text.startswith("frames 2–5")
    press(driver, "p")
    frames = []
    for _ in range(40):
        time.sleep(0.05)
        frames.append(int(driver.find_element("id", "frame").text.split()[1]))
    inside = sum(2 <= f <= 5 for f in frames)
    assert inside >= 0.9 * len(frames) and {2, 5} <= set(frames), frames  # loops over the segment
    assert not driver.execute_script("return document.getElementById('video').paused")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "labelling_page.png"))
    press(driver, "u")  # Standing_up, a segment label
    wait(driver, lambda d: shown(d) not in (None, b), "next crop after the segment label")

    current, history = labels_of(home)
    assert current == {a: ("Lying", None, None), b: ("Standing_up", 2, 5)}, (a, b, history)
    assert history == [("label", a, "Standing", "page"), ("undo", a, None, "page"), ("label", a, "Lying", "page"), ("label", b, "Standing_up", "page")]
    with LabelStore(default_url(home)) as store:
        snap = label_snapshot(store.current_labels(), site["catalog"], taxonomy, str(home / "labels" / "trimmed"))
    rows = {r["crop_id"]: r for r in snap.labels.to_pylist()}
    assert set(rows) == {a, b} and snap.orphans.num_rows == 0
    crops = {r["crop_id"]: r for r in site["catalog"].to_pylist()}
    for crop_id, row in rows.items():
        assert (row["source_sha256"], row["crop_path"], row["frames"]) == (crops[crop_id]["source_sha256"], crops[crop_id]["crop_path"], crops[crop_id]["frames"])
    assert rows[a]["trimmed_path"] is None
    trimmed = render_trims(trim_plan(snap.labels))
    assert trimmed["crop_id"].to_pylist() == [b] and probe_video(rows[b]["trimmed_path"]).frame_count == 4
