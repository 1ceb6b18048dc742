"""Signing a browser in, over real HTTP (the server in a subprocess, as users run it), and in
Chromium (sign in on the crop list, follow to a crop page, it plays; links from another
page on this host, as the Dagster UI's, and from another site lead straight to the crop;
signing out closes the pages again; screenshots in ``$VITCOW_TEST_ARTIFACTS``): where
tokens are required the crop pages and their media answer the sign-in page (401) and
nothing else without a valid session cookie or token; signing in with a token (the form,
or ``POST /api/session``) sets an HttpOnly, SameSite=Strict cookie that is not the token and
opens the crop pages and the labelling API alike; a forged, expired, signed-out or revoked
session is refused; signing in, or writing with the cookie, from another site's page is
refused; on 127.0.0.1 without ``--require-tokens`` the crop pages stay open. Neither a
token nor a session id reaches the server's log or the database in clear."""

import contextlib
import html
import os
import re
import secrets
import threading
from collections.abc import Iterator
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from vitcow_assets.labelling.sessions import session_sha256
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets_tests.labelling.test_browser import ARTIFACTS, browser, wait  # noqa: F401  (the Chromium fixture)
from vitcow_testbed.servers import label_server
from vitcow_testbed.synthetic_catalog import synthetic_catalog

HOURS = 12


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    synthetic_catalog(home, videos=(("va", "FARM_A"),), clips=2, objects=2, frames=8)
    return home


@pytest.fixture(scope="module")
def crops(home):
    return pq.read_table(home / "catalog" / "crops.parquet")["crop_id"].to_pylist()


@pytest.fixture(scope="module")
def tokens(home, crops):
    with LabelStore(default_url(home)) as store:
        made = {name: store.create_token(name, role) for name, role in (("alice", "annotator"), ("bob", "annotator"), ("rev", "reviewer"))}
        store.add_label(crops[0], "alice", "Lying", source="import")
        store.add_label(crops[0], "bob", "Scratching", source="import")
    return made


@pytest.fixture(scope="module")
def server(home, tokens):
    with label_server(home, None, "--require-tokens", "--log-level", "info") as (url, _):
        yield url


#: every value a secret took during the module's tests (tokens and session ids), checked against the log and the database
SEEN: set[str] = set()


def cookie_name(url: str) -> str:
    return f"vitcow_session_{urlsplit(url).port}"


def sign_in(url: str, token: str, next_path: str = "/crops") -> tuple[httpx.Response, SimpleCookie]:
    """POST the sign-in form as a browser does; (the response, its Set-Cookie)."""
    r = httpx.post(f"{url}/signin", data={"token": token, "next": next_path}, headers={"sec-fetch-site": "same-origin"})
    jar = SimpleCookie()
    for header in r.headers.get_list("set-cookie"):
        jar.load(header)
    if cookie_name(url) in jar:
        SEEN.add(jar[cookie_name(url)].value)
    return r, jar


def session_of(url: str, token: str) -> dict:
    r, jar = sign_in(url, token)
    assert r.status_code == 303, r.text
    return {"cookie": f"{cookie_name(url)}={jar[cookie_name(url)].value}"}


def crop_routes(crops: list[str]) -> list[str]:
    c = crops[0]
    return ["/crops", f"/crops/{c}", f"/crops/{c[:8]}", f"/crops/{c}/video", f"/crops/{c}/context.jpg?frame=2", f"/crops/{c}/story.json",
            "/crops?video=va&track=0", f"/crops?id={c[:8]}", "/crops/0123456789abcdef0123"]


def test_without_a_sign_in_every_crop_page_is_the_sign_in_page_and_nothing_else(server, crops, tokens):
    SEEN.update(tokens.values())
    wrong = [{}, {"cookie": f"{cookie_name(server)}=vcs_{secrets.token_urlsafe(32)}"},  # forged
             {"cookie": f"{cookie_name(server)}={tokens['rev']}"},  # the token itself is no session
             {"cookie": f"vitcow_session_1={session_of(server, tokens['rev'])['cookie'].split('=', 1)[1]}"},  # another port's name
             {"authorization": "Bearer vct_" + "A" * 43}]
    with httpx.Client(base_url=server) as http:
        for path in crop_routes(crops):
            for headers in wrong:
                r = http.get(path, headers=headers)
                assert r.status_code == 401 and r.headers["content-type"].startswith("text/html"), (path, headers, r.status_code)
                assert r.headers["cache-control"] == "no-store" and r.headers["www-authenticate"].startswith("Bearer")
                assert 'action="/signin"' in r.text and 'name="token"' in r.text
                text = r.text.replace(f'name="next" value="{html.escape(path)}"', "")  # the address asked for, given back
                leaked = [s for s in (*crops, "alice", "bob", "Lying", "Scratching", "va/", "FARM_A", "c00000") if s in text]
                assert leaked == [], (path, leaked)
        # the sign-in page brings the reader back where they were going
        assert 'name="next" value="/crops?video=va&amp;track=0"' in http.get("/crops?video=va&track=0").text
        for path in ("/static/crops.css", "/static/crops.js", "/static/signin.js", "/signin"):  # no data in these
            assert http.get(path).status_code == 200


