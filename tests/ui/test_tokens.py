"""My API tokens on the profile (created with a name and expiry, shown once, listed,
revoked; nobody else's) and ``tidepool tokens create|list|revoke`` for admins."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from starlette.testclient import TestClient

from engine.cli import main
from engine.permissions.tokens import list_tokens, verify_token
from tests.ui.conftest import DemoDB, csrf

Client = Callable[..., TestClient]


def test_create_shows_the_token_once_and_it_works(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1", lang="zh-CN")
    assert "我的 API 令牌" in rep.get("/profile/tokens").text
    made = rep.post("/profile/tokens", data={"csrf_token": csrf(rep), "name": "Phone sync",
                                             "expires_on": "2099-12-31"})
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-token" class="token-secret" value="(tpk_[^"]+)"', made.text)
    assert secret, made.text[:2000]
    with demo_db.live.engine.connect() as conn:
        assert verify_token(conn, secret.group(1)).login == "rep_east1"
        mine = [t for t in list_tokens(conn, demo_db.user_id("rep_east1"))
                if t.name == "Phone sync"]
    assert mine and mine[0].expires_at is not None
    # valid through 2099-12-31 in Shanghai: ends at 16:00 UTC that day
    assert mine[0].expires_at.isoformat().startswith("2099-12-31T16:00")
    again = rep.get("/profile/tokens").text
    assert "Phone sync" in again and secret.group(1) not in again  # never shown again
    api = rep.get("/api/v1/customer", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert api.status_code == 200


def test_bad_input_is_refused_with_nothing_written(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east2")
    before = len(_tokens(demo_db, "rep_east2"))
    for data in ({"name": "", "expires_on": ""}, {"name": "x" * 101, "expires_on": ""},
                 {"name": "Old", "expires_on": "2000-01-01"},
                 {"name": "Bad", "expires_on": "tomorrow"}):
        page = rep.post("/profile/tokens", data={"csrf_token": csrf(rep), **data})
        assert page.status_code == 422, data
    assert rep.post("/profile/tokens", data={"name": "No CSRF"}).status_code == 403
    assert len(_tokens(demo_db, "rep_east2")) == before
    never = rep.post("/profile/tokens", data={"csrf_token": csrf(rep), "name": "Forever",
                                              "expires_on": ""})
    assert never.status_code == 201
    assert [t.expires_at for t in _tokens(demo_db, "rep_east2") if t.name == "Forever"] == [None]


def test_revoke_your_own_only(client_for: Client, demo_db: DemoDB) -> None:
    owner = client_for("rep_west1")
    owner.post("/profile/tokens", data={"csrf_token": csrf(owner), "name": "Mine",
                                        "expires_on": ""})
    token = next(t for t in _tokens(demo_db, "rep_west1") if t.name == "Mine")
    other = client_for("rep_east1")
    stolen = other.post(f"/profile/tokens/{token.id}/revoke", data={"csrf_token": csrf(other)})
    assert stolen.status_code == 404
    assert next(t for t in _tokens(demo_db, "rep_west1") if t.id == token.id).revoked_at is None
    done = owner.post(f"/profile/tokens/{token.id}/revoke", data={"csrf_token": csrf(owner)},
                      follow_redirects=False)
    assert done.status_code == 303
    assert next(t for t in _tokens(demo_db, "rep_west1") if t.id == token.id).revoked_at
    assert "已吊销" in client_for("rep_west1", lang="zh-CN").get("/profile/tokens").text
    assert client_for(None).get("/profile/tokens", follow_redirects=False).status_code in (302,
                                                                                          303)


def test_cli_create_list_revoke(demo_db: DemoDB) -> None:
    out = io.StringIO()
    assert main(["tokens", "create", "--db", demo_db.url, "--user", "manager", "--name", "ERP",
                 "--expires", "2099-01-31"], out) == 0
    secret = out.getvalue().strip().splitlines()[-1]
    assert secret.startswith("tpk_")
    listed = io.StringIO()
    assert main(["tokens", "list", "--db", demo_db.url, "--user", "manager"], listed) == 0
    line = next(x for x in listed.getvalue().splitlines() if "\tERP\t" in x)
    assert "active" in line and "2099-02-01 00:00 UTC" in line and secret not in line
    token_id = line.split("\t")[0]
    assert main(["tokens", "revoke", "--db", demo_db.url, token_id], io.StringIO()) == 0
    relisted = io.StringIO()
    main(["tokens", "list", "--db", demo_db.url, "--user", "manager"], relisted)
    assert "revoked" in next(x for x in relisted.getvalue().splitlines() if "\tERP\t" in x)
    bad = io.StringIO()
    assert main(["tokens", "create", "--db", demo_db.url, "--user", "nobody", "--name", "x"],
                bad) == 1 and "error" in bad.getvalue()
    assert main(["tokens", "create", "--db", demo_db.url, "--user", "manager", "--name", "x",
                 "--expires", "soon"], io.StringIO()) == 1
    assert main(["tokens", "revoke", "--db", demo_db.url, "999999"], io.StringIO()) == 1


def _tokens(db: DemoDB, login: str) -> list:  # type: ignore[type-arg]
    with db.live.engine.connect() as conn:
        return list_tokens(conn, db.user_id(login))
