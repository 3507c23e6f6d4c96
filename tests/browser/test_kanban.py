"""The kanban board in headless Chromium: drag a card, see counts change; a refused
drag returns the card with the reason; the keyboard path asks for a missing field.

Runs the real app under uvicorn on 127.0.0.1 (the CRM demo database). Uses
``live_server``/``login`` from tests/browser/conftest.py when that file provides
them; the fallbacks below keep this test runnable on its own. A screenshot is
saved under ``test-artifacts/`` when a step fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from engine.actor import Actor
from engine.demo import DEMO_PASSWORD
from engine.records import ListQuery, Record
from tests.browser.conftest import serve_in_thread
from tests.conftest import REPO_ROOT
from tests.ui.conftest import SECRET, DemoDB, make_demo
from ui.app import create_app

ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def kanban_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDB]:
    db = make_demo(tmp_path_factory.mktemp("kanban_browser"), rows=6)
    yield db
    db.live.dispose()


@pytest.fixture(scope="module")
def server_url(kanban_demo: DemoDB) -> Iterator[str]:
    app = create_app(kanban_demo.live, secret_key=SECRET, api_module=None,
                     screen_modules=["ui.auth", "ui.screens.home", "ui.kanban.routes"])
    with serve_in_thread(app) as url:
        yield url


@contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


def sign_in(page: Any, base: str, login: str) -> None:
    page.goto(f"{base}/login?lang=en")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def new_deal(db: DemoDB, login: str, **values: Any) -> Record:
    runtime = db.live.current()
    who = runtime.policy.actor_for(db.user_id(login), login=login)  # type: ignore[attr-defined]
    customer = runtime.records.list(who, "customer", ListQuery(limit=1)).rows[0]
    return runtime.records.create(who, "opportunity", {"name": values.pop("name", "Deal"),
                                                       "customer": customer.id, **values})


def count(page: Any, stage: str) -> int:
    return int(page.locator(f"#head-{stage} .kb-count").inner_text())


def test_drag_moves_a_card_and_a_refused_drag_returns_it(
        browser: Any, server_url: str, kanban_demo: DemoDB) -> None:
    movable = new_deal(kanban_demo, "rep_east2", name="Drag me", expected_close="2027-03-01")
    refused = new_deal(kanban_demo, "rep_east2", name="Not to quote",
                       amount={"amount": "10", "currency": "CNY"}, expected_close="2027-03-01")
    page = browser.new_page()
    with screenshot_on_failure(page, "kanban_drag"):
        sign_in(page, server_url, "rep_east2")
        page.goto(f"{server_url}/e/opportunity/kanban?lang=en")
        research, offer = count(page, "research"), count(page, "offer")
        assert page.locator(f"#cards-research #card-{movable.id}").is_visible()

        page.drag_and_drop(f"#card-{movable.id}", "section[data-column=offer]")
        page.locator(f"#cards-offer #card-{movable.id}").wait_for()
        page.wait_for_function(
            "([r]) => document.querySelector('#head-research .kb-count').textContent == r",
            arg=[str(research - 1)])
        assert count(page, "offer") == offer + 1
        assert page.locator(f"#card-{movable.id}").count() == 1
        stored = kanban_demo.live.current().records.get(Actor.system(), "opportunity",
                                                        movable.id)
        assert stored["stage"] == "offer"

        page.drag_and_drop(f"#card-{refused.id}", "section[data-column=quote]")
        error = page.locator(f"#card-{refused.id} .kb-error")
        error.wait_for()
        assert "Cannot move from Background research to Quote" in error.inner_text()
        assert page.locator(f"#cards-research #card-{refused.id}").is_visible()
        assert count(page, "research") == research - 1
        assert kanban_demo.live.current().records.get(
            Actor.system(), "opportunity", refused.id)["stage"] == "research"
    page.close()


def test_keyboard_move_asks_for_a_missing_field_then_moves(
        browser: Any, server_url: str, kanban_demo: DemoDB) -> None:
    deal = new_deal(kanban_demo, "rep_east2", name="By keyboard")
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    with screenshot_on_failure(page, "kanban_keyboard"):
        sign_in(page, server_url, "rep_east2")
        page.goto(f"{server_url}/e/opportunity/kanban?lang=en")
        lost = count(page, "lost")
        card = page.locator(f"#card-{deal.id}")
        card.locator("select[name=to]").select_option("lost")
        card.locator("button[type=submit]").click()
        reason = page.locator(f"#card-{deal.id} select[name=loss_reason]")
        reason.wait_for()
        assert "To enter Lost, fill in: Loss reason." in \
            page.locator(f"#card-{deal.id} .kb-error").inner_text()
        reason.select_option("price")
        page.locator(f"#card-{deal.id} button[type=submit]").click()
        page.locator(f"#cards-lost #card-{deal.id}").wait_for()
        assert count(page, "lost") == lost + 1
    page.close()
