"""Users: creation, passwords, login with throttling, deactivation, session validity.

A browser session (signed cookie, owned by the UI) carries the user id and the
``session_epoch`` it was issued under. Changing the password, deactivating the
user or logging out everywhere bumps the epoch, so ``session_is_valid`` turns
every older session down without a session table to sweep.

Functions take the caller's ``Connection`` and write inside its transaction,
except ``authenticate``: a failed login must be counted even though the call
raises, so it commits its own bookkeeping before raising.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from engine.errors import AuthenticationError, DuplicateError, NotFoundError, ValidationError
from engine.messages import M
from engine.metadata.model import DEFAULT_LOCALE, SUPPORTED_LOCALES
from engine.permissions import _tables as t
from engine.permissions import throttle, versions
from engine.permissions._clock import utcnow
from engine.permissions.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)
from engine.storage.database import write_transaction
from engine.storage.settings import check_time_zone

#: Failures that lock a login (for the clients that failed), and for how long.
MAX_FAILURES = throttle.LOGIN_FAILURES
LOCK_DURATION = throttle.WINDOW

_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,149}$")
_LEVEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class User:
    """A user as the engine sees it (never the password hash)."""

    id: int
    login: str
    display_name: str
    email: str | None
    phone: str | None
    locale: str
    active: bool
    department_id: int | None
    level: str | None
    session_epoch: int
    time_zone: str | None = None  # None: the company's zone


_USER_COLUMNS = (t.user.c.id, t.user.c.login, t.user.c.display_name, t.user.c.email,
                 t.user.c.phone, t.user.c.locale, t.user.c.active, t.user.c.department_id,
                 t.user.c.level, t.user.c.session_epoch, t.user.c.time_zone)


def _user(row: Any) -> User:
    return User(id=int(row.id), login=row.login, display_name=row.display_name, email=row.email,
                phone=row.phone, locale=row.locale, active=bool(row.active),
                department_id=None if row.department_id is None else int(row.department_id),
                level=row.level, session_epoch=int(row.session_epoch), time_zone=row.time_zone)


def normalise_login(login: str) -> str:
    """Logins compare case-insensitively: stored and looked up lower-cased and trimmed."""
    return login.strip().lower() if isinstance(login, str) else ""


def _check_profile(*, login: str | None = None, display_name: str | None = None,
                   email: str | None = None, locale: str | None = None,
                   level: str | None = None) -> None:
    errors: dict[str, str] = {}
    if login is not None and not _LOGIN.match(login):
        errors["login"] = (M("1 to 150 characters: letters, digits and . _ @ + -, "
                           "starting with a letter or digit"))
    if display_name is not None and not (0 < len(display_name.strip()) <= 200):
        errors["display_name"] = M("required, at most 200 characters")
    if email is not None and (len(email) > 254 or not re.match(r"^[^@\s]+@[^@\s]+$", email)):
        errors["email"] = M("not an email address")
    if locale is not None and locale not in SUPPORTED_LOCALES:
        errors["locale"] = M("one of %(value)s", value=', '.join(SUPPORTED_LOCALES))
    if level is not None and not _LEVEL.match(level):
        errors["level"] = M("a lower-case identifier of at most 32 characters")
    if errors:
        raise ValidationError("user", errors)


def create_user(
    conn: Connection, *, login: str, display_name: str, email: str | None = None,
    phone: str | None = None, locale: str = DEFAULT_LOCALE, password: str | None = None,
    department_id: int | None = None, level: str | None = None,
) -> User:
    """Create an active user; without a password the user cannot log in until one is set."""
    login = normalise_login(login)
    _check_profile(login=login, display_name=display_name, email=email, locale=locale,
                   level=level)
    existing = conn.execute(select(t.user.c.id).where(t.user.c.login == login)).scalar()
    if existing is not None:
        raise DuplicateError("user", key="login", fields=("login",), values={"login": login},
                             existing_id=existing)
    if department_id is not None:
        _require_department(conn, department_id)
    user_id = conn.execute(
        insert(t.user).values(
            login=login, display_name=display_name.strip(), email=email, phone=phone,
            locale=locale, active=True, created_at=utcnow(),
            password_hash=hash_password(password) if password is not None else None,
            department_id=department_id, level=level, session_epoch=0, failed_logins=0,
        ).returning(t.user.c.id)
    ).scalar_one()
    versions.bump(conn, versions.ORG)  # the org snapshot lists every user
    return get_user(conn, int(user_id))


def _require_department(conn: Connection, department_id: int) -> None:
    found = conn.execute(
        select(t.department.c.id).where(t.department.c.id == department_id)
    ).scalar()
    if found is None:
        raise ValidationError("user", {"department_id": M("no department %(department_id)s",
                                                          department_id=department_id)})


def get_user(conn: Connection, user_id: int) -> User:
    row = conn.execute(select(*_USER_COLUMNS).where(t.user.c.id == user_id)).first()
    if row is None:
        raise NotFoundError("user", user_id)
    return _user(row)


def find_user(conn: Connection, login: str) -> User | None:
    """The user with this login (any case), or None."""
    row = conn.execute(
        select(*_USER_COLUMNS).where(t.user.c.login == normalise_login(login))
    ).first()
    return None if row is None else _user(row)


def update_profile(
    conn: Connection, user_id: int, *, display_name: str | None = None,
    email: str | None = None, phone: str | None = None, locale: str | None = None,
) -> User:
    """Change the fields a user may edit about themselves."""
    _check_profile(display_name=display_name, email=email, locale=locale)
    values = {k: v for k, v in (("display_name", display_name), ("email", email),
                                ("phone", phone), ("locale", locale)) if v is not None}
    get_user(conn, user_id)
    if values:
        conn.execute(update(t.user).where(t.user.c.id == user_id).values(**values))
        versions.credentials_changed(conn)  # cached sessions carry the name and locale
    return get_user(conn, user_id)


def set_time_zone(conn: Connection, user_id: int, time_zone: str | None) -> User:
    """Choose the zone the user reads and types times in; None follows the company's."""
    if time_zone is not None:
        check_time_zone(time_zone, subject="user")
    get_user(conn, user_id)
    conn.execute(update(t.user).where(t.user.c.id == user_id).values(time_zone=time_zone))
    return get_user(conn, user_id)


