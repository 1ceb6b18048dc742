"""The reviewer's API and the context view over real HTTP: conflicts listed with each
annotator's label and segment, a decision takes a crop off the open list and an undo puts
it back, gold crops are never conflicts; the context image is the clip's frame with the
crop's window drawn (``media.context``'s drawing). ``ContextFrames`` (the clip cache) directly."""

import cv2
import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from vitcow_assets.labelling.context_frames import ContextError, ContextFrames
from vitcow_assets.media.context import WINDOW_COLOUR
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_testbed.synthetic_catalog import CLIP_H, CLIP_W, clip_level, synthetic_catalog, window
from vitcow_testbed.servers import label_server


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    synthetic_catalog(home, videos=(("va", "FARM_A"),), clips=3, objects=2, frames=8)
    with LabelStore(default_url(home)) as store:
        store.create_token("rev", "reviewer")
    return home


@pytest.fixture(scope="module")
def catalog(home):
    return pq.read_table(home / "catalog" / "crops.parquet").to_pylist()


@pytest.fixture(scope="module")
def server(home):
    with label_server(home) as (url, _):
        yield url


def label(http, annotator, crop_id, name, **extra):
    r = http.post("/api/labels", json={"annotator": annotator, "crop_id": crop_id, "label": name, **extra})
    assert r.status_code == 201, r.text


def test_conflicts_decisions_and_undo(server, home, catalog):
    c = [r["crop_id"] for r in catalog]
    with httpx.Client(base_url=server) as http:
        label(http, "ann", c[0], "Lying")
        label(http, "bob", c[0], "Standing", unsure=True)
        label(http, "ann", c[1], "Mounting")
        label(http, "bob", c[1], "Grooming-standing")  # both Other: no conflict
        label(http, "ann", c[2], "Feeding")
        label(http, "bob", c[2], "Delete")
        label(http, "ann", c[3], "Walking", start_frame=1, end_frame=5)
        label(http, "bob", c[3], "Lying")
        with LabelStore(default_url(home)) as store:
            store.add_gold([{"crop_id": c[3], "label": "Walking"}], "gold.csv")  # a gold crop is not a conflict
        listed = http.get("/api/conflicts").json()
        assert [x["crop_id"] for x in listed["conflicts"]] == [c[0], c[2]] and (listed["open"], listed["decided"]) == (2, 0)
        first = listed["conflicts"][0]
        assert {e["annotator"]: (e["label"], e["unsure"]) for e in first["labels"]} == {"ann": ("Lying", False), "bob": ("Standing", True)}
        assert first["classes"] == {"ann": "Lying", "bob": "Standing"} and first["decision"] is None
        assert "gold" not in http.get(f"/api/crops/{c[3]}", params={"annotator": "ann"}).text.lower()  # gold is unannounced

        r = http.post("/api/adjudications", json={"crop_id": c[0], "label": "Standing", "reviewer": "rev", "source": "page"})
        assert r.status_code == 201 and r.json()["decision"]["label"] == "Standing" and r.json()["decision"]["decided_at"].endswith("Z")
        assert [x["crop_id"] for x in http.get("/api/conflicts").json()["conflicts"]] == [c[2]]
        decided = http.get("/api/conflicts", params={"decided": "1"}).json()
        assert decided["decided"] == 1 and decided["conflicts"][0]["decision"]["reviewer"] == "rev"
        assert http.get(f"/api/crops/{c[0]}").json()["decision"]["label"] == "Standing"

        undo = http.post("/api/adjudications/undo", json={"crop_id": c[0], "reviewer": "rev"}).json()
        assert undo["undone"]["label"] == "Standing" and undo["undo"]["undoes"] == undo["undone"]["event_id"]
        assert [x["crop_id"] for x in http.get("/api/conflicts").json()["conflicts"]] == [c[0], c[2]]  # the conflict is back
        assert http.post("/api/adjudications/undo", json={"crop_id": c[0], "reviewer": "rev"}).status_code == 409
        assert [e["kind"] for e in http.get("/api/adjudications", params={"crop_id": c[0]}).json()["events"]] == ["decision", "undo"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"reviewer": "rev", "label": "Lying"}, 400, "crop_id: missing"),
        ({"reviewer": "rev", "crop_id": "CROP"}, 400, "label: missing"),
        ({"reviewer": "rev", "crop_id": "CROP", "label": "Sleeping"}, 400, "unknown label 'Sleeping'"),
        ({"reviewer": "rev", "crop_id": "CROP", "label": "Walking", "start_frame": 3, "end_frame": 8}, 400, "the crop has frames 0..7"),
        ({"reviewer": "rev", "crop_id": "nope", "label": "Lying"}, 404, "unknown crop 'nope'"),
        ({"crop_id": "CROP", "label": "Lying"}, 400, "reviewer: give a name"),
    ],
)
def test_bad_decisions_are_refused_with_one_line(server, catalog, body, status, message):
    body = {k: (catalog[5]["crop_id"] if v == "CROP" else v) for k, v in body.items()}
    r = httpx.post(f"{server}/api/adjudications", json=body)
    assert r.status_code == status and message in r.json()["error"] and "\n" not in r.json()["error"]


