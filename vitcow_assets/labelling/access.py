"""Who may call the labelling API, and whose labels they may write.

When tokens are required (the page served beyond 127.0.0.1, or ``--require-tokens``),
every API call carries ``Authorization: Bearer <token>`` (``labelling.tokens``); without a
valid one the answer is 401 and nothing is read or stored. A token writes only its own
annotator's labels and undos (a request naming another annotator is refused with 403,
nothing stored); decisions need a reviewer's token. Served on 127.0.0.1 without
``--require-tokens`` the API is open as before: a name is taken at its word, a Bearer
token, if sent, must still be valid (other schemes, e.g. a proxy's Basic credentials, are
ignored), and deciding needs a name that holds a reviewer token.

No error message ever repeats a token.

May import starlette's request type and the labelling modules; no dagster.
"""

from starlette.requests import Request

from vitcow_assets.labelling.events import NAME_CHARS
from vitcow_assets.labelling.tokens import Identity, TokenStore

#: hosts that serve this machine only: tokens are optional there
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
BEARER = "bearer"


class ApiError(Exception):
    """An API error: its status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def tokens_needed(host: str, require_tokens: bool) -> bool:
    """Tokens are needed when asked for, or when the page is served beyond this machine."""
    return require_tokens or host not in LOCAL_HOSTS


def check_annotator(value, field: str = "annotator") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_CHARS or value != value.strip():
        where = " (?annotator=NAME)" if field == "annotator" else ""
        raise ApiError(400, f"{field}: give a name of 1 to {NAME_CHARS} characters{where}")
    return value


class Access:
    """The API's sign-in rule over a token store."""

    def __init__(self, store: TokenStore, required: bool) -> None:
        self.store, self.required = store, required

    def identify(self, request: Request) -> Identity | None:
        """The caller's identity (None: no token, tokens not required); 401 otherwise."""
        header = request.headers.get("authorization")
        if header is None:
            if self.required:
                raise ApiError(401, "sign in: this server needs a token (Authorization: Bearer TOKEN; vitcow labels token NAME makes one)")
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != BEARER and not self.required:
            return None  # e.g. a proxy's Basic credentials in front of an open server: not ours to judge
        if scheme.lower() != BEARER or not token.strip():
            raise ApiError(401, "sign in: give the token as 'Authorization: Bearer TOKEN'")
        identity = self.store.identify(token.strip())
        if identity is None:
            raise ApiError(401, "sign in: that token is not valid (mistyped, revoked or never made)")
        return identity

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
