"""Converting a lead on a phone (390x844, zh-CN): the Convert button on the lead, the
review page (values edited, the optional opportunity ticked, an existing customer
offered to attach to), then the customer's page. Each screen is checked for sideways
scrolling and serious axe-core violations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from engine.actor import Actor
from tests.browser.conftest import PHONE, device_page, login
from tests.browser.screen_checks import check_screen
from tests.ui.conftest import DemoDB


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from device_page(browser, {**PHONE, "bypass_csp": True})


def _make(db: DemoDB, entity: str, values: dict[str, Any]) -> int:
    owner = db.user_id("rep_east1")
    return db.live.current().records.create(Actor.system("test"), entity,
                                            {**values, "owner_id": owner}).id


def _value(db: DemoDB, entity: str, record_id: int, field: str) -> Any:
    runtime = db.live.current()
    table = runtime.schema.table(entity)
    with runtime.engine.connect() as conn:
        return conn.execute(select(table.c[field]).where(table.c.id == record_id)).scalar_one()


def test_convert_a_lead_on_a_phone(phone: Page, live_server: str,
                                   browser_demo: DemoDB) -> None:
    page, base, db = phone, live_server, browser_demo
    lead = _make(db, "lead", {"company_name": "茶语小铺", "contact_name": "周女士",
                              "phone": "136 0000 2001", "email": "zhou@example.com",
                              "channel": "street", "status": "qualified", "grade": "A"})
    login(page, base, "rep_east1", lang="zh-CN")
    page.goto(f"{base}/e/lead/{lead}")
    check_screen(page, "convert-01-lead-phone")
    page.get_by_role("link", name="转化为客户").click()
    page.wait_for_url(re.compile(rf"/e/lead/{lead}/convert/lead_to_customer$"))
    expect(page.locator("#w-customer--name")).to_have_value("茶语小铺")
    expect(page.locator("#w-contact--name")).to_have_value("周女士")
    check_screen(page, "convert-02-review-phone")

    page.fill("#w-customer--name", "茶语小铺（人民广场店）")
    page.fill("#w-contact--name", "周丽")
    page.get_by_label("也创建此记录").check()
    page.fill("#w-opportunity--name", "首批茶叶订单")
    page.get_by_role("button", name="转化", exact=True).click()
    page.wait_for_url(re.compile(r"/e/customer/\d+$"))
    customer = int(page.url.rsplit("/", 1)[1])
    # the title, then any badge (a customer a rep holds shows when it drops to the pool)
    expect(page.locator("h1")).to_contain_text("茶语小铺（人民广场店）")
    expect(page.locator(".detail-side")).to_contain_text("由转化 lead_to_customer")
    check_screen(page, "convert-03-customer-phone")
    assert _value(db, "customer", customer, "source_lead") == lead
    assert _value(db, "lead", lead, "status") == "converted"

    # The lead no longer offers the conversion; its feed says it was converted.
    page.goto(f"{base}/e/lead/{lead}")
    expect(page.get_by_role("link", name="转化为客户")).to_have_count(0)
    expect(page.locator(".detail-side")).to_contain_text("转化了此记录")


def test_attach_to_an_existing_customer_on_a_phone(phone: Page, live_server: str,
                                                    browser_demo: DemoDB) -> None:
    page, base, db = phone, live_server, browser_demo
    held = _make(db, "customer", {"name": "老茶馆", "phone": "13600002002"})
    lead = _make(db, "lead", {"company_name": "老茶馆新店", "contact_name": "吴先生",
                              "phone": "+86 136-0000-2002", "channel": "referral",
                              "status": "contacting"})
    login(page, base, "rep_east1", lang="zh-CN")
    page.goto(f"{base}/e/lead/{lead}/convert/lead_to_customer")
    matches = page.locator(".matches")
    expect(matches).to_contain_text("老茶馆")
    check_screen(page, "convert-04-match-phone")
    matches.get_by_label(re.compile("关联到现有记录")).check()
    page.get_by_role("button", name="转化", exact=True).click()
    page.wait_for_url(re.compile(rf"/e/customer/{held}$"))
    assert _value(db, "customer", held, "source_lead") == lead
    assert _value(db, "lead", lead, "status") == "converted"
