"""Double labelling stays blind, over real HTTP: where tokens are required an annotator's
sign-in reads only their own labels (the crop, the queue's next crop, labels, history, the
crop pages and their label filter), no decisions, no conflicts and nothing that says a crop
is gold; a reviewer reads everyone's. On 127.0.0.1 without ``--require-tokens`` (no
sign-in) everything stays readable, as documented."""

import re

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vitcow_assets.labelling.queues import ASSIGNMENT_SCHEMA
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_testbed.servers import label_server
from vitcow_testbed.synthetic_catalog import synthetic_catalog


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Four crops: c0 a decided conflict (alice Lying, bob Walking), c1 gold (alice
    Standing, bob Walking), c2 bob's only, c3 nobody's; alice's queue is c0..c2."""
    home = tmp_path_factory.mktemp("home")
    synthetic_catalog(home, videos=(("va", "FARM_A"),), clips=2, objects=2, frames=8)
    crops = pq.read_table(home / "catalog" / "crops.parquet")["crop_id"].to_pylist()
    with LabelStore(default_url(home)) as store:
        tokens = {name: store.create_token(name, role) for name, role in (("alice", "annotator"), ("bob", "annotator"), ("rev", "reviewer"))}
        for crop, who, label in ((0, "alice", "Lying"), (0, "bob", "Walking"), (1, "alice", "Standing"), (1, "bob", "Walking"), (2, "bob", "Feeding")):
            store.add_label(crops[crop], who, label, source="import")
        store.decide(crops[0], "rev", "Lying")
        store.add_gold([{"crop_id": crops[1], "label": "Standing"}], "gold.csv")
        queue = [{"annotator": "alice", "crop_id": crops[i], "farm": "FARM_A", "position": i} for i in range(3)]
        store.set_assignments(pa.Table.from_pylist(queue, schema=ASSIGNMENT_SCHEMA))
    with label_server(home, None, "--require-tokens") as (url, _):
        yield {"home": home, "url": url, "crops": crops, "auth": {n: {"authorization": f"Bearer {t}"} for n, t in tokens.items()}}


def who_labelled(labels: list[dict]) -> list[tuple[str, str]]:
    return sorted((r["annotator"], r["label"]) for r in labels)


def test_a_crop_shows_an_annotator_their_own_label_only_and_a_reviewer_everyones(site):
    c0 = site["crops"][0]
    with httpx.Client(base_url=site["url"]) as http:
        def crop(who, **params):
            r = http.get(f"/api/crops/{c0}", headers=site["auth"][who], params=params)
            assert r.status_code == 200, r.text
            return r.json()

        alice, bob, rev = crop("alice"), crop("bob"), crop("rev", annotator="bob")
        assert who_labelled(alice["labels"]) == [("alice", "Lying")] and alice["mine"]["label"] == "Lying" and alice["decision"] is None
        assert who_labelled(bob["labels"]) == [("bob", "Walking")] and bob["decision"] is None
        assert who_labelled(rev["labels"]) == [("alice", "Lying"), ("bob", "Walking")] and rev["decision"]["label"] == "Lying"
        assert rev["mine"]["annotator"] == "bob"  # a reviewer may look at anyone's
        # naming another annotator shows alice still only her own
        as_bob = crop("alice", annotator="bob")
        assert who_labelled(as_bob["labels"]) == [("alice", "Lying")] and as_bob["mine"]["annotator"] == "alice"
        assert all(n["label"] in (None, "Lying", "Standing") for n in as_bob["neighbours"]["track"])  # her labels, never bob's Walking


def test_nothing_tells_an_annotator_a_crop_is_gold(site):
    _, c1, c2, _ = site["crops"]
    with httpx.Client(base_url=site["url"], headers=site["auth"]["alice"]) as http:
        gold, plain = http.get(f"/api/crops/{c1}").json(), http.get(f"/api/crops/{c2}").json()
    assert set(gold) == set(plain) and "gold" not in str(gold).lower()
    assert who_labelled(gold["labels"]) == [("alice", "Standing")] and plain["labels"] == [] and plain["mine"] is None


