"""Merging two customers on a phone (390x844, zh-CN): the merge page, the result page and
its Undo, each checked for sideways scrolling and serious axe-core violations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from engine.actor import Actor
from tests.browser.conftest import device_page, login
from tests.browser.screen_checks import check_screen
from tests.ui.conftest import DemoDB

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from device_page(browser, {**PHONE, "bypass_csp": True})


def test_merge_and_undo_on_a_phone(phone: Page, live_server: str,
                                   browser_demo: DemoDB) -> None:
    records = browser_demo.live.current().records
    owner = browser_demo.user_id("rep_east1")
    keep = records.create(Actor.system("test"), "customer", {
        "name": "合并测试 上海茶叶有限公司", "owner_id": owner}).id
    twin = records.create(Actor.system("test"), "customer", {
        "name": "合并测试 上海茶叶", "phone": "139 0000 7001", "owner_id": owner,
        "website": "https://a-very-long-domain-name-for-a-tea-company.example.com/about"}).id
    login(phone, live_server, "manager", lang="zh-CN")
    phone.goto(f"{live_server}/e/customer/merge?ids={keep},{twin}")
    expect(phone.get_by_role("heading", level=1)).to_contain_text("合并")
    check_screen(phone, "merge-01-choose")
    phone.get_by_role("button", name="合并", exact=True).click()
    expect(phone.get_by_role("button", name="撤销合并")).to_be_visible()
    check_screen(phone, "merge-02-result")
    phone.get_by_role("button", name="撤销合并").click()
    expect(phone.get_by_role("status")).to_contain_text("合并已撤销")
    assert records.get(Actor.system("test"), "customer", twin)["phone"] == "139 0000 7001"
