"""The "drops in N days" badge: on the holder's own record due soon (list row, phone card,
detail, zh-CN), not on a locked or exempt record, not for someone who does not hold it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, make_record


def _held(db: DemoDB, name: str, *, grade: str, age_days: float,
          tags: tuple[str, ...] = ()) -> int:
    """A customer rep_east1 holds, created (never touched) ``age_days`` ago."""
    record_id = make_record(db, "customer", {"name": name, "grade": grade, "tags": list(tags)},
                            owner="rep_east1")
    table = db.live.current().schema.table("customer")
    with db.live.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id).values(
            created_at=datetime.now(UTC) - timedelta(days=age_days)))
    return record_id


def _row(html: str, record_id: int) -> str:
    found = re.search(rf'<tr id="row-{record_id}">.*?</tr>', html, re.DOTALL)
    assert found, f"row {record_id} not listed"
    return found.group(0)


def test_badge_on_a_record_due_soon_and_not_on_locked_or_exempt_ones(
        demo_db: DemoDB, client_for: Callable[..., TestClient]) -> None:
    due = _held(demo_db, "Badge due", grade="C", age_days=5.5)      # 7-day rule: 1.5 days left
    # Key accounts are exempt from every drop rule; grade A only from the 7-day one,
    # so the 90-day rule (claimed clock) is the one its badge tells.
    exempt = _held(demo_db, "Badge exempt", grade="C", age_days=5.5, tags=("key_account",))
    grade_a = _held(demo_db, "Badge grade A", grade="A", age_days=5.5)
    locked = _held(demo_db, "Badge locked", grade="C", age_days=5.5)
    locks = demo_db.live.current().schema.system["tp_pool_lock"]
    with demo_db.live.engine.begin() as conn:
        conn.execute(insert(locks).values(entity="customer", record_id=locked,
                                          user_id=demo_db.user_id("rep_east1"),
                                          pool="customer_pool", at=datetime.now(UTC)))
    rep = client_for("rep_east1")
    listed = rep.get("/e/customer?q=Badge&cols=name&cols=grade").text
    assert 'class="tag drop-due">Drops in 2 days<' in _row(listed, due)
    assert "drop-due" not in _row(listed, exempt)
    assert re.search(r'class="tag drop-due">Drops in 8\d days<', _row(listed, grade_a))
    assert "drop-due" not in _row(listed, locked)
    detail = rep.get(f"/e/customer/{due}").text
    assert re.search(r"<h1>Badge due <span class=\"tag drop-due\">Drops in 2 days</span>",
                     detail)
    assert "drop-due" not in rep.get(f"/e/customer/{locked}").text
    zh = client_for("rep_east1", lang="zh-CN").get(f"/e/customer/{due}").text
    assert "2 天后掉回公海" in zh
    # Only the holder is warned: a leader reading the same record sees no badge.
    assert "drop-due" not in client_for("sup_east").get(f"/e/customer/{due}").text
