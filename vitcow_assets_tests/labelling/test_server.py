"""The labelling API through a real uvicorn server in a subprocess: the contract the page
uses, crop videos with HTTP range requests, two annotators labelling at once (nothing lost),
and a kill -9 mid-write (at most the label being written is lost, the database is intact).
The time per label is measured by ``benchmarks/labelling.py``, not here."""

import os
import signal
import threading
import time

import httpx
import pyarrow.parquet as pq
import pytest

from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_testbed.synthetic_catalog import synthetic_catalog
from vitcow_testbed.servers import label_server


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    synthetic_catalog(home, clips=3, objects=2, frames=12)
    return home


@pytest.fixture(scope="module")
def server(home):
    with label_server(home) as (url, _):
        yield url


@pytest.fixture(scope="module")
def catalog(home):
    return pq.read_table(home / "catalog" / "crops.parquet")


def test_next_label_undo_and_progress(server, catalog):
    with httpx.Client(base_url=server) as http:
        first = http.get("/api/next", params={"annotator": "api-one"}).json()
        assert first["crop"]["crop_id"] == catalog["crop_id"][0].as_py()  # no assignment: every crop, catalog order
        assert first["progress"] == {"done": 0, "remaining": catalog.num_rows, "total": catalog.num_rows, "assigned": False}
        crop = first["crop"]
        assert crop["neighbours"]["count"] == 3 and crop["neighbours"]["next"] is not None and crop["farm"] == "FARM_A"
        r = http.post("/api/labels", json={"annotator": "api-one", "crop_id": crop["crop_id"], "label": "Walking", "start_frame": 2, "end_frame": 9})
        assert r.status_code == 201 and r.json()["event"]["start_frame"] == 2
        after = http.get("/api/next", params={"annotator": "api-one", "after": crop["crop_id"]}).json()
        assert after["crop"]["crop_id"] == catalog["crop_id"][1].as_py() and after["progress"]["done"] == 1
        # another annotator's queue no longer offers the crop api-one labelled
        other = http.get("/api/next", params={"annotator": "api-two"}).json()
        assert other["crop"]["crop_id"] != crop["crop_id"] and other["progress"]["total"] == catalog.num_rows - 1
        undo = http.post("/api/undo", json={"annotator": "api-one"}).json()
        assert undo["undone"]["crop_id"] == crop["crop_id"] and undo["undo"]["undoes"] == r.json()["event"]["event_id"]
        assert http.get("/api/labels", params={"annotator": "api-one"}).json()["labels"] == []
        assert http.post("/api/undo", json={"annotator": "api-one"}).status_code == 409
        kinds = [e["kind"] for e in http.get("/api/history", params={"crop_id": crop["crop_id"]}).json()["events"]]
        assert kinds == ["label", "undo"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"annotator": "x", "crop_id": "nope", "label": "Standing"}, 404, "unknown crop 'nope'"),
        ({"annotator": "x", "crop_id": None, "label": "Sleeping"}, 400, "unknown label 'Sleeping'"),
        ({"annotator": "x", "crop_id": None, "label": "Walking", "start_frame": 4, "end_frame": 12}, 400, "the crop has frames 0..11"),
        ({"annotator": "x", "crop_id": None, "label": "Walking", "start_frame": 4}, 400, "needs both"),
        ({"annotator": "", "crop_id": None, "label": "Standing"}, 400, "annotator"),
    ],
)
def test_bad_labels_are_refused_with_one_line(server, catalog, body, status, message):
    body = {**body, "crop_id": body["crop_id"] or catalog["crop_id"][2].as_py()}
    r = httpx.post(f"{server}/api/labels", json=body)
    assert r.status_code == status and message in r.json()["error"] and "\n" not in r.json()["error"]


@pytest.mark.parametrize(
    "missing, message",
    [("label", "label: missing (give a label of taxonomy 'cattle-behaviour', e.g. 'Standing')"), ("crop_id", "crop_id: missing (give the crop_id of a catalog crop)")],
)
def test_a_missing_label_or_crop_is_named_and_nothing_is_stored(server, home, catalog, missing, message):
    body = {"annotator": "x", "crop_id": catalog["crop_id"][2].as_py(), "label": "Standing"}
    del body[missing]
    with LabelStore(default_url(home)) as store:
        before = store.event_count()
    r = httpx.post(f"{server}/api/labels", json=body)
    assert (r.status_code, r.json()["error"]) == (400, message)
    assert "None" not in r.json()["error"]
    with LabelStore(default_url(home)) as store:
        assert store.event_count() == before


