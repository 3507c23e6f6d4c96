"""Sign-in: one path for every answer, throttles per client and login, a lock that
cannot be used against the owner, tokens that die with the password, and the
self-service password change (engine on SQLite and PostgreSQL; screens on SQLite).

"Same timing" is checked as a property, not with a clock: every attempt runs
exactly one Argon2 verification (what the time is made of), whatever the login.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from starlette.testclient import TestClient

from engine.demo import DEMO_PASSWORD, prepare_demo
from engine.errors import AuthenticationError, ValidationError
from engine.metadata.parse import registry_from_document
from engine.permissions import passwords, throttle, versions
from engine.permissions.identity import (
    authenticate,
    change_password,
    create_user,
    deactivate_user,
    find_user,
    reactivate_user,
    session_is_valid,
    set_password,
)
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.tokens import create_token, verify_token
from engine.runtime import LiveRuntime
from engine.storage.database import write_transaction
from engine.storage.tables import build_schema
from tests.conftest import REPO_ROOT
from ui.app import create_app

PASSWORD = "correct horse battery"
T0 = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    build_schema(registry_from_document({"entities": {}})).metadata.create_all(db_engine)
    with write_transaction(db_engine) as conn:
        create_user(conn, login="ann", display_name="Ann", password=PASSWORD)
    return db_engine


class CountingHasher(PasswordHasher):
    """argon2-cffi's hasher, counting verifications (the cost every attempt must pay once)."""

    verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[CountingHasher]:
    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    CountingHasher.verifications = 0
    return CountingHasher


def _refusal(engine: Engine, login: str, password: str, *, client: str,
             now: dt.datetime, counted: type[CountingHasher]) -> tuple[str, str, int]:
    before = counted.verifications
    with pytest.raises(AuthenticationError) as err:
        authenticate(engine, login, password, client=client, now=now)
    return err.value.reason, str(err.value), counted.verifications - before


def test_known_unknown_locked_or_not_all_take_one_verification_and_one_answer(
        engine: Engine, counted: type[CountingHasher]) -> None:
    at = T0
    plain = [_refusal(engine, login, "wrong password", client=ATTACKER, now=at, counted=counted)
             for login in ("ann", "nobody")]
    assert plain[0] == plain[1] == ("invalid", "invalid login or password", 1)
    for n in range(throttle.LOGIN_FAILURES - 1):   # lock both logins from the attacker
        for login in ("ann", "nobody"):
            _refusal(engine, login, "wrong password", client=ATTACKER,
                     now=at + dt.timedelta(seconds=n + 1), counted=counted)
    later = at + dt.timedelta(minutes=1)
    locked = [_refusal(engine, login, PASSWORD, client=ATTACKER, now=later, counted=counted)
              for login in ("ann", "nobody")]
    assert locked[0] == locked[1]
    assert locked[0][0] == "locked" and locked[0][2] == 1   # even locked, one verification


def test_a_lock_never_keeps_the_owner_out(engine: Engine) -> None:
    now = T0
    for n in range(3 * throttle.LOGIN_FAILURES):  # an attacker hammering the known login
        with pytest.raises(AuthenticationError):
            authenticate(engine, "ann", f"guess {n}", client=ATTACKER,
                         now=now + dt.timedelta(seconds=n))
    with pytest.raises(AuthenticationError) as err:  # the attacker's client is locked out...
        authenticate(engine, "ann", PASSWORD, client=ATTACKER,
                     now=now + dt.timedelta(minutes=1))
    assert err.value.reason == "locked"
    # ...the owner's is not: the right password from a client that never failed opens it.
    assert authenticate(engine, "ann", PASSWORD, client=OWNER,
                        now=now + dt.timedelta(minutes=1)).login == "ann"
    # A fresh attacking client gets one guess while the login is locked, then is held too.
    reasons = []
    for n in range(2):
        for login_try in range(throttle.LOGIN_FAILURES):
            with pytest.raises(AuthenticationError) as err:
                authenticate(engine, "ann", "x" * 9, client="192.0.2.1",
                             now=now + dt.timedelta(minutes=2, seconds=n * 10 + login_try))
            reasons.append(err.value.reason)
    assert reasons[:throttle.LOGIN_FAILURES - 1] == ["invalid"] * (throttle.LOGIN_FAILURES - 1)
    assert reasons[-1] == "locked"