def set_password(conn: Connection, user_id: int, password: str) -> User:
    """Set a new password (an administrator's reset, or ``change_password``).

    Ends every existing session of the user, revokes their API tokens and lifts
    any sign-in lock on the login.
    """
    encoded = hash_password(password)
    user = get_user(conn, user_id)
    conn.execute(
        update(t.user).where(t.user.c.id == user_id).values(
            password_hash=encoded, session_epoch=t.user.c.session_epoch + 1,
            failed_logins=0, locked_until=None,
        )
    )
    throttle.clear(conn, login=user.login)
    # Whoever knew the old password may have made tokens with it.
    _revoke_tokens(conn, user_id)
    versions.credentials_changed(conn)
    return get_user(conn, user_id)


def end_sessions(conn: Connection, user_id: int) -> User:
    """Log the user out everywhere (bump the session epoch)."""
    get_user(conn, user_id)
    conn.execute(update(t.user).where(t.user.c.id == user_id)
                 .values(session_epoch=t.user.c.session_epoch + 1))
    versions.credentials_changed(conn)
    return get_user(conn, user_id)


def deactivate_user(conn: Connection, user_id: int) -> User:
    """Stop the user logging in; their sessions end and their tokens stop working."""
    get_user(conn, user_id)
    conn.execute(update(t.user).where(t.user.c.id == user_id)
                 .values(active=False, session_epoch=t.user.c.session_epoch + 1))
    # Grants of an inactive user vanish from the policy index: reload everywhere.
    versions.bump(conn, versions.POLICY)
    versions.credentials_changed(conn)  # cached token and session checks end everywhere
    return get_user(conn, user_id)


def reactivate_user(conn: Connection, user_id: int) -> User:
    """Let a deactivated user sign in again -- with none of their old API tokens.

    A token made before the deactivation may have leaked with whatever caused
    it; the user makes new ones after signing in.
    """
    get_user(conn, user_id)
    conn.execute(update(t.user).where(t.user.c.id == user_id)
                 .values(active=True, failed_logins=0, locked_until=None))
    _revoke_tokens(conn, user_id)
    versions.bump(conn, versions.POLICY)
    versions.credentials_changed(conn)
    return get_user(conn, user_id)


def _revoke_tokens(conn: Connection, user_id: int) -> None:
    # tokens.py imports this module (User, get_user); the revocation lives there.
    from engine.permissions.tokens import revoke_user_tokens

    revoke_user_tokens(conn, user_id)


def session_is_valid(conn: Connection, user_id: int, epoch: int) -> bool:
    """Whether a session issued at ``epoch`` for ``user_id`` still stands."""
    row = conn.execute(
        select(t.user.c.active, t.user.c.session_epoch).where(t.user.c.id == user_id)
    ).first()
    return row is not None and bool(row.active) and int(row.session_epoch) == epoch


