"""The list's filter panel on a phone (390x844, zh-CN): closed, it is not drawn with the
page; opening it loads it (an htmx fragment), and a filter chosen in it narrows the rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT_MS, login
from tests.browser.screen_checks import overflow
from tests.ui.conftest import DemoDB, make_record

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                         "has_touch": True, "device_scale_factor": 2, "locale": "zh-CN",
                         "timezone_id": "Asia/Shanghai"}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(**PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_the_panel_loads_when_opened_and_filters_the_rows(
        phone: Page, live_server: str, browser_demo: DemoDB) -> None:
    saas = make_record(browser_demo, "customer", {"name": "Panel SaaS Co", "industry": "saas"},
                       owner="rep_east1")
    retail = make_record(browser_demo, "customer", {"name": "Panel Retail Co",
                                                    "industry": "retail"}, owner="rep_east1")
    login(phone, live_server, "rep_east1", lang="zh-CN")
    phone.goto(f"{live_server}/e/customer?q=Panel")
    expect(phone.locator(f"#row-{saas}")).to_be_visible()
    industry = phone.locator('select[name="f.industry.in"]')
    expect(industry).to_have_count(0)  # closed: not drawn with the page
    phone.locator("details.panel summary", has_text="筛选").click()
    expect(industry).to_be_visible()
    assert overflow(phone) <= 0  # the opened panel fits the phone
    industry.select_option("retail")
    expect(phone.locator(f"#row-{saas}")).to_have_count(0)
    expect(phone.locator(f"#row-{retail}")).to_be_visible()
    assert "f.industry.in=retail" in phone.url
