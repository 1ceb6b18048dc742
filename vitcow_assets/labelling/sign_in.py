"""Signing a browser in and out: the session cookie and the endpoints that set and clear it.

A browser sends no ``Authorization`` header on a plain link, so the crop pages (and the
labelling page) sign in once with a token and then carry a session cookie
(``labelling.sessions``): its value is a random session id, never the token;
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it),
``Path=/``, ``Max-Age`` the session's lifetime, and ``Secure`` where the request came over
https (directly, or through a proxy uvicorn trusts to say so). Its name carries the port
(``access.cookie_name``).

- ``POST /api/session`` ``{"token": ...}`` (or ``Authorization: Bearer``): 201
  ``{annotator, role, expires_at}`` and the cookie; 401 for a token that signs nobody in.
- ``DELETE /api/session``: ends the cookie's session and clears the cookie (200 ``{signed_out}``).
- ``GET /signin?next=PATH``: the sign-in page; ``POST /signin`` (form ``token``, ``next``)
  sets the cookie and goes to ``next`` (303), or shows the page again (401).
- ``POST /signout`` (form): ends the session, clears the cookie, goes to ``/signin`` (303).

Signing in and out from another site's page is refused (``Sec-Fetch-Site``, where the
browser sends it): nobody can sign a browser in as someone else. No response or log line
holds a token or a session id (uvicorn's access log shows the request line only).

May import starlette, the labelling ``access``, ``sessions`` and ``crop_html`` modules; no dagster.
"""

import datetime as dt
import json
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vitcow_assets.labelling import crop_html
from vitcow_assets.labelling.access import BEARER, SAME_ORIGIN, cookie_name
from vitcow_assets.labelling.events import iso_utc
from vitcow_assets.labelling.sessions import Session, SessionStore

#: the largest sign-in body read (a token is 47 characters; the form adds ``next``)
MAX_BODY = 8192
#: where a sign-in without a (safe) ``next`` goes
DEFAULT_NEXT = "/crops"
NOT_VALID = "That token is not valid (mistyped, revoked or never made)."
_NO_STORE = {"cache-control": "no-store"}


def safe_next(text) -> str:
    """``text`` if it is a path on this server (``/...``; not ``//host``), else ``/crops``."""
    ok = isinstance(text, str) and text.startswith("/") and not text.startswith("//") and "\\" not in text
    return text if ok and text.isprintable() else DEFAULT_NEXT


def sign_in_page(next_path: str, message: str = "", status: int = 401) -> HTMLResponse:
    """The sign-in page (what every crop page answers without a sign-in; nothing else on it)."""
    headers = {**_NO_STORE, "www-authenticate": 'Bearer realm="vitcow"'} if status == 401 else _NO_STORE
    return HTMLResponse(crop_html.sign_in_page(safe_next(next_path), message), status_code=status, headers=headers)


def _cross_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    return site is not None and site != SAME_ORIGIN


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return b""
    return body


class SignIn:
    """The sign-in endpoints over a session store, with sessions lasting ``lifetime``."""

    def __init__(self, store: SessionStore, lifetime: dt.timedelta) -> None:
        self.store, self.lifetime = store, lifetime

    def _set_cookie(self, request: Request, response: Response, session: Session) -> Response:
        response.set_cookie(cookie_name(request), session.session_id, max_age=int(self.lifetime.total_seconds()), path="/",
                            secure=request.url.scheme == "https", httponly=True, samesite="strict")
        return response

    async def _end(self, request: Request) -> bool:
        """End the cookie's session; whether it was one in force."""
        session = request.cookies.get(cookie_name(request))
        return session is not None and await run_in_threadpool(self.store.end_session, session)

    @staticmethod
    def _clear_cookie(request: Request, response: Response) -> Response:
        response.delete_cookie(cookie_name(request), path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict")
        return response

    async def api_start(self, request: Request) -> Response:
        if _cross_site(request):
            return JSONResponse({"error": "sign in from this server's own page"}, status_code=403, headers=_NO_STORE)
        try:
            body = json.loads(await _body(request) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "the request body must be a JSON object {\"token\": ...}"}, status_code=400, headers=_NO_STORE)
        scheme, _, header_token = request.headers.get("authorization", "").strip().partition(" ")
        token = body.get("token") or (header_token.strip() if scheme.lower() == BEARER else None)
        session = await run_in_threadpool(self.store.start_session, token, self.lifetime)
        if session is None:
            return JSONResponse({"error": f"sign in: {NOT_VALID}"}, status_code=401, headers={**_NO_STORE, "www-authenticate": "Bearer"})
        data = {**session.identity.as_dict(), "expires_at": iso_utc(session.expires_at)}
        return self._set_cookie(request, JSONResponse(data, status_code=201, headers=_NO_STORE), session)

    async def api_end(self, request: Request) -> Response:
        if _cross_site(request):
            return JSONResponse({"error": "sign out from this server's own page"}, status_code=403, headers=_NO_STORE)
        ended = await self._end(request)
        return self._clear_cookie(request, JSONResponse({"signed_out": ended}, headers=_NO_STORE))

    async def page(self, request: Request) -> Response:
        return sign_in_page(request.query_params.get("next", DEFAULT_NEXT), status=200)

    async def form_start(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await _body(request)).decode("utf-8", "replace")).items()}
        next_path = safe_next(form.get("next"))
        if _cross_site(request):
            return sign_in_page(next_path, "Sign in from this page, not from another site's.", 403)
        session = await run_in_threadpool(self.store.start_session, form.get("token", "").strip(), self.lifetime)
        if session is None:
            return sign_in_page(next_path, NOT_VALID)
        return self._set_cookie(request, RedirectResponse(next_path, status_code=303, headers=_NO_STORE), session)

    async def form_end(self, request: Request) -> Response:
        if _cross_site(request):
            return sign_in_page(DEFAULT_NEXT, "Sign out from this server's own pages.", 403)
        await self._end(request)
        return self._clear_cookie(request, RedirectResponse("/signin", status_code=303, headers=_NO_STORE))

    def routes(self) -> list[Route]:
        return [
            Route("/api/session", self.api_start, methods=["POST"]),
            Route("/api/session", self.api_end, methods=["DELETE"]),
            Route("/signin", self.page, methods=["GET"]),
            Route("/signin", self.form_start, methods=["POST"]),
            Route("/signout", self.form_end, methods=["POST"]),
        ]
