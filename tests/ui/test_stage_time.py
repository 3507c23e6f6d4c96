"""Time in stage on a record's page: each visited stage with its time, the current one marked,
in English and zh-CN; entities without a pipeline show no such section."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB
from tests.ui.kanban.test_kanban_routes import actor, new_deal

Client = Callable[[str | None], TestClient]


def test_time_in_stage_on_the_record(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    records = demo_db.live.current().records
    moved = records.move_stage(actor(demo_db, "rep_east1"), "opportunity", deal.id, to="offer",
                               version=deal.version)
    # The first visit lasted 2 days 3 hours: move its history rows back in time.
    history = records.schema.system["tp_stage_history"]
    with demo_db.live.engine.begin() as conn:
        rows = conn.execute(history.select().where(history.c.entity == "opportunity",
                                                   history.c.record_id == deal.id)
                            .order_by(history.c.id)).all()
        first, _second = rows
        shift = timedelta(days=2, hours=3)
        conn.execute(update(history).where(history.c.id == first.id)
                     .values(entered_at=first.entered_at - shift))
        table = records.schema.table("opportunity")   # the record is as old as its history
        conn.execute(update(table).where(table.c.id == deal.id)
                     .values(created_at=deal["created_at"] - shift))
    assert moved.get("stage") == "offer"
    page = client_for("rep_east1").get(f"/e/opportunity/{deal.id}?lang=en").text
    assert "Time in stage" in page
    assert "Background research" in page and "2 d 3 h" in page
    assert "Offer (current)" in page
    zh = client_for("rep_east1", lang="zh-CN").get(f"/e/opportunity/{deal.id}").text  # type: ignore[call-arg]
    assert "阶段停留时间" in zh and "2天3小时" in zh and "方案提供（当前）" in zh


def test_no_time_in_stage_without_a_pipeline(client_for: Client, demo_db: DemoDB) -> None:
    from engine.records import ListQuery

    who = actor(demo_db, "rep_east1")
    customer = demo_db.live.current().records.list(who, "customer", ListQuery(limit=1)).rows[0]
    page = client_for("rep_east1").get(f"/e/customer/{customer.id}?lang=en").text
    assert "Time in stage" not in page


def test_a_renewal_shows_its_own_pipeline_and_keeps_time_from_the_other(
        client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1")
    records = demo_db.live.current().records
    switched = records.update(actor(demo_db, "rep_east1"), "opportunity", deal.id,
                              {"business_line": "renewal"}, version=deal.version)
    assert switched["stage"] == "renewal_review"
    page = client_for("rep_east1").get(f"/e/opportunity/{deal.id}?lang=en").text
    assert "Renewal review (current)" in page and "Background research" in page
    assert f"/e/opportunity/{deal.id}/stage?to=renewal_quote" in page   # its own next stages
    assert "stage?to=offer" not in page
    assert page.index("Renewal review (current)") < page.index("Background research")
    zh = client_for("rep_east1", lang="zh-CN").get(f"/e/opportunity/{deal.id}").text  # type: ignore[call-arg]
    assert "续约评估（当前）" in zh


def test_the_list_filters_by_the_stages_of_the_chosen_pipeline(client_for: Client,
                                                              demo_db: DemoDB) -> None:
    renewal = new_deal(demo_db, "rep_east1", business_line="renewal", name="Renewal Q")
    sales = new_deal(demo_db, "rep_east1", name="Sales Q")
    rep = client_for("rep_east1")
    every = rep.get("/e/opportunity/filters?lang=en").text  # the panel, loaded when opened
    assert "Renewal pipeline · Renewal review" in every and "Sales pipeline · Offer" in every
    narrowed = rep.get("/e/opportunity?lang=en&f.business_line.in=renewal").text
    options = re.findall(r'<option value="([a-z_]+)"[^>]*>([^<]*)</option>', narrowed)
    stage_options = [v for v, _ in options if v in ("research", "renewal_review", "churned")]
    assert stage_options == ["renewal_review", "churned"]   # the renewal stages only
    chosen = rep.get("/e/opportunity?lang=en&f.stage.in=renewal_review").text
    assert f'id="row-{renewal.id}"' in chosen and f'id="row-{sales.id}"' not in chosen
    assert rep.get("/e/opportunity?f.stage.in=" + "x" * 300).status_code == 200   # matches nothing