def test_crop_videos_are_served_with_range_requests_and_only_from_the_catalog(server, catalog):
    crop = catalog.to_pylist()[0]
    data = open(crop["crop_path"], "rb").read()
    with httpx.Client(base_url=server) as http:
        whole = http.get(f"/api/crops/{crop['crop_id']}/video")
        assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-type"] == "video/mp4"
        part = http.get(f"/api/crops/{crop['crop_id']}/video", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = http.get(f"/api/crops/{crop['crop_id']}/video", headers={"Range": f"bytes={len(data) - 10}-"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        assert http.get(f"/api/crops/{crop['crop_id']}/video", headers={"Range": f"bytes={len(data)}-"}).status_code == 416
        for bad in ("..%2F..%2F..%2Fetc%2Fpasswd", "nope", "%2Fetc%2Fpasswd"):
            assert http.get(f"/api/crops/{bad}/video").status_code == 404
        assert http.get("/static/../store.py").status_code == 404
        page = http.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert http.get("/static/app.js").status_code == 200


def _annotate(server: str, annotator: str, crops: list[str], n: int, sent: list, errors: list, start: threading.Event) -> None:
    """Post ``n`` labels; every refusal or exception goes to ``errors`` (the test asserts
    on it: an assert in this thread could not fail the test)."""
    labels = ["Standing", "Lying", "Feeding", "Walking"]
    try:
        if not start.wait(timeout=60):
            raise TimeoutError("never told to start")
        with httpx.Client(base_url=server, timeout=30) as http:
            for i in range(n):
                body = {"annotator": annotator, "crop_id": crops[i % len(crops)], "label": labels[i % 4]}
                r = http.post("/api/labels", json=body)
                if r.status_code != 201:
                    errors.append(r.text)
                else:
                    sent.append((body["crop_id"], annotator, body["label"], r.json()["event"]["event_id"]))
    except Exception as exc:  # noqa: BLE001 - reported to the test thread
        errors.append(f"{annotator}: {exc!r}")


def _two_annotators(server: str, db_url: str, crops: list[str], n: int = 150) -> str:
    """Two annotators post ``n`` labels each at once; checks nothing is lost; the counts."""
    sent, errors, start = [], [], threading.Event()
    threads = [threading.Thread(target=_annotate, args=(server, who, crops, n, sent, errors, start)) for who in ("conc-a", "conc-b")]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "an annotator still posting after 300 s"
    assert errors == [] and len(sent) == 2 * n
    with LabelStore(db_url) as store:
        history = [e for e in store.history().to_pylist() if e["annotator"] in ("conc-a", "conc-b")]
        assert sorted((e["crop_id"], e["annotator"], e["label"], e["event_id"]) for e in history) == sorted(sent)
        current = {(r["crop_id"], r["annotator"]): r["label"] for r in store.current_labels().to_pylist() if r["annotator"].startswith("conc-")}
        last = {}
        for crop, who, label, _ in sorted(sent, key=lambda s: s[3]):
            last[(crop, who)] = label
        assert current == last
    return f"labels sent={2 * n} acknowledged={len(sent)} stored={len(history)} lost={2 * n - len(history)}"


def test_two_annotators_labelling_at_once_lose_nothing(home, server, catalog):
    figures = _two_annotators(server, default_url(home), catalog["crop_id"].to_pylist())
    print(f"\n{figures} (2 annotators at once, SQLite)")


def test_two_annotators_on_postgres_lose_nothing(home, catalog, postgres_server):
    db = postgres_server.create_database("labels_api").replace("postgresql://", "postgresql+psycopg2://")
    with label_server(home, db) as (url, _):
        figures = _two_annotators(url, db, catalog["crop_id"].to_pylist())
    print(f"\n{figures} (2 annotators at once, PostgreSQL)")


def test_kill_9_mid_write_loses_at_most_the_label_being_written(tmp_path):
    home = tmp_path / "home"
    crops = synthetic_catalog(home, videos=(("vk", "F"),), clips=2, objects=2, frames=6)["crop_id"].to_pylist()
    acked, refused, stop = [], [], threading.Event()

    def annotate(url):
        """Post labels until stopped or the server is gone; a refusal goes to ``refused``
        (asserted on below: an assert here could not fail the test)."""
        with httpx.Client(base_url=url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                try:
                    r = http.post("/api/labels", json={"annotator": "k", "crop_id": crops[i % len(crops)], "label": "Standing"})
                except httpx.HTTPError:
                    return  # the server is gone mid-request
                if r.status_code != 201:
                    refused.append(f"{r.status_code} {r.text}")
                    return
                acked.append(r.json()["event"]["event_id"])
                i += 1

    with label_server(home) as (url, process):
        writer = threading.Thread(target=annotate, args=(url,))
        writer.start()
        deadline = time.monotonic() + 60
        while len(acked) < 60 and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert refused == [] and len(acked) >= 60, f"{len(acked)} labels acknowledged in 60 s; refused: {refused[:1]}"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        writer.join(timeout=30)
        assert not writer.is_alive() and refused == []
    with LabelStore(default_url(home)) as store:
        assert store.check_integrity() == "ok"
        stored = store.history()["event_id"].to_pylist()
        assert set(acked) <= set(stored) and len(stored) - len(acked) <= 1
        print(f"\nkill -9 after {len(acked)} acknowledged labels: {len(stored)} stored, {len(acked) - len(set(acked) & set(stored))} lost")
    with label_server(home) as (url, _):  # the database opens and takes labels again
        r = httpx.post(f"{url}/api/labels", json={"annotator": "k", "crop_id": crops[0], "label": "Lying"})
        assert r.status_code == 201 and r.json()["event"]["event_id"] > max(stored)
