"""The list page loads its count after itself (a deferred htmx fragment), filters included."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import login


def test_the_count_arrives_after_the_page_and_follows_the_search(page: Page,
                                                                  live_server: str) -> None:
    login(page, live_server, "manager")
    page.goto(f"{live_server}/e/customer")
    count = page.locator("p.count .count-text")
    expect(count).to_have_text(re.compile(r"^[\d,]+\+? records$"))
    page.fill("input[name=q]", "no customer is called this")
    expect(page.locator("p.count .count-text")).to_have_text("0 records")
