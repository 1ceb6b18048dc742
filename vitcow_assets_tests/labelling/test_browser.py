"""The labelling page in a real headless browser (Debian's Chromium through its
chromedriver; no browser is downloaded): the crop plays, a label key, undo, another label,
a trimmed segment; the database and the behaviour_labels snapshot hold exactly that. Then,
on a server that requires tokens: signing in, labelling (unsure), a 403 shown for writing
as another annotator, the reviewer deciding a conflict (and undoing it); playback speed,
the context view following the frame, and a key not in the legend. The screenshots are
kept in ``$VITCOW_TEST_ARTIFACTS`` (default ``test-artifacts/`` at the repository root)."""

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
    with LabelStore(default_url(home)) as store:
        tokens = {name: store.create_token(name, role) for name, role in (("ann", "annotator"), ("rev", "reviewer"))}
    with label_server(home) as (url, _), label_server(home, None, "--require-tokens") as (signed_url, _):
        yield {"home": home, "url": url, "catalog": catalog, "signed_url": signed_url, "tokens": tokens}


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


# -- signing in, reviewing, speed and context ------------------------------------------------


def text_of(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def visible(driver, element_id: str) -> bool:
    return driver.execute_script(f"return !document.getElementById('{element_id}').hidden")


def sign_in(driver, token: str) -> None:
    from selenium.webdriver.common.keys import Keys

    wait(driver, lambda d: visible(d, "signin"), "the sign-in card")
    field = driver.find_element("id", "token-input")
    field.send_keys(token, Keys.ENTER)


def current_of(home: Path, who: str) -> dict:
    with LabelStore(default_url(home)) as store:
        return {r["crop_id"]: (r["label"], r["unsure"], r["source"]) for r in store.current_labels(who).to_pylist()}


def test_signing_in_labelling_unsure_and_a_403_for_another_annotator(browser, site):
    driver, home = browser, site["home"]
    driver.get(f"{site['signed_url']}/")
    wait(driver, lambda d: visible(d, "signin"), "the sign-in card")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "labelling_sign_in.png"))
    sign_in(driver, site["tokens"]["ann"][:-1] + "x")  # mistyped
    wait(driver, lambda d: "not valid" in text_of(d, "signin-status"), "the bad token refused")
    sign_in(driver, site["tokens"]["ann"])
    crop = wait(driver, shown, "ann's queue after signing in")
    assert "ann" in text_of(driver, "who") and "annotator" in text_of(driver, "who")
    press(driver, "?", "f")  # unsure, then Feeding
    wait(driver, lambda d: shown(d) not in (None, crop), "next crop after labelling")
    assert current_of(home, "ann") == {crop: ("Feeding", True, "page")}
    driver.refresh()  # the browser stays signed in: its session cookie
    wait(driver, shown, "still signed in after a reload")
    assert not visible(driver, "signin")
    # the page keeps no token, and no script can read the session cookie (HttpOnly)
    kept = driver.execute_script("return [document.cookie, JSON.stringify(sessionStorage), JSON.stringify(localStorage)]")
    assert kept == ["", "{}", "{}"] and all(site["tokens"]["ann"] not in k for k in kept)

    driver.get(f"{site['signed_url']}/?annotator=bob")  # ann's token, bob's queue
    other = wait(driver, shown, "bob's queue")
    press(driver, "s")
    wait(driver, lambda d: "cannot write labels of bob" in text_of(d, "status"), "the 403 shown")
    assert driver.find_element("id", "status").get_attribute("class") == "status error"
    driver.save_screenshot(str(ARTIFACTS / "labelling_403.png"))
    assert current_of(home, "bob") == {} and shown(driver) == other  # nothing stored, the crop stays


def test_the_reviewer_decides_a_conflict_and_undoes_it(browser, site):
    from vitcow_assets.datasets.selection import resolve_labels

    driver, home = browser, site["home"]
    with LabelStore(default_url(home)) as store:
        target = next(c for c in site["catalog"]["crop_id"].to_pylist() if c not in store.current_labels()["crop_id"].to_pylist())
        store.add_label(target, "ann", "Lying", source="api")
        store.add_label(target, "bob", "Standing", 2, 6, source="api", unsure=True)
    driver.get(f"{site['signed_url']}/")
    wait(driver, lambda d: visible(d, "sign-out"), "signed in from the earlier test")
    driver.find_element("id", "sign-out").click()
    sign_in(driver, site["tokens"]["rev"])
    wait(driver, lambda d: visible(d, "review-link"), "the reviewer's link")
    driver.find_element("id", "review-link").click()
    wait(driver, lambda d: shown(d) == target, "the conflict playing")
    listed = text_of(driver, "review-labels")
    assert "ann: Lying (Lying)" in listed and "bob: Standing (Standing) frames 2–6" in listed and "unsure" in listed
    assert "1 of 1 open" in text_of(driver, "review-position")
    wait(driver, lambda d: d.execute_script("return document.getElementById('video').currentTime > 1.1"), "a frame with the animal")
    driver.save_screenshot(str(ARTIFACTS / "labelling_review.png"))
    press(driver, "l")  # decide: Lying
    wait(driver, lambda d: visible(d, "review-done"), "no open conflicts left")
    with LabelStore(default_url(home)) as store:
        decided = store.current_decisions().to_pylist()
        assert [(d["crop_id"], d["label"], d["reviewer"], d["source"]) for d in decided] == [(target, "Lying", "rev", "page")]
        snapshot = label_snapshot(store.current_labels(), site["catalog"], load_taxonomy(), "/t", store.current_decisions(), store.gold_labels())
    used = resolve_labels(snapshot.labels, site["catalog"], load_taxonomy()).crops
    assert [(r["class_name"], r["label_basis"]) for r in used.to_pylist() if r["crop_id"] == target] == [("Lying", "decided")]
    press(driver, "z")  # undo: the conflict is open again and shown
    wait(driver, lambda d: shown(d) == target, "the conflict back")
    with LabelStore(default_url(home)) as store:
        assert store.current_decisions().num_rows == 0


