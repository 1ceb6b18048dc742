"""Browser sign-ins (sessions): what a session cookie stands for.

A browser signs in once with a token (``labelling.tokens``) and gets a session: a random
256-bit id (``vcs_`` and 43 URL-safe characters) that the server sets as an HttpOnly
cookie (``labelling.sign_in``). The cookie holds the session id, never the token; the
database keeps only the id's SHA-256 (``schema.sessions``), with the token it was made
with, when it was made and when it expires. A session signs in as its token's annotator
and role until it expires, is signed out (``ended_at``) or its token is revoked: all three
are checked on every use, so revoking a token ends its sessions at once. Expired and
ended sessions are deleted when a new one starts. ``SessionStore`` is the part of
``store.LabelStore`` that keeps them.

May import sqlalchemy and the labelling ``events``/``schema``/``tokens`` modules; no web framework.
"""

import dataclasses
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from vitcow_assets.labelling.events import LabelError, utcnow
from vitcow_assets.labelling.schema import sessions, tokens
from vitcow_assets.labelling.tokens import Identity, looks_like_token, token_sha256

SESSION_PREFIX = "vcs_"
SESSION_BYTES = 32
#: longest text taken as a session id (anything longer is not one; it is not even hashed)
SESSION_MAX_CHARS = 128


def new_session_id() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(SESSION_BYTES)


def session_sha256(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def looks_like_session(text) -> bool:
    return isinstance(text, str) and text.startswith(SESSION_PREFIX) and len(text) <= SESSION_MAX_CHARS


@dataclasses.dataclass(frozen=True)
class Session:
    """A session just started: its id (the cookie's value; shown once, never stored), who it
    signs in and when it ends (naive UTC)."""

    session_id: str
    identity: Identity
    expires_at: dt.datetime

    def __repr__(self) -> str:  # never print the id
        return f"Session({self.identity!r}, expires_at={self.expires_at.isoformat()})"


class SessionStore:
    """Sessions in the label database (mixed into ``store.LabelStore``: uses its ``engine``
    and ``_write``)."""

    def start_session(self, token, lifetime: dt.timedelta) -> Session | None:
        """A new session for the annotator of ``token`` (a token in force), lasting
        ``lifetime``; None when ``token`` signs nobody in."""
        if lifetime <= dt.timedelta(0):
            raise LabelError(f"a session must last a positive time, not {lifetime}")
        if not looks_like_token(token):
            return None
        now, session_id = utcnow(), new_session_id()
        with self._write() as conn:
            query = sa.select(tokens.c.id, tokens.c.annotator, tokens.c.role).where(
                tokens.c.token_sha256 == token_sha256(token), tokens.c.revoked_at.is_(None)
            )
            row = conn.execute(query).first()
            if row is None:
                return None
            conn.execute(sessions.delete().where(sa.or_(sessions.c.expires_at <= now, sessions.c.ended_at.is_not(None))))
            conn.execute(sessions.insert().values(session_sha256=session_sha256(session_id), token_id=row.id, created_at=now, expires_at=now + lifetime))
        return Session(session_id, Identity(row.annotator, row.role), now + lifetime)

    def session_identity(self, session_id) -> Identity | None:
        """Who ``session_id`` signs in: None unless it is a session not expired, not signed
        out, whose token is not revoked."""
        if not looks_like_session(session_id):
            return None
        query = (
            sa.select(tokens.c.annotator, tokens.c.role)
            .select_from(sessions.join(tokens, sessions.c.token_id == tokens.c.id))
            .where(sessions.c.session_sha256 == session_sha256(session_id), sessions.c.ended_at.is_(None),
                   sessions.c.expires_at > utcnow(), tokens.c.revoked_at.is_(None))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Identity(row.annotator, row.role)

    def end_session(self, session_id) -> bool:
        """Sign ``session_id`` out; whether it was a session in force."""
        if not looks_like_session(session_id):
            return False
        with self._write() as conn:
            result = conn.execute(
                sessions.update().where(sessions.c.session_sha256 == session_sha256(session_id), sessions.c.ended_at.is_(None)).values(ended_at=utcnow())
            )
            return result.rowcount > 0
