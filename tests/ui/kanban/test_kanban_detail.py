"""The stage actions a record's detail page gets from the kanban area (the full app)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB
from tests.ui.kanban.test_kanban_routes import new_deal

Client = Callable[[str | None], TestClient]


def test_detail_page_offers_the_allowed_next_stages(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1")
    page = client_for("rep_east1").get(f"/e/opportunity/{deal.id}?lang=en")
    assert page.status_code == 200
    assert f'href="/e/opportunity/{deal.id}/stage?to=offer"' in page.text
    assert f'href="/e/opportunity/{deal.id}/stage?to=lost"' in page.text
    assert "Move to Offer" in page.text
    # Only allowed next stages: research may not jump to quote.
    assert f"/e/opportunity/{deal.id}/stage?to=quote" not in page.text
    # The page behind the button asks for what Offer needs, and posts the move.
    stage_page = client_for("rep_east1").get(f"/e/opportunity/{deal.id}/stage?to=offer&lang=en")
    assert 'name="expected_close"' in stage_page.text
    assert f'action="/e/opportunity/kanban/{deal.id}/move"' in stage_page.text


def test_no_stage_actions_on_entities_without_a_pipeline(client_for: Client,
                                                         demo_db: DemoDB) -> None:
    from engine.records import ListQuery

    runtime = demo_db.live.current()
    who = runtime.policy.actor_for(demo_db.user_id("rep_east1"))  # type: ignore[attr-defined]
    customer = runtime.records.list(who, "customer", ListQuery(limit=1)).rows[0]
    page = client_for("rep_east1").get(f"/e/customer/{customer.id}?lang=en")
    assert page.status_code == 200
    assert "/stage?to=" not in page.text