def _sample_rate(driver, wall_ms: int = 600) -> float:
    """Media seconds per wall second while playing (retries a sample the loop wrapped)."""
    for _ in range(6):
        t0, w0, t1, w1 = driver.execute_async_script(
            "const done = arguments[arguments.length - 1]; const v = document.getElementById('video');"
            "const a = [v.currentTime, performance.now()];"
            f"setTimeout(() => done([...a, v.currentTime, performance.now()]), {wall_ms});"
        )
        if t1 > t0:
            return (t1 - t0) / ((w1 - w0) / 1000)
    raise AssertionError("the video kept wrapping round")


def _pixel(driver, x: int, y: int) -> list[int]:
    return driver.execute_script(
        "const img = document.getElementById('context'); const c = document.createElement('canvas');"
        "c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);"
        "return Array.from(g.getImageData(arguments[0], arguments[1], 1, 1).data).slice(0, 3);", x, y)


def test_playback_speed_context_view_and_a_key_not_in_the_legend(browser, site):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from selenium.webdriver.common.keys import Keys

    from vitcow_assets.labelling.queues import ASSIGNMENT_SCHEMA
    from vitcow_assets.media.context import MAX_SIDE, WINDOW_COLOUR

    driver = browser
    with LabelStore(default_url(site["home"])) as store:  # every crop has a label by now: carol's queue is assigned
        first = site["catalog"].to_pylist()[0]
        store.set_assignments(pa.Table.from_pylist([{"annotator": "carol", "crop_id": first["crop_id"], "farm": first["farm"], "position": 0}], schema=ASSIGNMENT_SCHEMA))
    driver.get(f"{site['url']}/?annotator=carol")
    crop = wait(driver, shown, "carol's queue")
    wait(driver, lambda d: d.execute_script("const v = document.getElementById('video'); return v.readyState === 4 && !v.paused"), "playing")
    normal = _sample_rate(driver)
    press(driver, "-", "-")
    assert text_of(driver, "speed") == "0.5×" and driver.execute_script("return document.getElementById('video').playbackRate") == 0.5
    slow = _sample_rate(driver)
    press(driver, "=", "=", "+")
    assert text_of(driver, "speed") == "1.5×"
    press(driver, *["="] * 3)
    assert text_of(driver, "speed") == "2×"  # at most 2×
    fast = _sample_rate(driver)
    assert 0.8 < normal < 1.25 and 0.35 < slow < 0.65 and 1.6 < fast < 2.5, (normal, slow, fast)
    press(driver, *["-"] * 9)
    assert text_of(driver, "speed") == "0.25×"  # at least 0.25×

    # the context view follows the frame: while playing, and frame by frame when paused
    seen = set()
    for _ in range(60):
        time.sleep(0.05)
        seen.add(driver.execute_script("return document.getElementById('context').dataset.frame"))
    assert len(seen - {None}) >= 2, seen
    press(driver, " ")
    press(driver, *[Keys.ARROW_LEFT] * 12, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    wait(driver, lambda d: d.execute_script("const i = document.getElementById('context'); return i.dataset.frame === '3' && i.complete && i.naturalWidth > 0"), "context at frame 3")
    row = next(r for r in site["catalog"].to_pylist() if r["crop_id"] == crop)
    manifest = pq.read_table(Path(row["crop_path"]).parents[1] / "crops.parquet").to_pylist()
    x1, y1, x2, y2 = next(m for m in manifest if m["crop_path"] == row["crop_path"])["window_xyxy"][3]
    # the clip's whole 160×120 view, grown where the window reaches past it (media.context)
    left, top = max(0, -x1), max(0, -y1)
    canvas = (left + max(160, x2), top + max(120, y2))
    scale = min(1.0, MAX_SIDE / max(canvas))
    width, height = driver.execute_script("const i = document.getElementById('context'); return [i.naturalWidth, i.naturalHeight]")
    assert (width, height) == tuple(round(v * scale) for v in canvas) and width >= 160
    x1, y1, x2, y2 = (round((v + o) * scale) for v, o in ((x1, left), (y1, top), (x2, left), (y2, top)))
    edges = (((x1 + x2) // 2, y1 + 1), ((x1 + x2) // 2, y2 - 2), (x1 + 1, (y1 + y2) // 2), (x2 - 2, (y1 + y2) // 2))
    assert all(max(abs(a - b) for a, b in zip(_pixel(driver, x, y), WINDOW_COLOUR)) < 60 for x, y in edges), (edges, [_pixel(driver, x, y) for x, y in edges])
    assert "frame 3" in text_of(driver, "context-info")
    driver.save_screenshot(str(ARTIFACTS / "labelling_context_speed.png"))

    press(driver, "p")  # a message on screen (no segment set yet) ...
    assert "Set a start or an end first" in text_of(driver, "status")
    press(driver, "q")  # ... is replaced: q is in no legend
    assert text_of(driver, "status") == "Key 'q' is not in the legend: press a label's key or one of the controls."
    assert shown(driver) == crop and current_of(site["home"], "carol") == {}