def test_one_client_is_throttled_across_logins(engine: Engine) -> None:
    for n in range(throttle.CLIENT_FAILURES):
        with pytest.raises(AuthenticationError):
            authenticate(engine, f"user{n}", "wrong password", client=ATTACKER,
                         now=T0 + dt.timedelta(seconds=n))
    with pytest.raises(AuthenticationError) as err:   # right password, refused from there
        authenticate(engine, "ann", PASSWORD, client=ATTACKER, now=T0 + dt.timedelta(minutes=1))
    assert err.value.reason == "locked"
    assert authenticate(engine, "ann", PASSWORD, client=OWNER,
                        now=T0 + dt.timedelta(minutes=1)).login == "ann"
    after = T0 + throttle.WINDOW + dt.timedelta(minutes=1)   # failures age out
    assert authenticate(engine, "ann", PASSWORD, client=ATTACKER, now=after).login == "ann"


def _token_stamp(engine: Engine) -> int:
    with engine.connect() as conn:
        return versions.current(conn, versions.CREDENTIALS)


def test_a_password_reset_change_or_reactivation_revokes_api_tokens(engine: Engine) -> None:
    with engine.connect() as conn:
        user = find_user(conn, "ann")
    assert user is not None

    def new_token() -> str:
        with write_transaction(engine) as conn:
            return create_token(conn, user.id, name="script")[1]

    def revoked(token: str) -> bool:
        with write_transaction(engine) as conn:
            try:
                verify_token(conn, token)
            except AuthenticationError as exc:
                return exc.reason == "revoked"
        return False

    token, stamp = new_token(), _token_stamp(engine)
    with write_transaction(engine) as conn:
        set_password(conn, user.id, "an admin reset it")
    assert revoked(token) and _token_stamp(engine) > stamp

    token, stamp = new_token(), _token_stamp(engine)
    with write_transaction(engine) as conn:
        deactivate_user(conn, user.id)
    with write_transaction(engine) as conn:
        reactivate_user(conn, user.id)
    assert revoked(token) and _token_stamp(engine) > stamp

    token = new_token()
    change_password(engine, user.id, current="an admin reset it", new="mine again, longer")
    assert revoked(token)


def test_changing_a_password_needs_the_current_one(engine: Engine,
                                                   counted: type[CountingHasher]) -> None:
    with engine.connect() as conn:
        user = find_user(conn, "ann")
    assert user is not None
    for bad in ("not it at all", ""):
        before = counted.verifications
        with pytest.raises(ValidationError) as err:
            change_password(engine, user.id, current=bad, new="a brand new one", client=OWNER)
        assert set(err.value.field_errors) == {"current_password"}
        assert counted.verifications - before == 1
    with pytest.raises(ValidationError) as err:
        change_password(engine, user.id, current=PASSWORD, new="short", client=OWNER)
    assert set(err.value.field_errors) == {"password"}
    with pytest.raises(ValidationError):
        change_password(engine, user.id, current=PASSWORD, new=PASSWORD, client=OWNER)
    assert authenticate(engine, "ann", PASSWORD).id == user.id   # nothing changed so far
    changed = change_password(engine, user.id, current=PASSWORD, new="a brand new one")
    with engine.connect() as conn:
        assert not session_is_valid(conn, user.id, user.session_epoch)
        assert session_is_valid(conn, user.id, changed.session_epoch)
    with pytest.raises(AuthenticationError):
        authenticate(engine, "ann", PASSWORD)
    assert authenticate(engine, "ann", "a brand new one").id == user.id


