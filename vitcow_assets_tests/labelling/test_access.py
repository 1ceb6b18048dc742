"""Signing in to the labelling API, over real HTTP (uvicorn on a loopback address in a
subprocess): with tokens required every API route answers 401 without a valid token and
stores nothing (signing in and out: ``test_sign_in``); a token writes only its own annotator's labels and undos (403 otherwise,
nothing stored); deciding needs a reviewer; a server beyond 127.0.0.1 requires tokens
without being told; on 127.0.0.1 the API stays open. Tokens never reach the server's log
or the database in clear. The same on PostgreSQL."""

import re
import uuid

import httpx
import pyarrow.parquet as pq
import pytest
from starlette.routing import Route

from vitcow_assets.labelling.server import create_app
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets.labelling.taxonomy_file import load_taxonomy
from vitcow_testbed.synthetic_catalog import synthetic_catalog
from vitcow_testbed.servers import label_server


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    synthetic_catalog(home, videos=(("va", "FARM_A"),), clips=2, objects=2, frames=8)
    return home


@pytest.fixture(scope="module")
def crops(home):
    return pq.read_table(home / "catalog" / "crops.parquet")["crop_id"].to_pylist()


@pytest.fixture(scope="module")
def tokens(home):
    with LabelStore(default_url(home)) as store:
        return {"alice": store.create_token("alice"), "bob": store.create_token("bob"), "rev": store.create_token("rev", "reviewer")}


@pytest.fixture(scope="module")
def server(home, tokens):
    with label_server(home, None, "--require-tokens", "--log-level", "info") as (url, process):
        yield url


def auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def api_routes(home, crop_id: str) -> list[tuple[str, str]]:
    """(method, path) of every API route the app has (a route added later is covered too),
    but ``/api/session``: signing in takes a token in its body, signing out is anyone's
    (``test_sign_in`` covers both)."""
    with LabelStore(default_url(home / "routes")) as store:
        app = create_app(store, home / "catalog" / "crops.parquet", load_taxonomy(), home, require_tokens=True)
    out = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.path != "/api/session":
            path = route.path.replace("{crop_id}", crop_id)
            out += [(method, path) for method in sorted(route.methods - {"HEAD"})]
    return out


def stored(url: str) -> tuple:
    """Everything the database holds that a request could add."""
    with LabelStore(url) as store:
        return store.history().num_rows, store.decision_history().num_rows, store.gold_labels().num_rows, store.assignments().num_rows


def test_every_api_call_without_a_valid_token_is_401_and_stores_nothing(server, home, crops, tokens):
    routes = api_routes(home, crops[0])
    assert len(routes) >= 16 and ("POST", "/api/labels") in routes and ("POST", "/api/adjudications") in routes
    before = stored(default_url(home))
    body = {"annotator": "alice", "crop_id": crops[0], "label": "Standing", "reviewer": "rev"}
    wrong = [{}, auth("vct_" + "A" * 43), auth(tokens["alice"][:-2]), {"authorization": f"Basic {tokens['alice']}"}, {"authorization": "Bearer"}]
    with httpx.Client(base_url=server) as http:
        for method, path in routes:
            for headers in wrong:
                r = http.request(method, path, headers=headers, json=body if method == "POST" else None)
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.json()["error"].startswith("sign in") and r.headers["www-authenticate"] == "Bearer"
                assert tokens["alice"] not in r.text
        assert http.get("/").status_code == 200 and http.get("/static/app.js").status_code == 200  # the page itself asks for the token
    assert stored(default_url(home)) == before


def test_a_token_writes_only_its_own_labels_and_undos(server, home, crops, tokens):
    with httpx.Client(base_url=server) as http:
        alice = auth(tokens["alice"])
        assert http.get("/api/me", headers=alice).json() == {"annotator": "alice", "role": "annotator", "tokens_required": True}
        r = http.post("/api/labels", headers=alice, json={"crop_id": crops[1], "label": "Lying"})  # no name: the token's
        assert r.status_code == 201 and r.json()["event"]["annotator"] == "alice"
        before = stored(default_url(home))
        r = http.post("/api/labels", headers=alice, json={"annotator": "bob", "crop_id": crops[1], "label": "Standing"})
        assert r.status_code == 403 and r.json()["error"] == "this token is alice's: it cannot write labels of bob"
        r = http.post("/api/undo", headers=alice, json={"annotator": "bob"})
        assert r.status_code == 403 and "cannot write undos of bob" in r.json()["error"]
        r = http.post("/api/adjudications", headers=alice, json={"crop_id": crops[1], "label": "Lying"})
        assert r.status_code == 403 and "alice is not a reviewer" in r.json()["error"]
        r = http.post("/api/adjudications", headers=auth(tokens["rev"]), json={"crop_id": crops[1], "label": "Lying", "reviewer": "alice"})
        assert r.status_code == 403  # a reviewer decides under their own name only
        assert stored(default_url(home)) == before
        assert http.post("/api/undo", headers=alice, json={"annotator": "alice"}).json()["undone"]["crop_id"] == crops[1]
        r = http.post("/api/adjudications", headers=auth(tokens["rev"]), json={"crop_id": crops[2], "label": "Walking", "start_frame": 1, "end_frame": 4})
        assert r.status_code == 201 and r.json()["decision"]["reviewer"] == "rev"
        # an annotator reads only their own labels (test_label_visibility); a reviewer reads anyone's
        assert http.get("/api/labels", headers=auth(tokens["bob"]), params={"annotator": "alice"}).status_code == 403
        assert http.get("/api/labels", headers=auth(tokens["rev"]), params={"annotator": "alice"}).status_code == 200
    with LabelStore(default_url(home)) as store:
        assert [(e["annotator"], e["kind"]) for e in store.history().to_pylist()] == [("alice", "label"), ("alice", "undo")]
        assert store.current_decisions()["crop_id"].to_pylist() == [crops[2]]


