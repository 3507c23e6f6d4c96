"""Sign-in throttling: per client, per login, and a lock nobody can use as a weapon.

Failed sign-ins are kept for ``WINDOW`` in ``tp_signin_failure`` with the login
tried and the client (its address) that tried it. Two limits follow:

* a **client** with ``CLIENT_FAILURES`` failures in the window (whatever logins
  it tried) is refused until its failures age out: guessing many logins, or one,
  from one place stops there;
* a **login** with ``LOGIN_FAILURES`` failures in the window is locked -- but
  only for the clients that failed on it. A client that has not failed on that
  login still gets its try, and a correct password signs in and clears the
  lock. So an attacker who knows a login can slow guessing at it down to one
  try per fresh client per window, and can never keep its owner out: the
  owner's own browser has not failed.

Whether a login exists plays no part in any of this (the rows are keyed by the
login as typed), so neither the lock nor its message tells which logins exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select

from engine.permissions import _tables as t

WINDOW = dt.timedelta(minutes=15)
LOGIN_FAILURES = 5
CLIENT_FAILURES = 20
#: What the client column holds: an IPv6 address with a zone fits in 64.
CLIENT_LENGTH = 64


def client_key(client: str | None) -> str:
    """The stored form of a client's address ("" when the caller does not know it)."""
    return (client or "")[:CLIENT_LENGTH]


@dataclass(frozen=True)
class Throttled:
    """A refusal: who is throttled (``client`` or ``login``) and until when."""

    scope: str
    until: dt.datetime


def throttled(conn: Connection, *, login: str, client: str | None,
              now: dt.datetime) -> Throttled | None:
    """Whether this client may not try this login now, and until when."""
    f = t.signin_failure
    client = client_key(client)
    since = now - WINDOW
    count, last = conn.execute(
        select(func.count(), func.max(f.c.at)).where(f.c.client == client, f.c.at > since)
    ).one()
    if count >= CLIENT_FAILURES:
        return Throttled("client", _aware(last) + WINDOW)
    on_login = conn.execute(
        select(func.count()).where(f.c.login == login, f.c.at > since)).scalar_one()
    if on_login < LOGIN_FAILURES:
        return None
    mine = conn.execute(
        select(func.max(f.c.at)).where(f.c.login == login, f.c.client == client, f.c.at > since)
    ).scalar_one_or_none()
    return None if mine is None else Throttled("login", _aware(mine) + WINDOW)


def record_failure(conn: Connection, *, login: str, client: str | None,
                   now: dt.datetime) -> None:
    """Count a failed sign-in (and drop this login's rows that have aged out)."""
    f = t.signin_failure
    conn.execute(delete(f).where(f.c.login == login, f.c.at <= now - WINDOW))
    conn.execute(insert(f).values(login=login[:150], client=client_key(client), at=now))


def clear(conn: Connection, *, login: str) -> None:
    """A correct password, or a new one set: the login's failures stop counting."""
    conn.execute(delete(t.signin_failure).where(t.signin_failure.c.login == login))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
