"""Identity on SQLite and PostgreSQL: passwords, login throttling, deactivation,
session epochs and API tokens."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from engine.errors import AuthenticationError, DuplicateError, NotFoundError, ValidationError
from engine.permissions import _tables as t
from engine.permissions.identity import (
    LOCK_DURATION,
    MAX_FAILURES,
    authenticate,
    create_user,
    deactivate_user,
    end_sessions,
    find_user,
    reactivate_user,
    session_is_valid,
    set_password,
)
from engine.permissions.tokens import create_token, list_tokens, revoke_token, verify_token
from engine.storage.database import write_transaction

PASSWORD = "correct horse battery"


def _make(engine: Engine, login: str = "ann", password: str | None = PASSWORD) -> int:
    with write_transaction(engine) as conn:
        return create_user(conn, login=login, display_name=login.title(), password=password,
                           email=f"{login}@example.com").id


def test_password_is_stored_as_argon2_hash_and_authenticates(ident_engine: Engine) -> None:
    user_id = _make(ident_engine)
    with ident_engine.connect() as conn:
        stored = conn.execute(select(t.user.c.password_hash)
                              .where(t.user.c.id == user_id)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    user = authenticate(ident_engine, "ANN ", PASSWORD)  # logins are case-insensitive
    assert user.id == user_id and user.login == "ann"


def test_wrong_password_and_unknown_login_give_the_same_error(ident_engine: Engine) -> None:
    _make(ident_engine)
    with pytest.raises(AuthenticationError) as wrong:
        authenticate(ident_engine, "ann", "not the password")
    with pytest.raises(AuthenticationError) as unknown:
        authenticate(ident_engine, "nobody", PASSWORD)
    assert wrong.value.reason == unknown.value.reason == "invalid"
    assert str(wrong.value) == str(unknown.value)


def test_user_without_password_cannot_log_in(ident_engine: Engine) -> None:
    _make(ident_engine, password=None)
    with pytest.raises(AuthenticationError, match="invalid"):
        authenticate(ident_engine, "ann", "")


def test_lock_after_repeated_failures_then_unlock_after_duration(ident_engine: Engine) -> None:
    _make(ident_engine)
    start = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)
    for i in range(MAX_FAILURES - 1):
        with pytest.raises(AuthenticationError) as err:
            authenticate(ident_engine, "ann", "wrong", now=start + dt.timedelta(seconds=i))
        assert err.value.reason == "invalid"
    with pytest.raises(AuthenticationError) as err:
        authenticate(ident_engine, "ann", "wrong", now=start + dt.timedelta(seconds=10))
    assert err.value.reason == "locked"
    assert err.value.locked_until == start + dt.timedelta(seconds=10) + LOCK_DURATION
    # Locked: even the right password is refused, and the lock does not move.
    with pytest.raises(AuthenticationError) as err:
        authenticate(ident_engine, "ann", PASSWORD, now=start + dt.timedelta(minutes=5))
    assert err.value.reason == "locked"
    after = start + dt.timedelta(seconds=11) + LOCK_DURATION
    assert authenticate(ident_engine, "ann", PASSWORD, now=after).login == "ann"
    # A success resets the count: four new failures do not lock again.
    for i in range(MAX_FAILURES - 1):
        with pytest.raises(AuthenticationError, match="invalid"):
            authenticate(ident_engine, "ann", "wrong", now=after + dt.timedelta(seconds=i + 1))


def test_unknown_logins_lock_too(ident_engine: Engine) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    reasons = []
    for i in range(MAX_FAILURES + 1):
        with pytest.raises(AuthenticationError) as err:
            authenticate(ident_engine, "ghost", "x" * 8, now=now + dt.timedelta(seconds=i))
        reasons.append(err.value.reason)
    assert reasons == ["invalid"] * (MAX_FAILURES - 1) + ["locked", "locked"]


def test_attempts_are_recorded(ident_engine: Engine) -> None:
    user_id = _make(ident_engine)
    with pytest.raises(AuthenticationError):
        authenticate(ident_engine, "ann", "wrong one")
    authenticate(ident_engine, "ann", PASSWORD)
    with ident_engine.connect() as conn:
        rows = conn.execute(select(t.login_attempt.c.user_id, t.login_attempt.c.reason)
                            .order_by(t.login_attempt.c.id)).all()
    assert [(r.user_id, r.reason) for r in rows] == [(user_id, "bad_password"), (user_id, "ok")]


def test_deactivated_user_cannot_log_in_and_sessions_and_tokens_stop(
        ident_engine: Engine) -> None:
    user_id = _make(ident_engine)
    user = authenticate(ident_engine, "ann", PASSWORD)
    with write_transaction(ident_engine) as conn:
        _, token = create_token(conn, user_id, name="script")
        assert session_is_valid(conn, user_id, user.session_epoch)
        deactivate_user(conn, user_id)
        assert not session_is_valid(conn, user_id, user.session_epoch)
        with pytest.raises(AuthenticationError) as err:
            verify_token(conn, token)
        assert err.value.reason == "inactive"
    with pytest.raises(AuthenticationError) as err:
        authenticate(ident_engine, "ann", PASSWORD)
    assert err.value.reason == "inactive"
    with pytest.raises(AuthenticationError) as err:  # a wrong password does not reveal it
        authenticate(ident_engine, "ann", "wrong password")
    assert err.value.reason == "invalid"
    with write_transaction(ident_engine) as conn:
        again = reactivate_user(conn, user_id)
        assert session_is_valid(conn, user_id, again.session_epoch)
        assert not session_is_valid(conn, user_id, user.session_epoch)  # old one stays dead
        # Reactivation does not revive old tokens (issue 8): they were revoked.
        with pytest.raises(AuthenticationError) as err:
            verify_token(conn, token)
        assert err.value.reason == "revoked"


def test_password_change_and_logout_everywhere_end_old_sessions(ident_engine: Engine) -> None:
    user_id = _make(ident_engine)
    epoch = authenticate(ident_engine, "ann", PASSWORD).session_epoch
    with write_transaction(ident_engine) as conn:
        changed = set_password(conn, user_id, "another good password")
        assert not session_is_valid(conn, user_id, epoch)
        assert session_is_valid(conn, user_id, changed.session_epoch)
        ended = end_sessions(conn, user_id)
        assert not session_is_valid(conn, user_id, changed.session_epoch)
        assert session_is_valid(conn, user_id, ended.session_epoch)
        assert not session_is_valid(conn, 9999, 0)
    with pytest.raises(AuthenticationError):
        authenticate(ident_engine, "ann", PASSWORD)
    assert authenticate(ident_engine, "ann", "another good password").id == user_id


def test_token_shown_once_stored_hashed_revocable_and_expiring(ident_engine: Engine) -> None:
    user_id = _make(ident_engine)
    now = dt.datetime.now(dt.UTC)
    with write_transaction(ident_engine) as conn:
        info, token = create_token(conn, user_id, name="ci")
        stored = conn.execute(select(t.api_token.c.token_hash)).scalar_one()
        assert token not in stored and len(stored) == 64
        assert verify_token(conn, token).id == user_id
        assert list_tokens(conn, user_id)[0].last_used_at is not None
        with pytest.raises(AuthenticationError, match="invalid"):
            verify_token(conn, token + "x")
        with pytest.raises(AuthenticationError, match="invalid"):
            verify_token(conn, "garbage")
        revoke_token(conn, info.id)
        with pytest.raises(AuthenticationError) as err:
            verify_token(conn, token)
        assert err.value.reason == "revoked"
        _, short = create_token(conn, user_id, name="short",
                                expires_at=now + dt.timedelta(hours=1))
        assert verify_token(conn, short, now=now).id == user_id
        with pytest.raises(AuthenticationError) as err:
            verify_token(conn, short, now=now + dt.timedelta(hours=2))
        assert err.value.reason == "expired"
        with pytest.raises(ValidationError):
            create_token(conn, user_id, name="past", expires_at=now - dt.timedelta(days=1))
        with pytest.raises(ValidationError):
            create_token(conn, user_id, name=" ")
        with pytest.raises(NotFoundError):
            revoke_token(conn, 424242)


def test_bad_user_input_is_refused(ident_engine: Engine) -> None:
    _make(ident_engine)
    with write_transaction(ident_engine) as conn:
        with pytest.raises(DuplicateError):
            create_user(conn, login="Ann", display_name="Other Ann")
        with pytest.raises(ValidationError) as err:
            create_user(conn, login="bad login!", display_name="", email="nope", locale="fr")
        assert set(err.value.field_errors) == {"login", "display_name", "email", "locale"}
        with pytest.raises(ValidationError) as err:
            create_user(conn, login="bob", display_name="Bob", password="short")
        assert set(err.value.field_errors) == {"password"}
        with pytest.raises(ValidationError) as err:
            create_user(conn, login="bob", display_name="Bob", department_id=77)
        assert set(err.value.field_errors) == {"department_id"}
        with pytest.raises(NotFoundError):
            set_password(conn, 9999, "long enough password")
        assert find_user(conn, "bob") is None


def test_token_use_is_recorded_at_most_once_a_minute(ident_engine: Engine) -> None:
    from engine.permissions.tokens import LAST_USED_RESOLUTION, check_token

    user_id = _make(ident_engine)
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    with write_transaction(ident_engine) as conn:
        _, token = create_token(conn, user_id, name="api")
        assert check_token(conn, token, now=start).needs_touch  # never used yet
        verify_token(conn, token, now=start)
        first = list_tokens(conn, user_id)[0].last_used_at
        assert first == start
        soon = start + LAST_USED_RESOLUTION / 2
        assert not check_token(conn, token, now=soon).needs_touch  # a read stays a read
        verify_token(conn, token, now=soon)
        assert list_tokens(conn, user_id)[0].last_used_at == first
        later = start + LAST_USED_RESOLUTION
        assert check_token(conn, token, now=later).needs_touch
        verify_token(conn, token, now=later)
        assert list_tokens(conn, user_id)[0].last_used_at == later
