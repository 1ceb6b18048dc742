"""Sign-in tokens: who an API call comes from, and in which role.

A token is ``vct_`` and 43 URL-safe characters (32 random bytes from ``secrets``). Only its
SHA-256 is stored (``schema.tokens``): a token is shown once, when it is made, and can be
checked but never read back. Plain SHA-256 is enough here (no slow password hash): the
token is random with 256 bits, not a password a person chose. A token names one annotator
and a role: ``annotator`` (labels and undoes their own labels) or ``reviewer`` (also
decides conflicts). Revoking stamps every token of an annotator; revoked tokens no longer
sign in, and the browser sessions made with them (``labelling.sessions``) end. ``TokenStore`` is the part of ``store.LabelStore`` that keeps them.

May import sqlalchemy and the labelling ``events``/``schema`` modules; no web framework.
"""

import dataclasses
import hashlib
import secrets

import sqlalchemy as sa

from vitcow_assets.labelling.events import LabelError, check_name, utcnow
from vitcow_assets.labelling.schema import ROLES, tokens

TOKEN_PREFIX = "vct_"
TOKEN_BYTES = 32
#: longest text taken as a token (anything longer is not one; it is not even hashed)
TOKEN_MAX_CHARS = 128
REVIEWER = "reviewer"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(text) -> bool:
    return isinstance(text, str) and text.startswith(TOKEN_PREFIX) and len(text) <= TOKEN_MAX_CHARS


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to."""

    annotator: str
    role: str

    @property
    def reviewer(self) -> bool:
        return self.role == REVIEWER

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class TokenStore:
    """Tokens in the label database (mixed into ``store.LabelStore``: uses its ``engine``
    and ``_write``)."""

    def create_token(self, annotator: str, role: str = "annotator") -> str:
        """A new token for ``annotator`` in ``role``; returned once, stored hashed."""
        check_name("annotator", annotator)
        if role not in ROLES:
            raise LabelError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        token = new_token()
        with self._write() as conn:
            conn.execute(tokens.insert().values(token_sha256=token_sha256(token), annotator=annotator, role=role, created_at=utcnow()))
        return token

    def identify(self, token) -> Identity | None:
        """Who ``token`` signs in (None: not a token in force)."""
        if not looks_like_token(token):
            return None
        query = sa.select(tokens.c.annotator, tokens.c.role).where(tokens.c.token_sha256 == token_sha256(token), tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Identity(row.annotator, row.role)

    def revoke_tokens(self, annotator: str) -> int:
        """Revoke every token of ``annotator`` in force; how many were."""
        check_name("annotator", annotator)
        with self._write() as conn:
            result = conn.execute(
                tokens.update().where(tokens.c.annotator == annotator, tokens.c.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
            return result.rowcount

    def role_of(self, annotator: str) -> str | None:
        """``reviewer`` if ``annotator`` holds a reviewer token in force, else ``annotator``
        if they hold any token in force, else None."""
        query = sa.select(tokens.c.role).where(tokens.c.annotator == annotator, tokens.c.revoked_at.is_(None)).distinct()
        with self.engine.connect() as conn:
            roles = set(conn.execute(query).scalars())
        return REVIEWER if REVIEWER in roles else (roles.pop() if roles else None)