def test_the_queue_offers_the_next_crop_without_others_labels(site):
    c2 = site["crops"][2]
    with httpx.Client(base_url=site["url"]) as http:
        mine = http.get("/api/next", params={"annotator": "alice"}, headers=site["auth"]["alice"]).json()
        seen_by_rev = http.get("/api/next", params={"annotator": "alice"}, headers=site["auth"]["rev"]).json()
    assert mine["crop"]["crop_id"] == seen_by_rev["crop"]["crop_id"] == c2  # her first crop she has not labelled
    assert mine["crop"]["labels"] == [] and who_labelled(seen_by_rev["crop"]["labels"]) == [("bob", "Feeding")]
    assert mine["progress"] == {"done": 2, "remaining": 1, "total": 3, "assigned": True}


def test_labels_and_history_are_an_annotators_own_and_conflicts_and_decisions_reviewers_only(site):
    c0 = site["crops"][0]
    with httpx.Client(base_url=site["url"]) as http:
        def get(path, who, **params):
            return http.get(path, headers=site["auth"][who], params=params)

        assert who_labelled(get("/api/labels", "alice").json()["labels"]) == [("alice", "Lying"), ("alice", "Standing")]
        assert who_labelled(get("/api/labels", "alice", crop_id=c0).json()["labels"]) == [("alice", "Lying")]
        assert who_labelled(get("/api/labels", "rev", crop_id=c0).json()["labels"]) == [("alice", "Lying"), ("bob", "Walking")]
        assert {e["annotator"] for e in get("/api/history", "bob").json()["events"]} == {"bob"}
        assert {e["annotator"] for e in get("/api/history", "rev", crop_id=c0).json()["events"]} == {"alice", "bob"}
        for path in ("/api/labels", "/api/history"):
            r = get(path, "alice", annotator="bob")
            assert r.status_code == 403 and "alice reads only their own labels" in r.json()["error"]
        for path in ("/api/conflicts", "/api/adjudications"):
            for who in ("alice", "bob"):
                r = get(path, who)
                assert r.status_code == 403 and "reviewers only" in r.json()["error"], (path, who)
        conflicts = get("/api/conflicts", "rev", decided="1").json()
        assert [c["crop_id"] for c in conflicts["conflicts"]] == [c0] and conflicts["decided"] == 1
        assert [d["label"] for d in get("/api/adjudications", "rev").json()["events"]] == ["Lying"]


def test_the_crop_pages_show_an_annotator_their_own_labels_only(site):
    c0, c1 = site["crops"][:2]
    with httpx.Client(base_url=site["url"]) as http:
        def get(path, who):
            r = http.get(path, headers=site["auth"][who])
            assert r.status_code == 200, (path, who, r.status_code)
            return r

        alice = get(f"/crops/{c0}/story.json", "alice").json()["labels"]
        rev = get(f"/crops/{c0}/story.json", "rev").json()["labels"]
        assert [r["annotator"] for r in alice["current"]] == ["alice"] and {e["annotator"] for e in alice["history"]} == {"alice"}
        assert sorted(r["annotator"] for r in rev["current"]) == ["alice", "bob"]
        assert "bob" not in get(f"/crops/{c0}", "alice").text and "Walking" not in get(f"/crops/{c0}", "alice").text
        assert "bob" in get(f"/crops/{c0}", "rev").text
        # the list's label filter and labels column go by the reader's labels
        assert "no crop matches these filters" in get("/crops?label=Walking", "alice").text
        listed = get("/crops?label=Walking", "rev").text
        assert f'href="/crops/{c0}"' in listed and f'href="/crops/{c1}"' in listed
        bobs = get("/crops?labelled=1", "bob").text  # bob's list: the crops he labelled, with his labels only
        assert re.findall(r'<td><a href="/crops/([0-9a-f]{20})">', bobs) == site["crops"][:3] and "Lying" not in bobs and "Walking" in bobs
        unlabelled = get("/crops?labelled=0", "alice").text  # bob's label of c2 does not count for alice
        assert re.findall(r'<td><a href="/crops/([0-9a-f]{20})">', unlabelled) == site["crops"][2:]


def test_on_127_0_0_1_without_a_sign_in_everything_stays_readable(site):
    c0 = site["crops"][0]
    with label_server(site["home"]) as (url, _), httpx.Client(base_url=url) as http:
        crop = http.get(f"/api/crops/{c0}").json()
        assert who_labelled(crop["labels"]) == [("alice", "Lying"), ("bob", "Walking")] and crop["decision"]["label"] == "Lying"
        assert http.get("/api/conflicts").status_code == 200 and http.get("/api/labels", params={"annotator": "bob"}).status_code == 200