def test_signing_in_sets_a_session_cookie_that_opens_the_crop_pages_and_the_api(server, home, crops, tokens):
    r, jar = sign_in(server, tokens["alice"], f"/crops/{crops[0]}")
    assert r.status_code == 303 and r.headers["location"] == f"/crops/{crops[0]}"
    morsel = jar[cookie_name(server)]
    assert morsel.value.startswith("vcs_") and tokens["alice"] not in morsel.value and morsel.value != tokens["alice"]
    assert (morsel["httponly"], morsel["samesite"], morsel["path"], morsel["max-age"], morsel["secure"]) == (True, "strict", "/", str(HOURS * 3600), "")
    cookie = {"cookie": f"{cookie_name(server)}={morsel.value}"}
    with httpx.Client(base_url=server, headers=cookie) as http:
        page = http.get(f"/crops/{crops[0]}")
        assert page.status_code == 200 and f"<code>{crops[0]}</code>" in page.text and 'id="who">alice · annotator' in page.text
        video = http.get(f"/crops/{crops[0]}/video", headers={"range": "bytes=0-99"})
        assert video.status_code == 206 and len(video.content) == 100
        # signed in, the context picture answers (this catalog has no clips table: a 404 saying so)
        assert "No context picture" in http.get(f"/crops/{crops[0]}/context.jpg?frame=2").text
        assert http.get(f"/api/crops/{crops[0]}/context", params={"frame": 2}).headers["content-type"] == "image/jpeg"
        assert http.get("/crops").status_code == 200
        # the labelling API takes the same cookie
        assert http.get("/api/me").json() == {"annotator": "alice", "role": "annotator", "tokens_required": True}
        assert http.get("/api/next", params={"annotator": "alice"}).json()["crop"] is not None
        wrote = http.post("/api/labels", json={"crop_id": crops[3], "label": "Feeding", "source": "page"}, headers={"sec-fetch-site": "same-origin"})
        assert wrote.status_code == 201 and wrote.json()["event"]["annotator"] == "alice"
        refused = http.post("/api/labels", json={"annotator": "bob", "crop_id": crops[3], "label": "Feeding"})
        assert refused.status_code == 403  # the cookie is alice's, as her token is
    # the page's own sign-in: JSON in, the same cookie out
    api = httpx.post(f"{server}/api/session", json={"token": tokens["rev"]})
    SEEN.add(api.cookies.get(cookie_name(server)) or "")
    assert api.status_code == 201 and api.json()["annotator"] == "rev" and api.json()["role"] == "reviewer"
    assert "httponly" in api.headers["set-cookie"].lower() and "samesite=strict" in api.headers["set-cookie"].lower()
    assert httpx.post(f"{server}/api/session", json={"token": tokens["rev"][:-1] + "x"}).status_code == 401
    assert httpx.post(f"{server}/api/session", json=["x"]).status_code == 400
    with LabelStore(default_url(home)) as store:
        assert sorted(store.current_labels("alice")["crop_id"].to_pylist()) == sorted([crops[0], crops[3]])


def test_a_bad_token_signs_nobody_in_and_next_stays_on_this_server(server, tokens):
    r, jar = sign_in(server, tokens["alice"][:-1] + "x", "/crops/abc")
    assert r.status_code == 401 and "not valid" in r.text and cookie_name(server) not in jar
    assert 'name="next" value="/crops/abc"' in r.text
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r, _ = sign_in(server, tokens["alice"], elsewhere)
        assert r.status_code == 303 and r.headers["location"] == "/crops", elsewhere


def test_signing_out_ends_the_session_and_clears_the_cookie(server, crops, tokens):
    for how in ("form", "api"):
        cookie = session_of(server, tokens["bob"])
        assert httpx.get(f"{server}/crops/{crops[0]}", headers=cookie).status_code == 200
        if how == "form":
            r = httpx.post(f"{server}/signout", headers={**cookie, "sec-fetch-site": "same-origin"})
            assert r.status_code == 303 and r.headers["location"] == "/signin"
        else:
            r = httpx.delete(f"{server}/api/session", headers=cookie)
            assert r.status_code == 200 and r.json() == {"signed_out": True}
        cleared = SimpleCookie(r.headers["set-cookie"])[cookie_name(server)]
        assert cleared.value == "" and cleared["max-age"] == "0"
        again = httpx.get(f"{server}/crops/{crops[0]}", headers=cookie)  # the old cookie, kept by someone
        assert again.status_code == 401 and "sign-in has ended" in again.text
        assert httpx.get(f"{server}/api/me", headers=cookie).status_code == 401
    assert httpx.delete(f"{server}/api/session").json() == {"signed_out": False}


