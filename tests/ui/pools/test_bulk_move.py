"""Bulk move between pools (移动) for leaders on a list: shown only where an entity has two
pools and the actor may assign; each record through PoolService.move, refusals per record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.configure.apps import installed_apps
from engine.configure.service import ConfigService
from engine.configure.workspace import Workspace
from tests.ui.conftest import DemoDB, csrf, make_record

VIP_POOL = {"name": "vip_pool", "entity": "customer",
            "label": {"en": "VIP pool", "zh-CN": "VIP公海"},
            "members": {"roles": ["rep", "supervisor", "manager"]}}


@dataclass(frozen=True)
class _AddPool:
    doc: dict[str, Any]
    subject = "pool vip_pool"
    focus = None

    def summary(self) -> str:
        return "add pool vip_pool"

    def apply(self, ws: Workspace) -> None:
        ws.create("pool", self.doc)


def _second_pool(db: DemoDB) -> None:
    runtime = db.live.current()
    if "vip_pool" in runtime.registry.pools:
        return
    ConfigService(runtime.engine, apps=installed_apps(runtime.registry)).apply(
        _AddPool(VIP_POOL), Actor.system("test"))
    db.live.refresh()


def _pooled(db: DemoDB, name: str) -> int:
    record_id = make_record(db, "customer", {"name": name})
    table = db.live.current().schema.table("customer")
    with db.live.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(owner_id=None, pool_id="customer_pool"))
    return record_id


def _pool_of(db: DemoDB, record_id: int) -> str | None:
    table = db.live.current().schema.table("customer")
    with db.live.engine.connect() as conn:
        return conn.execute(select(table.c.pool_id).where(table.c.id == record_id)).scalar()


def test_bulk_move_to_another_pool(demo_db: DemoDB,
                                   client_for: Callable[..., TestClient]) -> None:
    sup = client_for("sup_east")
    assert 'value="move"' not in sup.get("/e/customer").text   # one pool: nothing to move to
    _second_pool(demo_db)
    first, second = _pooled(demo_db, "Move one"), _pooled(demo_db, "Move two")
    held = make_record(demo_db, "customer", {"name": "Held"}, owner="rep_east1")
    page = sup.get("/e/customer").text
    assert 'value="move"' in page and 'name="to_pool"' in page and "VIP pool" in page
    rep = client_for("rep_east1")
    assert 'value="move"' not in rep.get("/e/customer").text
    token = csrf(sup)
    missing = sup.post("/e/customer/bulk", data={"csrf_token": token, "action": "move",
                                                 "ids": [str(first)], "to_pool": ""})
    assert missing.status_code == 422
    done = sup.post("/e/customer/bulk", data={
        "csrf_token": token, "action": "move", "ids": [str(first), str(second), str(held)],
        "to_pool": "vip_pool", "value": "key accounts"})
    assert "2 of 3 records changed." in done.text
    assert f"#{held}:" in done.text                 # a held record cannot move: said why
    assert (_pool_of(demo_db, first), _pool_of(demo_db, second)) == ("vip_pool", "vip_pool")
    wrong = sup.post("/e/customer/bulk", data={"csrf_token": token, "action": "move",
                                               "ids": [str(first)], "to_pool": "nope"})
    assert wrong.status_code == 422 and _pool_of(demo_db, first) == "vip_pool"
    refused = rep.post("/e/customer/bulk", data={"csrf_token": csrf(rep), "action": "move",
                                                 "ids": [str(first)], "to_pool": "customer_pool"})
    assert refused.status_code == 403
    zh = client_for("sup_east", lang="zh-CN").get("/e/customer").text
    assert "VIP公海" in zh
