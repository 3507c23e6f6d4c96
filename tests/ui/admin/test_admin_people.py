"""Users and the org tree in the admin area: create, deactivate, reset, roles, move, lead."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from engine.permissions.identity import find_user
from engine.permissions.org import find_department
from engine.permissions.policy_store import bindings_of
from tests.ui.conftest import DemoDB, csrf

Client = Callable[..., TestClient]


def _user(db: DemoDB, login: str):  # type: ignore[no-untyped-def]
    with db.live.engine.connect() as conn:
        return find_user(conn, login)


def _roles(db: DemoDB, user_id: int) -> list[tuple[str, str]]:
    with db.live.engine.connect() as conn:
        return bindings_of(conn, user_id)


def _dept(db: DemoDB, code: str):  # type: ignore[no-untyped-def]
    with db.live.engine.connect() as conn:
        return find_department(conn, code)


def test_create_a_user_who_can_then_sign_in(client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin")
    sales = _dept(demo_db, "sales")
    response = admin.post("/admin/users", data={
        "csrf_token": csrf(admin), "login": "newbie", "display_name": "New Bie",
        "password": "a-long-enough-password", "locale": "en", "department_id": str(sales.id),
        "role": "rep"}, follow_redirects=False)
    assert response.status_code == 303
    user = _user(demo_db, "newbie")
    assert user is not None and user.department_id == sales.id
    assert _roles(demo_db, user.id) == [("rep", "org")]
    newbie = client_for(None)
    signed = newbie.post("/login", data={"login": "newbie", "password": "a-long-enough-password",
                                         "csrf_token": csrf(newbie), "next": "/"},
                         follow_redirects=False)
    assert signed.status_code == 303
    assert "New Bie" in admin.get("/admin/users").text


def test_a_duplicate_or_incomplete_user_is_refused(client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin")
    token = csrf(admin)
    taken = admin.post("/admin/users", data={"csrf_token": token, "login": "rep_east1",
                                             "display_name": "Again", "password": "whatever-123"})
    assert taken.status_code == 422 and "already exists" in taken.text
    empty = admin.post("/admin/users", data={"csrf_token": token, "login": "nopass",
                                             "display_name": "No Pass", "password": ""})
    assert empty.status_code == 422 and "password" in empty.text
    assert _user(demo_db, "nopass") is None


def test_deactivate_reset_password_roles_and_move(client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin")
    token = csrf(admin)
    target = _user(demo_db, "rep_west1")
    victim = client_for("rep_west1")
    assert victim.get("/e/lead").status_code == 200

    assert admin.post(f"/admin/users/{target.id}/roles", data={
        "csrf_token": token, "role": ["rep", "supervisor"]},
        follow_redirects=False).status_code == 303
    assert sorted(_roles(demo_db, target.id)) == [("rep", "org"), ("supervisor", "org")]

    east = _dept(demo_db, "team_east")
    assert admin.post(f"/admin/users/{target.id}/department", data={
        "csrf_token": token, "department_id": str(east.id)},
        follow_redirects=False).status_code == 303
    assert _user(demo_db, "rep_west1").department_id == east.id

    assert admin.post(f"/admin/users/{target.id}/password", data={
        "csrf_token": token, "password": "brand-new-password-1"},
        follow_redirects=False).status_code == 303
    # a new password ends the user's sessions
    assert victim.get("/e/lead", follow_redirects=False).status_code == 303

    assert admin.post(f"/admin/users/{target.id}/active", data={
        "csrf_token": token, "active": "0"}, follow_redirects=False).status_code == 303
    assert not _user(demo_db, "rep_west1").active
    again = client_for(None)
    refused = again.post("/login", data={"login": "rep_west1",
                                         "password": "brand-new-password-1",
                                         "csrf_token": csrf(again), "next": "/"},
                         follow_redirects=False)
    assert refused.status_code != 303
    assert admin.post(f"/admin/users/{target.id}/active", data={
        "csrf_token": token, "active": "1"}, follow_redirects=False).status_code == 303
    assert _user(demo_db, "rep_west1").active


def test_the_org_tree(client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin")
    token = csrf(admin)
    sales = _dept(demo_db, "sales")
    assert admin.post("/admin/org", data={"csrf_token": token, "code": "team_north",
                                          "name": "North team", "parent_id": str(sales.id)},
                      follow_redirects=False).status_code == 303
    north = _dept(demo_db, "team_north")
    assert north.parent_id == sales.id
    east = _dept(demo_db, "team_east")
    assert admin.post(f"/admin/org/{north.id}/parent", data={
        "csrf_token": token, "parent_id": str(east.id)}, follow_redirects=False).status_code == 303
    assert _dept(demo_db, "team_north").path.startswith(east.path)
    leader = _user(demo_db, "sup_east")
    assert admin.post(f"/admin/org/{north.id}/leader", data={
        "csrf_token": token, "leader_id": str(leader.id)},
        follow_redirects=False).status_code == 303
    assert _dept(demo_db, "team_north").leader_id == leader.id
    cycle = admin.post(f"/admin/org/{east.id}/parent", data={
        "csrf_token": token, "parent_id": str(north.id)})
    assert cycle.status_code == 422 and "cannot move under itself" in cycle.text
    bad = admin.post("/admin/org", data={"csrf_token": token, "code": "Bad Code", "name": "x"})
    assert bad.status_code == 422 and "lower-case identifier" in bad.text
    page = admin.get("/admin/org").text
    assert "North team" in page
