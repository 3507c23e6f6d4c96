"""The bell on every page, its unread count, the notifications page, mark read, zh-CN,
and a notice about a record the reader lost shown without the record."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update
from starlette.testclient import TestClient

from engine.actor import Actor
from tests.ui.conftest import DemoDB, csrf, make_record


def _assign(db: DemoDB, name: str, *, to: str) -> int:
    """A pooled customer assigned to ``to`` by their supervisor (one notification)."""
    record_id = make_record(db, "customer", {"name": name})
    runtime = db.live.current()
    table = runtime.schema.table("customer")
    with db.live.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(owner_id=None, pool_id="customer_pool"))
    from engine.workflow.pools import PoolService
    sup = runtime.records.policy.actor_for(db.user_id("sup_east"), login="sup_east")  # type: ignore[attr-defined]
    assert isinstance(sup, Actor)
    PoolService(runtime.records).assign(sup, "customer", record_id, owner_id=db.user_id(to),
                                        reason="call <b>them</b>")
    return record_id


def test_bell_in_every_page_and_its_count(demo_db: DemoDB,
                                          client_for: Callable[..., TestClient]) -> None:
    rep = client_for("rep_east2")
    home = rep.get("/")
    assert 'hx-get="/notifications/bell"' in home.text and 'href="/notifications"' in home.text
    assert 'hx-get="/notifications/bell"' not in client_for(None).get("/login").text
    before = rep.get("/notifications/bell", headers={"HX-Request": "true"})
    assert before.status_code == 200 and "<html" not in before.text
    record_id = _assign(demo_db, "Bell Co", to="rep_east2")
    after = rep.get("/notifications/bell", headers={"HX-Request": "true"}).text
    count = int(after.split('class="count">')[1].split("<")[0])
    assert count >= 1 and "unread" in after
    page = rep.get("/notifications").text
    assert f'href="/e/customer/{record_id}"' in page and "Bell Co" in page
    assert "assigned a record to you" in page
    assert "call &lt;b&gt;them&lt;/b&gt;" in page                 # escaped
    zh = client_for("rep_east2", lang="zh-CN").get("/notifications").text
    assert "给你分配了一条记录" in zh and "全部标为已读" in zh


def test_mark_read_and_mark_all_read(demo_db: DemoDB,
                                     client_for: Callable[..., TestClient]) -> None:
    _assign(demo_db, "Read One", to="rep_east1")
    _assign(demo_db, "Read Two", to="rep_east1")
    rep = client_for("rep_east1")
    token = csrf(rep)
    page = rep.get("/notifications").text
    first = page.split('name="id" value="')[1].split('"')[0]
    assert rep.post("/notifications/read", data={"id": first}).status_code == 403  # no CSRF
    done = rep.post("/notifications/read", data={"csrf_token": token, "id": first},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/notifications"
    assert f'name="id" value="{first}"' not in rep.get("/notifications").text
    # Bad ids are ignored, not a 500.
    assert rep.post("/notifications/read", data={"csrf_token": token,
                                                 "id": ["x", "-1", "9" * 40]}).status_code == 200
    rep.post("/notifications/read", data={"csrf_token": token, "all": "1"})
    assert 'class="count"' not in rep.get("/notifications/bell").text
    assert 'name="id"' not in rep.get("/notifications").text
    # Another user's count is untouched.
    other = client_for("rep_east2")
    assert isinstance(other.get("/notifications/bell").text, str)


def test_a_lost_record_is_not_revealed(demo_db: DemoDB,
                                       client_for: Callable[..., TestClient]) -> None:
    record_id = _assign(demo_db, "Secret Lost Co", to="rep_east1")
    runtime = demo_db.live.current()
    sup = runtime.records.policy.actor_for(demo_db.user_id("sup_east"), login="sup_east")  # type: ignore[attr-defined]
    from engine.workflow.pools import PoolService
    PoolService(runtime.records).assign(sup, "customer", record_id,
                                        owner_id=demo_db.user_id("rep_east2"))
    page = client_for("rep_east1").get("/notifications").text
    assert "Secret Lost Co" not in page                       # the old assignment is hidden
    assert f'href="/e/customer/{record_id}"' not in page


def test_anonymous_is_sent_to_sign_in(client_for: Callable[..., TestClient]) -> None:
    anon = client_for(None)
    for url in ("/notifications", "/notifications/bell"):
        response = anon.get(url, follow_redirects=False)
        assert response.status_code in (302, 303, 401) and "Bell Co" not in response.text


def test_a_batch_is_one_digest_linking_to_the_pool(demo_db: DemoDB,
                                                   client_for: Callable[..., TestClient]) -> None:
    ids = [make_record(demo_db, "customer", {"name": f"Digest Co {i}"}, owner="rep_west1")
           for i in range(3)]
    with demo_db.live.current().records.transaction(Actor.system("test")) as tx:
        tx.reown("customer", ids, owner_id=None, pool_id="customer_pool", kind="recycle",
                 action=None, reason="tidy up")
    rep = client_for("rep_west1")
    page = rep.get("/notifications").text
    assert page.count("took 3 records of yours back to Customer pool") == 1
    assert "took a record of yours" not in page
    assert 'href="/e/customer?f.pool_id.eq=customer_pool">3 records</a>' in page
    assert rep.get("/e/customer?f.pool_id.eq=customer_pool").status_code == 200
    zh = client_for("rep_west1", lang="zh-CN").get("/notifications").text
    assert "把你的 3 条记录收回了客户公海" in zh and ">3 条记录</a>" in zh