def test_an_expired_session_and_a_revoked_token_are_refused(server, home, crops):
    with LabelStore(default_url(home)) as store:
        carol = store.create_token("carol")
    SEEN.add(carol)
    expiring, revoked = session_of(server, carol), session_of(server, carol)
    for cookie in (expiring, revoked):
        assert httpx.get(f"{server}/crops/{crops[1]}", headers=cookie).status_code == 200
    with LabelStore(default_url(home)) as store:
        from vitcow_assets.labelling.schema import sessions

        with store.engine.begin() as conn:
            sha = session_sha256(expiring["cookie"].split("=", 1)[1])
            conn.execute(sessions.update().where(sessions.c.session_sha256 == sha).values(expires_at=sessions.c.created_at))
    assert httpx.get(f"{server}/crops/{crops[1]}", headers=expiring).status_code == 401
    assert httpx.get(f"{server}/crops/{crops[1]}", headers=revoked).status_code == 200
    with LabelStore(default_url(home)) as store:
        assert store.revoke_tokens("carol") == 1
    for path in (f"/crops/{crops[1]}", f"/crops/{crops[1]}/video", "/api/me", "/api/taxonomy"):
        assert httpx.get(f"{server}{path}", headers=revoked).status_code == 401, path
    assert sign_in(server, carol)[0].status_code == 401  # nor does the revoked token sign in again


