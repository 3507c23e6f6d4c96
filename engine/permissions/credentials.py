"""Who a token or a session belongs to, cached per process and invalidated by a stamp.

Checking an API token or a session cookie against the database on every request
cost a connection, a transaction and two statements, about a fifth of an API
read (issue 13). ``CredentialCache`` keeps, per process, what the last check
found: tokens keyed by their SHA-256 hash (never the plaintext), sessions by
(user id, session epoch). An entry is trusted while

- the ``credentials`` stamp (``versions.credentials_changed``) has not moved:
  revocation, deactivation, reactivation, password changes and ended sessions
  bump it, and every process reads it at most every ``check_interval`` seconds,
  so a revoked token stops working in every worker within that time;
- it is younger than ``ttl`` seconds (a safety net for changes made behind the
  engine's back, e.g. by hand in SQL);
- and, for a token, its own ``expires_at`` is still ahead (compared in memory).

Only successful checks are cached: an unknown token always reaches the
database, so random tokens cannot fill the cache. ``ttl=0`` turns caching off
(every call reads the database), which is what a ``LiveRuntime`` with
``check_interval=0`` asks for.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine

from engine.errors import NotFoundError
from engine.permissions import versions
from engine.permissions._clock import utcnow
from engine.permissions.identity import User, get_user
from engine.permissions.tokens import LAST_USED_RESOLUTION, TokenCheck, check_token, token_hash

#: How often each process reads the credentials stamp: a revocation holds everywhere
#: within this time.
CHECK_INTERVAL = 0.5
#: How long an entry is trusted even if the stamp never moves.
TTL = 60.0
#: Entries kept before the cache starts over (a bound on memory, not an LRU).
MAX_ENTRIES = 20_000

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class _TokenEntry:
    check: TokenCheck
    stamp: int
    cached_at: float
    touched_at: float


@dataclass(frozen=True)
class _SessionEntry:
    user: User
    stamp: int
    cached_at: float


class CredentialCache:
    """Per-process cache of token and session checks (see the module docstring).

    Parameters:
        engine: the database holding users, tokens and the stamps.
        check_interval: seconds between reads of the credentials stamp (0: every call).
        ttl: seconds an entry is trusted at most (0: no caching).
        monotonic, clock: injectable clocks for tests.
    """

    def __init__(self, engine: Engine, *, check_interval: float = CHECK_INTERVAL,
                 ttl: float = TTL, max_entries: int = MAX_ENTRIES,
                 monotonic: Callable[[], float] = time.monotonic,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.check_interval = check_interval
        self.ttl = ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = -1
        self._checked_at = float("-inf")
        self._tokens: dict[str, _TokenEntry] = {}
        self._sessions: dict[tuple[int, int], _SessionEntry] = {}
        self.misses = 0  # database checks made (observable in tests and benchmarks)

    # --- the stamp ------------------------------------------------------------------------------

    def stamp(self) -> int:
        """The credentials stamp, read from the database at most every ``check_interval``."""
        if self._monotonic() - self._checked_at < self.check_interval:
            return self._stamp
        with self._lock:
            if self._monotonic() - self._checked_at >= self.check_interval:
                found = versions.stamps(self.engine).get(versions.CREDENTIALS, 0)
                if found != self._stamp:
                    self._tokens, self._sessions = {}, {}
                    self._stamp = found
                self._checked_at = self._monotonic()
            return self._stamp

    def clear(self) -> None:
        """Forget every entry (the next calls read the database)."""
        self._tokens, self._sessions = {}, {}

    # --- tokens ---------------------------------------------------------------------------------

    def token(self, plaintext: str) -> TokenCheck:
        """The check of a presented token: cached, or ``check_token`` on the database.

        Raises ``AuthenticationError`` for an unknown, revoked or expired token or a
        deactivated user. ``needs_touch`` is true at most once per
        ``LAST_USED_RESOLUTION`` per token and process.
        """
        if self.ttl <= 0:
            return self._check(plaintext)
        stamp = self.stamp()
        key = token_hash(plaintext) if isinstance(plaintext, str) else ""
        entry = self._tokens.get(key)
        now = self._monotonic()
        if entry is not None and self._fresh(entry, stamp, now):
            if not _needs_touch(entry, now):
                return entry.check
            self._tokens[key] = _TokenEntry(entry.check, entry.stamp, entry.cached_at, now)
            return TokenCheck(user=entry.check.user, token_id=entry.check.token_id,
                              needs_touch=True, expires_at=entry.check.expires_at)
        check = self._check(plaintext)  # raises for a bad token: nothing is cached
        self._remember(self._tokens, key, _TokenEntry(_untouched(check), stamp, now, now))
        return check

    def knows(self, plaintext: str) -> bool:
        """Whether this process found the token good under the current stamp: one hash and a
        dict lookup, no database. The API reads a body before authenticating only for a
        token it knows, so no one without a valid token makes the server read or parse one."""
        if not isinstance(plaintext, str) or self.ttl <= 0:
            return False
        entry = self._tokens.get(token_hash(plaintext))
        return entry is not None and entry.stamp == self._stamp

    def answers_from_memory(self, plaintext: str) -> bool:
        """Whether ``token`` would answer without the database: the token known under a
        stamp not yet due for a read, within its time to live, not expired, its last
        use recorded within ``LAST_USED_RESOLUTION``. The API runs a read on the event
        loop only then: a token check that must read, or touch (a write that may wait
        for SQLite's write lock), goes to a request thread."""
        if not isinstance(plaintext, str) or self.ttl <= 0:
            return False
        now = self._monotonic()
        if now - self._checked_at >= self.check_interval:
            return False
        entry = self._tokens.get(token_hash(plaintext))
        return (entry is not None and self._fresh(entry, self._stamp, now)
                and not _needs_touch(entry, now))

    def _fresh(self, entry: _TokenEntry, stamp: int, now: float) -> bool:
        """Whether ``entry`` may answer for its token: cached under ``stamp``, within its
        time to live, and the token not expired (the one test ``token`` and
        ``answers_from_memory`` both apply)."""
        return (entry.stamp == stamp and now - entry.cached_at < self.ttl
                and not _expired(entry.check.expires_at, self._clock()))

    def _check(self, plaintext: str) -> TokenCheck:
        self.misses += 1
        with self.engine.connect() as conn:
            return check_token(conn, plaintext, now=self._clock())

    # --- sessions -------------------------------------------------------------------------------

    def session_user(self, user_id: int, epoch: int) -> User | None:
        """The active user a session issued at ``epoch`` belongs to, or None if it ended."""
        stamp = self.stamp() if self.ttl > 0 else 0
        key = (user_id, epoch)
        entry = self._sessions.get(key)
        now = self._monotonic()
        if self.ttl > 0 and entry is not None and entry.stamp == stamp \
                and now - entry.cached_at < self.ttl:
            return entry.user
        self.misses += 1
        with self.engine.connect() as conn:
            try:
                user = get_user(conn, user_id)
            except NotFoundError:
                return None
        if not user.active or user.session_epoch != epoch:
            return None
        if self.ttl > 0:
            self._remember(self._sessions, key, _SessionEntry(user, stamp, now))
        return user

    def _remember(self, store: dict[_K, _V], key: _K, value: _V) -> None:
        if len(store) >= self.max_entries:
            store.clear()
        store[key] = value


def _expired(expires_at: dt.datetime | None, now: dt.datetime) -> bool:
    return expires_at is not None and expires_at <= now


def _needs_touch(entry: _TokenEntry, now: float) -> bool:
    """Whether the token's last use is due to be recorded again (``LAST_USED_RESOLUTION``)."""
    return now - entry.touched_at >= LAST_USED_RESOLUTION.total_seconds()


def _untouched(check: TokenCheck) -> TokenCheck:
    return TokenCheck(user=check.user, token_id=check.token_id, needs_touch=False,
                      expires_at=check.expires_at)
