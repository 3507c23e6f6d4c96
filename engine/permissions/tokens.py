"""API tokens: shown once, stored as a SHA-256 hash, revocable, optionally expiring.

A token is 32 random bytes, so a fast unsalted hash is enough (nothing to
brute-force, unlike a password) and lets ``verify_token`` look it up by index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, insert, select, update

from engine.errors import AuthenticationError, NotFoundError, ValidationError
from engine.messages import M
from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions._clock import as_utc, utcnow
from engine.permissions.identity import User, get_user

TOKEN_PREFIX = "tpk_"


@dataclass(frozen=True)
class TokenInfo:
    """What lists and admin screens show about a token (never the secret)."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_token(
    conn: Connection, user_id: int, *, name: str, expires_at: dt.datetime | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token for the user; returns its info and the plaintext, shown only this once."""
    if not name or not name.strip() or len(name) > 100:
        raise ValidationError("api_token", {"name": M("required, at most 100 characters")})
    now = utcnow()
    if expires_at is not None and as_utc(expires_at) <= now:  # type: ignore[operator]
        raise ValidationError("api_token", {"expires_at": M("must be in the future")})
    get_user(conn, user_id)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        insert(t.api_token).values(
            user_id=user_id, name=name.strip(), prefix=plaintext[:12],
            token_hash=token_hash(plaintext), created_at=now, expires_at=expires_at,
        ).returning(t.api_token.c.id)
    ).scalar_one()
    return get_token(conn, int(token_id)), plaintext


def get_token(conn: Connection, token_id: int) -> TokenInfo:
    row = conn.execute(select(t.api_token).where(t.api_token.c.id == token_id)).first()
    if row is None:
        raise NotFoundError("api_token", token_id)
    return TokenInfo(id=int(row.id), user_id=int(row.user_id), name=row.name, prefix=row.prefix,
                     created_at=as_utc(row.created_at), expires_at=as_utc(row.expires_at),  # type: ignore[arg-type]
                     last_used_at=as_utc(row.last_used_at), revoked_at=as_utc(row.revoked_at))


def list_tokens(conn: Connection, user_id: int) -> list[TokenInfo]:
    ids = conn.execute(select(t.api_token.c.id).where(t.api_token.c.user_id == user_id)
                       .order_by(t.api_token.c.id)).scalars()
    return [get_token(conn, int(i)) for i in ids]


def revoke_token(conn: Connection, token_id: int) -> None:
    """Revoke a token for good (idempotent: a second revoke keeps the first time)."""
    get_token(conn, token_id)
    _revoke(conn, t.api_token.c.id == token_id)


def revoke_user_tokens(conn: Connection, user_id: int) -> int:
    """Revoke every live token of a user; returns how many.

    Called when a password is changed or reset and when a user is reactivated:
    a token made before is not proof of who holds it now.
    """
    return _revoke(conn, t.api_token.c.user_id == user_id)


def _revoke(conn: Connection, which: ColumnElement[bool]) -> int:
    """The one place tokens stop working: revoke, then move the ``tokens`` stamp.

    Every process that caches token checks keys them by that stamp, so a
    revocation counts from the next request everywhere (in the same
    transaction as the revocation, like the policy and org stamps).
    """
    done = conn.execute(update(t.api_token)
                        .where(which, t.api_token.c.revoked_at.is_(None))
                        .values(revoked_at=utcnow()))
    if done.rowcount:
        versions.credentials_changed(conn)
    return int(done.rowcount)


#: ``last_used_at`` is refreshed at most this often: recording every request would
#: make each API read a write (and on SQLite take the database's one write lock).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class TokenCheck:
    """A valid token: whose it is, and whether its last use should be recorded."""

    user: User
    token_id: int
    needs_touch: bool
    expires_at: dt.datetime | None = None  # lets a cached check expire on time


def check_token(conn: Connection, plaintext: str, *, now: dt.datetime | None = None
                ) -> TokenCheck:
    """Validate a presented token without writing; ``AuthenticationError`` if unusable."""
    now = now or utcnow()
    if not isinstance(plaintext, str) or not plaintext.startswith(TOKEN_PREFIX):
        raise AuthenticationError("invalid", "invalid API token")
    row = conn.execute(
        select(t.api_token.c.id, t.api_token.c.user_id, t.api_token.c.expires_at,
               t.api_token.c.revoked_at, t.api_token.c.last_used_at)
        .where(t.api_token.c.token_hash == token_hash(plaintext))
    ).first()
    if row is None:
        raise AuthenticationError("invalid", "invalid API token")
    if row.revoked_at is not None:
        raise AuthenticationError("revoked", "this API token was revoked")
    expires_at = as_utc(row.expires_at)
    if expires_at is not None and expires_at <= now:
        raise AuthenticationError("expired", "this API token has expired")
    user = get_user(conn, int(row.user_id))
    if not user.active:
        raise AuthenticationError("inactive", "this account is deactivated")
    last_used = as_utc(row.last_used_at)
    stale = last_used is None or now - last_used >= LAST_USED_RESOLUTION
    return TokenCheck(user=user, token_id=int(row.id), needs_touch=stale, expires_at=expires_at)


def touch_token(conn: Connection, token_id: int, *, now: dt.datetime | None = None) -> None:
    """Record a use of the token."""
    conn.execute(update(t.api_token).where(t.api_token.c.id == token_id)
                 .values(last_used_at=now or utcnow()))


def verify_token(conn: Connection, plaintext: str, *, now: dt.datetime | None = None) -> User:
    """The active user a presented token belongs to, or ``AuthenticationError``.

    Records the use (at most once per ``LAST_USED_RESOLUTION``) on ``conn``.
    """
    now = now or utcnow()
    check = check_token(conn, plaintext, now=now)
    if check.needs_touch:
        touch_token(conn, check.token_id, now=now)
    return check.user