def authenticate(
    engine: Engine, login: str, password: str, *, client: str | None = None,
    now: dt.datetime | None = None,
) -> User:
    """The active user whose login and password these are, or ``AuthenticationError``.

    ``client`` is the address the attempt came from: failures are throttled per
    client and per login (``throttle``), and a locked login still opens for a
    client that has not failed on it. Every attempt takes the same path --
    exactly one Argon2 verification (against a dummy hash when the login is
    unknown, has no password or is throttled) -- and gets the same answer
    whether the login exists or not, so neither time nor message tells them
    apart. Every attempt is recorded; the bookkeeping commits even though the
    call raises.
    """
    now = now or utcnow()
    with write_transaction(engine) as conn:
        outcome = _attempt(conn, normalise_login(login), password, client, now)
    if isinstance(outcome, AuthenticationError):
        raise outcome
    return outcome


def _attempt(conn: Connection, login: str, password: str, client: str | None,
             now: dt.datetime) -> User | AuthenticationError:
    row = conn.execute(
        select(t.user.c.id, t.user.c.active, t.user.c.password_hash)
        .where(t.user.c.login == login)
    ).first()
    user_id = None if row is None else int(row.id)
    refused = throttle.throttled(conn, login=login, client=client, now=now)
    # One verification on every path: a throttled or unknown login costs what a real one does.
    matches = verify_password(None if refused or row is None else row.password_hash, password)
    if refused is not None:
        # Not counted again: the lock does not move while it is served.
        _record(conn, login, user_id, now, ok=False, reason=f"throttled_{refused.scope}")
        return _locked(refused.until)
    if row is None or not matches:
        return _failed(conn, login, user_id, client, now,
                       reason="unknown" if row is None else "bad_password")
    if not row.active:
        _record(conn, login, user_id, now, ok=False, reason="inactive")
        return AuthenticationError("inactive", "this account is deactivated")
    throttle.clear(conn, login=login)
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    conn.execute(update(t.user).where(t.user.c.id == row.id).values(**values))
    _record(conn, login, user_id, now, ok=True, reason="ok")
    return get_user(conn, int(row.id))


def _failed(conn: Connection, login: str, user_id: int | None, client: str | None,
            now: dt.datetime, *, reason: str) -> AuthenticationError:
    """Count a failure; the one that reaches a limit already answers "locked"."""
    throttle.record_failure(conn, login=login, client=client, now=now)
    _record(conn, login, user_id, now, ok=False, reason=reason)
    refused = throttle.throttled(conn, login=login, client=client, now=now)
    return _locked(refused.until) if refused is not None else _invalid()


def change_password(
    engine: Engine, user_id: int, *, current: str, new: str, client: str | None = None,
    now: dt.datetime | None = None,
) -> User:
    """A user changes their own password, proving the current one first.

    A wrong current password counts as a failed sign-in of that login from that
    client (a stolen session must not become a free password oracle) and raises
    ``ValidationError`` on ``current_password``; a throttled client is refused
    with ``AuthenticationError`` ("locked") after the same one verification. On
    success every session of the user ends (the caller starts a new one for the
    browser that made the change), their API tokens are revoked and the new
    user (with the new session epoch) is returned.
    """
    now = now or utcnow()
    with write_transaction(engine) as conn:
        outcome = _change(conn, user_id, current=current, new=new, client=client, now=now)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _change(conn: Connection, user_id: int, *, current: str, new: str, client: str | None,
            now: dt.datetime) -> User | ValidationError | AuthenticationError:
    user = get_user(conn, user_id)
    encoded = conn.execute(select(t.user.c.password_hash).where(t.user.c.id == user_id)
                           ).scalar_one_or_none()
    refused = throttle.throttled(conn, login=user.login, client=client, now=now)
    matches = verify_password(None if refused else encoded, current)
    if refused is not None:
        _record(conn, user.login, user_id, now, ok=False, reason=f"throttled_{refused.scope}")
        return _locked(refused.until)
    if not matches:
        failure = _failed(conn, user.login, user_id, client, now, reason="bad_current_password")
        if failure.reason == "locked":
            return failure
        return ValidationError("user", {"current_password": M("not your current password")})
    if new == current:
        return ValidationError("user", {"password": M("must differ from the current password")})
    try:
        check_password_rules(new)
    except ValidationError as exc:
        return exc
    return set_password(conn, user_id, new)


def _record(conn: Connection, login: str, user_id: int | None, now: dt.datetime, *,
            ok: bool, reason: str) -> None:
    conn.execute(insert(t.login_attempt).values(login=login[:150], user_id=user_id, at=now,
                                                succeeded=ok, reason=reason))


def _invalid() -> AuthenticationError:
    return AuthenticationError("invalid", "invalid login or password")


def _locked(until: dt.datetime) -> AuthenticationError:
    return AuthenticationError(
        "locked", f"too many failed logins; try again after {until:%Y-%m-%d %H:%M} UTC",
        locked_until=until,
    )


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.user)).scalar_one())
