"""Manual shares on a record: with a user or a department, read or write, with an
expiry; revoked; only for people who may change the record."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from engine.permissions.shares import shares_of
from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]


def _shares(db: DemoDB, record_id: int) -> list:  # type: ignore[type-arg]
    with db.live.engine.connect() as conn:
        return shares_of(conn, "customer", record_id)


def test_share_with_a_user_who_then_sees_it_and_revoke(client_for: Client,
                                                       demo_db: DemoDB) -> None:
    record = make_record(demo_db, "customer", {"name": "Shared Tea Co"}, owner="rep_east1")
    west = client_for("rep_west1")
    assert west.get(f"/e/customer/{record}").status_code == 404
    owner = client_for("rep_east1", lang="zh-CN")
    detail = owner.get(f"/e/customer/{record}").text
    assert f'href="/e/customer/{record}/shares"' in detail
    form = owner.get(f"/e/customer/{record}/shares")
    assert form.status_code == 200 and "共享给" in form.text
    done = owner.post(f"/e/customer/{record}/shares", data={
        "csrf_token": csrf(owner), "grantee": "user",
        "user_id": str(demo_db.user_id("rep_west1")), "access": "read",
        "expires_on": "2099-06-30"}, follow_redirects=False)
    assert done.status_code == 303, done.text[:1500]
    [share] = _shares(demo_db, record)
    assert share.user_id == demo_db.user_id("rep_west1") and share.access == "read"
    assert share.expires_at is not None and share.expires_at.isoformat().startswith(
        "2099-06-30T16:00")  # through that day in Shanghai
    assert west.get(f"/e/customer/{record}").status_code == 200
    assert west.get(f"/e/customer/{record}/shares").status_code == 403  # read, not write
    gone = owner.post(f"/e/customer/{record}/shares/{share.id}/revoke",
                      data={"csrf_token": csrf(owner)}, follow_redirects=False)
    assert gone.status_code == 303 and _shares(demo_db, record) == []
    assert west.get(f"/e/customer/{record}").status_code == 404


def test_department_share_and_bad_input(client_for: Client, demo_db: DemoDB) -> None:
    record = make_record(demo_db, "customer", {"name": "Dept Share Co"}, owner="rep_east1")
    owner = client_for("rep_east1")
    for data in ({"grantee": "user", "user_id": "", "access": "read"},
                 {"grantee": "department", "department_id": "x", "access": "read"},
                 {"grantee": "user", "user_id": "999999", "access": "read"},
                 {"grantee": "user", "user_id": str(demo_db.user_id("rep_west1")),
                  "access": "own"},
                 {"grantee": "user", "user_id": str(demo_db.user_id("rep_west1")),
                  "access": "read", "expires_on": "2001-01-01"}):
        page = owner.post(f"/e/customer/{record}/shares",
                          data={"csrf_token": csrf(owner), **data})
        assert page.status_code == 422, (data, page.text[:800])
    assert _shares(demo_db, record) == []
    page = owner.get(f"/e/customer/{record}/shares").text
    dept = page.split('id="share-dept"')[1].split('<option value="')[2].split('"')[0]
    ok = owner.post(f"/e/customer/{record}/shares", data={
        "csrf_token": csrf(owner), "grantee": "department", "department_id": dept,
        "access": "write", "expires_on": ""}, follow_redirects=False)
    assert ok.status_code == 303
    [share] = _shares(demo_db, record)
    assert share.department_id == int(dept) and share.access == "write"
    assert share.expires_at is None


def test_only_people_who_may_change_the_record(client_for: Client, demo_db: DemoDB) -> None:
    record = make_record(demo_db, "customer", {"name": "Not Yours Co"}, owner="rep_east1")
    other = make_record(demo_db, "customer", {"name": "Other Co"}, owner="rep_east1")
    west = client_for("rep_west1")
    assert west.get(f"/e/customer/{record}/shares").status_code == 404
    assert west.post(f"/e/customer/{record}/shares", data={
        "csrf_token": csrf(west), "grantee": "user",
        "user_id": str(demo_db.user_id("rep_west1")), "access": "write"}).status_code == 404
    assert _shares(demo_db, record) == []
    owner = client_for("rep_east1")
    owner.post(f"/e/customer/{record}/shares", data={
        "csrf_token": csrf(owner), "grantee": "user",
        "user_id": str(demo_db.user_id("manager")), "access": "read"})
    [share] = _shares(demo_db, record)
    # a share id of another record is not found through this one
    assert owner.post(f"/e/customer/{other}/shares/{share.id}/revoke",
                      data={"csrf_token": csrf(owner)}).status_code == 404
    assert len(_shares(demo_db, record)) == 1
