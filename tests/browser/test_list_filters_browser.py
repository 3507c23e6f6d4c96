"""The list's filter panel on a phone (390x844, zh-CN): closed, it is not drawn with the
page; opening it loads it (an htmx fragment), and a filter chosen in it narrows the rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PHONE, TIMEOUT_MS, device_page, login
from tests.browser.screen_checks import overflow
from tests.ui.conftest import DemoDB, make_record


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from device_page(browser, PHONE)


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


def test_without_javascript_the_link_draws_the_panel_and_the_form_filters(
        browser: Browser, live_server: str, browser_demo: DemoDB) -> None:
    """JavaScript off (390px, zh-CN): the panel cannot load, so its "loading" text is
    hidden and a link opens the list with the panel drawn; the plain form filters."""
    saas = make_record(browser_demo, "customer", {"name": "Nojs SaaS Co", "industry": "saas"},
                       owner="rep_east1")
    retail = make_record(browser_demo, "customer", {"name": "Nojs Retail Co",
                                                    "industry": "retail"}, owner="rep_east1")
    context = browser.new_context(**PHONE, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        phone = context.new_page()
        login(phone, live_server, "rep_east1", lang="zh-CN")
        phone.goto(f"{live_server}/e/customer?q=Nojs")
        expect(phone.locator(f"#row-{saas}")).to_be_visible()
        phone.locator("details.panel summary", has_text="筛选").click()
        expect(phone.get_by_text("正在加载筛选条件…")).to_be_hidden()
        phone.get_by_role("link", name="显示筛选条件").click()
        industry = phone.locator('select[name="f.industry.in"]')
        expect(industry).to_be_visible()  # drawn with the page, the panel open
        assert overflow(phone) <= 0
        industry.select_option("retail")
        phone.locator("#list-form button[type=submit]").click()
        expect(phone.locator(f"#row-{saas}")).to_have_count(0)
        expect(phone.locator(f"#row-{retail}")).to_be_visible()
        assert "f.industry.in=retail" in phone.url and "q=Nojs" in phone.url
    finally:
        context.close()