def test_signing_in_or_writing_with_the_cookie_from_another_site_is_refused(server, home, crops, tokens):
    r = httpx.post(f"{server}/signin", data={"token": tokens["alice"], "next": "/crops"}, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert httpx.post(f"{server}/api/session", json={"token": tokens["alice"]}, headers={"sec-fetch-site": "same-site"}).status_code == 403
    cookie = session_of(server, tokens["alice"])
    with LabelStore(default_url(home)) as store:
        before = store.event_count()
    for site in ("cross-site", "same-site"):
        r = httpx.post(f"{server}/api/labels", json={"crop_id": crops[2], "label": "Lying"}, headers={**cookie, "sec-fetch-site": site})
        assert r.status_code == 403 and "this server's own pages" in r.json()["error"]
    assert httpx.delete(f"{server}/api/session", headers={**cookie, "sec-fetch-site": "cross-site"}).status_code == 403
    with LabelStore(default_url(home)) as store:
        assert store.event_count() == before
    assert httpx.get(f"{server}/crops/{crops[0]}", headers=cookie).status_code == 200  # reading a page is fine


def test_the_session_lifetime_comes_from_its_setting(home, tokens):
    env = {**os.environ, "VITCOW_LABELS_SESSION_HOURS": "0.5"}
    with label_server(home, None, "--require-tokens", env=env) as (url, _):
        r, jar = sign_in(url, tokens["bob"])
        assert jar[cookie_name(url)]["max-age"] == "1800"
    with LabelStore(default_url(home)) as store, store.engine.connect() as conn:
        from vitcow_assets.labelling.schema import sessions

        row = conn.execute(sa.select(sessions).where(sessions.c.session_sha256 == session_sha256(jar[cookie_name(url)].value))).one()
    assert (row.expires_at - row.created_at).total_seconds() == 1800


def test_on_127_0_0_1_without_require_tokens_the_crop_pages_stay_open(home, crops):
    with label_server(home) as (url, _), httpx.Client(base_url=url) as http:
        page = http.get(f"/crops/{crops[0]}", headers={"cookie": f"{cookie_name(url)}=vcs_stale"})  # a stale cookie is ignored
        assert page.status_code == 200 and "alice" in page.text and "bob" in page.text and 'id="who"' not in page.text
        assert http.get(f"/crops/{crops[0]}/video").status_code == 200


def test_neither_tokens_nor_session_ids_reach_the_log_or_the_database_in_clear(server, home, crops, tokens):
    """Every secret of this module's tests (run alone: of its own sign-in) against the log and the database."""
    SEEN.update(tokens.values())
    assert httpx.get(f"{server}/crops/{crops[0]}", headers=session_of(server, tokens["alice"])).status_code == 200
    log = "\n".join(p.read_text() for p in home.glob("server-*.log"))
    assert re.search(r'"POST /signin HTTP/1.1" 303', log) and re.search(r'"GET /crops/[0-9a-f]{20} HTTP/1.1" 200', log)  # requests are logged
    files = b"".join(p.read_bytes() for p in (home / "labels").glob("labels.db*"))
    secrets_seen = {s for s in SEEN if s}
    assert any(s.startswith("vcs_") for s in secrets_seen) and len([s for s in secrets_seen if s.startswith("vct_")]) >= 3
    for secret in secrets_seen:
        assert secret not in log and secret.encode() not in files, secret[:6]
    with LabelStore(default_url(home)) as store, store.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT session_sha256 FROM sessions")).scalars())
    assert stored and stored <= {session_sha256(s) for s in secrets_seen}


@contextlib.contextmanager
def links_page(target: str) -> Iterator[int]:
    """A page on another port of this machine (as the Dagster UI is) linking to ``target``; its port."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = f'<!doctype html><title>elsewhere</title><a id="to-crop" href="{target}">the crop page</a>'.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _plays(driver) -> None:
    wait(driver, lambda d: d.execute_script("const v = document.getElementById('crop-video'); return !!v && v.readyState === 4 && v.currentTime > 0"), "crop video playing")
    t0 = driver.execute_script("return document.getElementById('crop-video').currentTime")
    wait(driver, lambda d: d.execute_script("return document.getElementById('crop-video').currentTime") != t0, "currentTime advances")


def _follow(driver, page: str, port: int, host: str, log) -> list[str]:
    """Follow the link to ``page`` from a page on ``host:port``; the server's answers to ``page`` meanwhile."""
    start = log.stat().st_size
    driver.get(f"http://{host}:{port}/")
    driver.find_element("id", "to-crop").click()
    wait(driver, lambda d: d.current_url == page and d.find_elements("id", "crop-video"), f"the crop page from a page on {host}")
    _plays(driver)
    path = urlsplit(page).path
    return re.findall(rf'"GET {re.escape(path)} HTTP/1.1" (\d+)', log.read_text()[start:])


def test_in_chromium_sign_in_on_the_list_follow_to_a_crop_page_it_plays(browser, server, home, crops, tokens):
    from selenium.webdriver.common.keys import Keys

    driver = browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.get(f"{server}/crops")
    wait(driver, lambda d: d.find_elements("id", "token-input"), "the sign-in page")
    assert driver.find_element("tag name", "h1").text == "Sign in" and not driver.find_elements("css selector", "table")
    driver.save_screenshot(str(ARTIFACTS / "crops_sign_in.png"))
    driver.find_element("id", "token-input").send_keys(tokens["alice"][:-1] + "x", Keys.ENTER)
    wait(driver, lambda d: "not valid" in d.find_element("tag name", "body").text, "the bad token refused")
    driver.find_element("id", "token-input").send_keys(tokens["alice"], Keys.ENTER)
    wait(driver, lambda d: d.current_url == f"{server}/crops" and d.find_elements("css selector", "table.list"), "the crop list after signing in")
    assert driver.find_element("id", "who").text == "alice · annotator"
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: no script sees the session
    driver.find_element("link text", crops[0]).click()
    page = f"{server}/crops/{crops[0]}"
    wait(driver, lambda d: d.current_url == page, "the crop page")
    _plays(driver)
    labels = driver.find_element("id", "labels").text
    assert "alice" in labels and "bob" not in labels  # an annotator sees their own labels only
    driver.save_screenshot(str(ARTIFACTS / "crops_signed_in.png"))

    # links from elsewhere: a page on another port of this host (as the Dagster UI on :3000
    # is: the same site), and one on another site (localhost), whose link arrives without the
    # SameSite=Strict cookie: the sign-in page asks again from here and opens the crop
    log = home / f"server-{urlsplit(server).port}.log"
    with links_page(page) as port:
        assert _follow(driver, page, port, "127.0.0.1", log) == ["200"]  # same site: the cookie goes with the link
        assert _follow(driver, page, port, "localhost", log) == ["401", "200"]  # another site: not at first; then from the page
        driver.execute_script("document.getElementById('labels').scrollIntoView()")
        driver.save_screenshot(str(ARTIFACTS / "crops_from_another_site_labels.png"))

        driver.find_element("id", "sign-out").click()
        wait(driver, lambda d: d.find_elements("id", "token-input"), "signed out")
        driver.get(page)
        wait(driver, lambda d: d.find_elements("id", "token-input"), "the crop page closed again")
        assert crops[0] not in driver.find_element("tag name", "main").text
        driver.get(f"http://localhost:{port}/")  # signed out, a link from elsewhere stays on the sign-in page
        driver.find_element("id", "to-crop").click()
        wait(driver, lambda d: d.current_url == page and d.find_elements("id", "token-input"), "the sign-in page, not the crop")