def test_tokens_never_reach_the_log_or_the_database_in_clear(server, home, tokens):
    httpx.get(f"{server}/api/next", params={"annotator": "alice"}, headers=auth(tokens["alice"]))
    log = "\n".join(p.read_text() for p in home.glob("server-*.log"))
    assert re.search(r'"GET /api/next\?annotator=alice HTTP/1.1" 200', log)  # the access log is on: requests are logged
    files = b"".join(p.read_bytes() for p in (home / "labels").glob("labels.db*"))
    for token in tokens.values():
        assert token not in log and token.encode() not in files


def test_a_server_beyond_127_0_0_1_needs_tokens_without_being_told(home, crops, tokens):
    with label_server(home, None, host="127.0.0.2") as (url, _):
        assert httpx.get(f"{url}/api/next", params={"annotator": "alice"}).status_code == 401
        ok = httpx.get(f"{url}/api/next", params={"annotator": "alice"}, headers=auth(tokens["alice"]))
        assert ok.status_code == 200 and ok.json()["crop"] is not None


def test_on_127_0_0_1_the_api_is_open_but_a_bad_token_and_a_non_reviewer_are_refused(home, crops, tokens):
    with label_server(home) as (url, _), httpx.Client(base_url=url) as http:
        assert http.get("/api/me").json() == {"annotator": None, "role": None, "tokens_required": False}
        assert http.post("/api/labels", json={"annotator": "carol", "crop_id": crops[3], "label": "Feeding"}).status_code == 201
        assert http.get("/api/next", params={"annotator": "carol"}, headers=auth("vct_nope")).status_code == 401
        assert http.get("/api/next", params={"annotator": "carol"}, headers={"authorization": "Basic eDp5"}).status_code == 200  # a proxy's
        r = http.post("/api/adjudications", json={"crop_id": crops[3], "label": "Lying", "reviewer": "carol"})
        assert r.status_code == 403 and "carol is not a reviewer" in r.json()["error"]
        assert http.post("/api/adjudications", json={"crop_id": crops[3], "label": "Lying", "reviewer": "rev"}).status_code == 201


def test_401_and_403_store_nothing_on_postgres(home, crops, postgres_server):
    db = postgres_server.create_database(f"labels_access_{uuid.uuid4().hex[:6]}").replace("postgresql://", "postgresql+psycopg2://")
    with LabelStore(db) as store:
        alice, rev = store.create_token("alice"), store.create_token("rev", "reviewer")
    with label_server(home, db, "--require-tokens") as (url, _), httpx.Client(base_url=url) as http:
        before = stored(db)
        assert http.post("/api/labels", json={"annotator": "alice", "crop_id": crops[0], "label": "Lying"}).status_code == 401
        assert http.post("/api/labels", headers=auth(alice), json={"annotator": "bob", "crop_id": crops[0], "label": "Lying"}).status_code == 403
        assert http.post("/api/adjudications", headers=auth(alice), json={"crop_id": crops[0], "label": "Lying"}).status_code == 403
        assert stored(db) == before
        assert http.post("/api/labels", headers=auth(alice), json={"crop_id": crops[0], "label": "Lying"}).status_code == 201
        assert http.post("/api/adjudications", headers=auth(rev), json={"crop_id": crops[0], "label": "Standing"}).status_code == 201
    with LabelStore(db) as store:
        assert store.history()["annotator"].to_pylist() == ["alice"] and store.current_decisions()["reviewer"].to_pylist() == ["rev"]
        with store.engine.connect() as conn:
            dump = repr(conn.exec_driver_sql("SELECT * FROM tokens").all())
        assert alice not in dump and rev not in dump