def test_guessing_the_current_password_in_a_stolen_session_is_throttled(
        engine: Engine) -> None:
    with engine.connect() as conn:
        user = find_user(conn, "ann")
    assert user is not None
    outcomes: list[str] = []
    for n in range(throttle.LOGIN_FAILURES + 1):
        try:
            change_password(engine, user.id, current=f"guess {n}", new="taken over!!",
                            client=ATTACKER, now=T0 + dt.timedelta(seconds=n))
        except ValidationError:
            outcomes.append("wrong")
        except AuthenticationError as exc:
            outcomes.append(exc.reason)
    assert outcomes[-2:] == ["locked", "locked"]
    with pytest.raises(AuthenticationError):   # even the right one, from that client
        change_password(engine, user.id, current=PASSWORD, new="taken over!!",
                        client=ATTACKER, now=T0 + dt.timedelta(minutes=1))


# --- the screen: /account/password ---------------------------------------------------------

SECRET = b"test-secret-key-of-at-least-32-bytes!!"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory: Path = tmp_path_factory.mktemp("signin")
    url = f"sqlite:///{directory / 'demo.db'}"
    prepare_demo(url, apps=[REPO_ROOT / "apps" / "crm"], out=io.StringIO(), rows=2)
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy, check_interval=0)
    yield create_app(live, secret_key=SECRET, upload_dir=directory / "uploads")
    live.dispose()


def _client(app: Any, lang: str = "en") -> TestClient:
    client = TestClient(app, base_url="http://testserver")
    client.cookies.set("tp_lang", lang)
    return client


def _csrf(client: TestClient, path: str = "/login") -> str:
    found = _CSRF.search(client.get(path).text)
    assert found
    return found.group(1)


def _sign_in(client: TestClient, login: str, password: str = DEMO_PASSWORD) -> None:
    done = client.post("/login", data={"login": login, "password": password,
                                       "csrf_token": _csrf(client)}, follow_redirects=False)
    assert done.status_code == 303, done.text[:300]


def test_the_password_screen_needs_a_session_and_the_csrf_token(app: Any) -> None:
    with _client(app) as anonymous:
        assert anonymous.get("/account/password", follow_redirects=False).status_code == 303
    with _client(app) as client:
        _sign_in(client, "rep_west1")
        page = client.get("/account/password")
        assert page.status_code == 200 and 'name="current_password"' in page.text
        refused = client.post("/account/password", data={
            "current_password": DEMO_PASSWORD, "password": "new pass 123",
            "password_again": "new pass 123"})
        assert refused.status_code == 403
    with _client(app) as client:   # the password did not change
        _sign_in(client, "rep_west1")


def test_changing_the_password_on_screen_in_chinese_ends_the_other_sessions(app: Any) -> None:
    with _client(app, "zh-CN") as mine, _client(app) as elsewhere:
        _sign_in(mine, "rep_east1")
        _sign_in(elsewhere, "rep_east1")
        token = _csrf(mine, "/account/password")
        wrong = mine.post("/account/password", data={
            "csrf_token": token, "current_password": "not the password",
            "password": "new pass 123", "password_again": "new pass 123"})
        assert wrong.status_code == 422 and "当前密码不正确。" in wrong.text
        differ = mine.post("/account/password", data={
            "csrf_token": token, "current_password": DEMO_PASSWORD,
            "password": "new pass 123", "password_again": "new pass 124"})
        assert differ.status_code == 422 and "两次输入的新密码不一致。" in differ.text
        done = mine.post("/account/password", data={
            "csrf_token": token, "current_password": DEMO_PASSWORD,
            "password": "new pass 123", "password_again": "new pass 123"},
            follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == "/account/password?changed=1"
        after = mine.get("/account/password?changed=1", follow_redirects=False)
        assert after.status_code == 200 and "密码已修改" in after.text   # still signed in
        assert elsewhere.get("/", follow_redirects=False).status_code == 303  # signed out
    with _client(app) as again:
        _sign_in(again, "rep_east1", "new pass 123")
