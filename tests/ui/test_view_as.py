"""View as another user (admins only, logged, read-only, a banner and an exit, tied to
the session) and "who can see this and why" on a record."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from engine.permissions.view_as import view_as_log
from tests.ui.conftest import DemoDB, csrf, make_record
from ui.screens.view_as import COOKIE

Client = Callable[..., TestClient]


def _start(client: TestClient, user_id: int) -> int:
    return client.post("/admin/view-as", data={"csrf_token": csrf(client),
                                               "user_id": str(user_id)},
                       follow_redirects=False).status_code


def test_admin_sees_what_the_user_sees_read_only_then_exits(client_for: Client,
                                                            demo_db: DemoDB) -> None:
    east = make_record(demo_db, "customer", {"name": "East Only Co"}, owner="rep_east1")
    west = make_record(demo_db, "customer", {"name": "West Only Co"}, owner="rep_west1")
    admin = client_for("admin", lang="zh-CN")
    assert admin.get(f"/e/customer/{west}").status_code == 200
    assert "rep_east1" in admin.get("/admin/view-as?q=east").text
    assert _start(admin, demo_db.user_id("rep_east1")) == 303
    home = admin.get("/").text
    assert "您正以" in home and "退出身份查看" in home
    assert admin.get(f"/e/customer/{east}").status_code == 200
    assert admin.get(f"/e/customer/{west}").status_code == 404  # not rep_east1's
    edit = admin.post(f"/e/customer/{east}/edit", data={"csrf_token": csrf(admin),
                                                        "name": "Changed", "version": "1"})
    assert edit.status_code == 403  # viewing is read-only
    assert admin.get("/admin/users").status_code == 403  # no admin powers while viewing
    with demo_db.live.engine.connect() as conn:
        logged = view_as_log(conn, user_id=demo_db.user_id("rep_east1"))
    assert logged and logged[0].admin_id == demo_db.user_id("admin")
    out = admin.post("/view-as/exit", data={"csrf_token": csrf(admin)}, follow_redirects=False)
    assert out.status_code == 303
    assert admin.get(f"/e/customer/{west}").status_code == 200
    assert "您正以" not in admin.get("/").text


def test_only_admins_and_only_in_their_own_session(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1")
    assert rep.get("/admin/view-as").status_code == 403
    assert _start(rep, demo_db.user_id("rep_west1")) == 403
    admin = client_for("admin")
    assert _start(admin, demo_db.user_id("admin")) == 422  # yourself: nothing to see
    assert _start(admin, 999999) == 422
    assert admin.post("/admin/view-as", data={"user_id": "2"}).status_code == 403  # no CSRF
    assert _start(admin, demo_db.user_id("rep_west1")) == 303
    stolen = admin.cookies.get(COOKIE)
    assert stolen
    other = client_for("admin")  # another session of the same admin
    other.cookies.set(COOKIE, stolen)
    assert "You are viewing as" not in other.get("/").text
    forged = client_for("admin")
    forged.cookies.set(COOKIE, stolen[:-4] + "AAAA")
    assert "You are viewing as" not in forged.get("/").text


def test_why_explains_for_any_user_and_action(client_for: Client, demo_db: DemoDB) -> None:
    record = make_record(demo_db, "customer", {"name": "Why Co"}, owner="rep_east1")
    admin = client_for("admin", lang="zh-CN")
    detail = admin.get(f"/e/customer/{record}").text
    assert f'href="/e/customer/{record}/why"' in detail and "谁能看到？" in detail
    yes = admin.get(f"/e/customer/{record}/why?user=rep_east1&action=read")
    assert yes.status_code == 200 and "rep_east1 可以查看这条记录" in yes.text
    no = admin.get(f"/e/customer/{record}/why?user=rep_west1&action=update")
    assert "rep_west1 不能修改这条记录" in no.text
    assert admin.get(f"/e/customer/{record}/why?user=nobody").status_code == 404
    assert admin.get(f"/e/customer/{record}/why?user=rep_east1&action=fly").status_code == 200
    rep = client_for("rep_east1")
    assert rep.get(f"/e/customer/{record}/why?user=rep_east1").status_code == 403
    assert f"/e/customer/{record}/why" not in rep.get(f"/e/customer/{record}").text
