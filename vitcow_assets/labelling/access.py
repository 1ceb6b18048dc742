"""Who may call the labelling API and read the crop pages, whose labels they may write, and
whose labels they may read.

When tokens are required (the page served beyond 127.0.0.1, or ``--require-tokens``),
every call is signed in: by ``Authorization: Bearer <token>`` (``labelling.tokens``;
scripts), or by the session cookie a browser got from signing in once (``sign_in``,
``labelling.sessions``); without a valid one the answer is 401 and nothing is read or
stored. A Bearer header wins over a cookie. A token writes only its own annotator's labels
and undos (a request naming another annotator is refused with 403, nothing stored);
decisions need a reviewer's token. A write signed in by the cookie must come from this
server's own pages (``Sec-Fetch-Site: same-origin`` where the browser sends it; the
cookie is ``SameSite=Strict`` too): 403 otherwise.

**Reading labels.** An annotator's token (or session) reads only its own annotator's labels
and history (naming another: 403) and no decisions or conflicts, so double labelling stays
blind; a reviewer reads everyone's. Served on 127.0.0.1 without ``--require-tokens`` the
server is open as before: a name is taken at its word and, without a sign-in, every label
can be read; a Bearer token, if sent, must still be valid (other schemes, e.g. a proxy's
Basic credentials, are ignored), a cookie that signs nobody in is ignored, and deciding
needs a name that holds a reviewer token.

No error message ever repeats a token or a session id.

May import starlette's request type and the labelling modules; no dagster.
"""

from starlette.requests import Request

from vitcow_assets.labelling.events import NAME_CHARS
from vitcow_assets.labelling.sessions import SessionStore
from vitcow_assets.labelling.tokens import Identity, TokenStore

#: hosts that serve this machine only: tokens are optional there
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
BEARER = "bearer"
SESSION_COOKIE = "vitcow_session"
#: ``Sec-Fetch-Site`` values a cookie-signed write may come with (absent: an older browser, or not a browser)
SAME_ORIGIN = "same-origin"
_READS = frozenset({"GET", "HEAD"})
NEEDS_SIGN_IN = "sign in: this server needs a token (Authorization: Bearer TOKEN, or sign in on its page; vitcow labels token NAME makes one)"
SESSION_ENDED = "sign in: your sign-in has ended (expired, signed out, or its token revoked); sign in again"


class ApiError(Exception):
    """An API error: its status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def tokens_needed(host: str, require_tokens: bool) -> bool:
    """Tokens are needed when asked for, or when the page is served beyond this machine."""
    return require_tokens or host not in LOCAL_HOSTS


def cookie_name(request: Request) -> str:
    """The session cookie's name for the address the browser asked: cookies ignore ports, so
    two servers on one host (8765, 9000) keep their sign-ins apart by name."""
    port = request.url.port
    return f"{SESSION_COOKIE}_{port}" if port else SESSION_COOKIE


def sees_everyone(identity: Identity | None) -> bool:
    """Whether the caller reads every annotator's labels: a reviewer, or anyone on an open
    server who has not signed in."""
    return identity is None or identity.reviewer


def check_annotator(value, field: str = "annotator") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_CHARS or value != value.strip():
        where = " (?annotator=NAME)" if field == "annotator" else ""
        raise ApiError(400, f"{field}: give a name of 1 to {NAME_CHARS} characters{where}")
    return value


class Access:
    """The API's sign-in rule over a token store."""

    def __init__(self, store: TokenStore | SessionStore, required: bool) -> None:
        self.store, self.required = store, required

    def identify(self, request: Request) -> Identity | None:
        """The caller's identity (None: not signed in, tokens not required); 401 otherwise."""
        header = request.headers.get("authorization")
        scheme, _, token = (header or "").strip().partition(" ")
        if header is not None and scheme.lower() == BEARER:
            identity = self.store.identify(token.strip())
            if identity is None:
                raise ApiError(401, "sign in: give the token as 'Authorization: Bearer TOKEN'" if not token.strip()
                               else "sign in: that token is not valid (mistyped, revoked or never made)")
            return identity
        session = request.cookies.get(cookie_name(request))
        if session is not None:
            identity = self.store.session_identity(session)
            if identity is not None:
                self._same_origin_write(request)
                return identity
            if self.required:
                raise ApiError(401, SESSION_ENDED)
        if not self.required:
            return None  # no sign-in, a stale cookie, or e.g. a proxy's Basic credentials: not ours to judge
        if header is not None:
            raise ApiError(401, "sign in: give the token as 'Authorization: Bearer TOKEN'")
        raise ApiError(401, NEEDS_SIGN_IN)

    @staticmethod
    def _same_origin_write(request: Request) -> None:
        """A write signed in by the cookie comes from this server's own pages (403 otherwise)."""
        site = request.headers.get("sec-fetch-site")
        if request.method not in _READS and site is not None and site != SAME_ORIGIN:
            raise ApiError(403, f"a signed-in browser writes only from this server's own pages (this request came from a {site} page)")

    @staticmethod
    def writer(identity: Identity | None, claimed, what: str = "labels", field: str = "annotator") -> str:
        """The name a write goes under: the token's (a different ``claimed`` name: 403), or,
        without a token, ``claimed`` (the request's ``field``)."""
        if identity is None:
            return check_annotator(claimed, field)
        if claimed is None:
            return identity.annotator
        name = check_annotator(claimed, field)
        if name != identity.annotator:
            raise ApiError(403, f"this token is {identity.annotator}'s: it cannot write {what} of {name}")
        return name

    @classmethod
    def reviewer(cls, identity: Identity | None, claimed) -> str:
        """The reviewer a decision goes under (a token that is not a reviewer's: 403; without
        a token the store checks the name holds a reviewer token)."""
        name = cls.writer(identity, claimed, "decisions", "reviewer")
        if identity is not None and not identity.reviewer:
            raise ApiError(403, f"{name} is not a reviewer: deciding needs a reviewer's token (vitcow labels token {name} --role reviewer)")
        return name

    @staticmethod
    def reads_of(identity: Identity | None, claimed) -> str | None:
        """Whose labels a read returns: ``claimed`` (None: everyone's) for a reviewer or
        without a sign-in; an annotator's own only (naming another: 403)."""
        if sees_everyone(identity):
            return claimed
        if claimed is not None and claimed != identity.annotator:
            raise ApiError(403, f"{identity.annotator} reads only their own labels, not {claimed}'s (a reviewer's token reads everyone's)")
        return identity.annotator

    @staticmethod
    def reviewer_reads(identity: Identity | None, what: str) -> None:
        """Conflicts and decisions are reviewers' reading (an annotator's token: 403)."""
        if not sees_everyone(identity):
            raise ApiError(403, f"{identity.annotator} is not a reviewer: {what} are for reviewers only")