def _orange(pixel) -> bool:
    return all(abs(int(p) - c) < 40 for p, c in zip(pixel, WINDOW_COLOUR))


def test_the_context_image_is_the_clips_frame_with_the_crops_window(server, catalog):
    crop = catalog[3]  # clip c00001, object 1 (its windows lie inside the 160×120 clip)
    with httpx.Client(base_url=server) as http:
        assert http.get(f"/api/crops/{crop['crop_id']}").json()["context"] == {"url": f"/api/crops/{crop['crop_id']}/context", "available": True}
        for frame in (0, 5):
            r = http.get(f"/api/crops/{crop['crop_id']}/context", params={"frame": frame})
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert rgb.shape == (CLIP_H, CLIP_W, 3)
            x1, y1, x2, y2 = window(crop["object_id"], frame)
            assert abs(int(np.median(rgb[y1 + 6 : y2 - 6, x1 + 6 : x2 - 6])) - clip_level(frame)) <= 4  # this frame of the clip
            assert int(np.median(rgb[90:, :, 1])) < clip_level(frame) * 0.6  # dimmed outside the window
            assert _orange(rgb[y1, (x1 + x2) // 2]) and _orange(rgb[(y1 + y2) // 2, x1]) and _orange(rgb[y2 - 1, (x1 + x2) // 2])
            assert not _orange(rgb[(y1 + y2) // 2, (x1 + x2) // 2]) and not _orange(rgb[y1, x2 + 6])  # inside and beside: the frame
        assert http.get(f"/api/crops/{crop['crop_id']}/context", params={"frame": 8}).status_code == 400
        assert http.get(f"/api/crops/{crop['crop_id']}/context", params={"frame": "x"}).status_code == 400
        assert http.get("/api/crops/nope/context").status_code == 404


def test_context_frames_cache_is_bounded_and_a_missing_clip_is_one_line(catalog):
    crop = catalog[0]
    kept, tiny = ContextFrames(), ContextFrames(cache_bytes=1000)  # too small for one clip: decoded each time
    for frames in (kept, tiny):
        a = frames.jpeg(crop["clip_path"], 6, None)
        rgb = cv2.imdecode(np.frombuffer(a, np.uint8), cv2.IMREAD_COLOR)
        assert abs(int(np.median(rgb)) - clip_level(6)) <= 4
    assert kept._held == 8 * CLIP_H * CLIP_W * 3 and tiny._held == 0
    with pytest.raises(ContextError, match="no clip file"):
        kept.jpeg(None, 0, None)
    with pytest.raises(ContextError, match="is missing"):
        kept.jpeg("/nowhere/c00000.mp4", 0, None)
    with pytest.raises(ContextError, match="frames 0..7, not 9"):
        kept.jpeg(crop["clip_path"], 9, None)
