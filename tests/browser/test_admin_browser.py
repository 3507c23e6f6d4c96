"""As the admin, add a field in the browser: preview its migration plan, apply it, and find
it in the entity's create form at once (no restart)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import login


def test_admin_adds_a_field_and_sees_it_in_the_form_at_once(page: Page, live_server: str) -> None:
    login(page, live_server, "admin")
    page.click("nav.menu a[href='/admin']")
    page.click("a[href='/admin/entities/customer']")
    page.click("text=Add a field")

    page.fill("#f-name", "stock_level")
    page.select_option("#f-type", "integer")
    page.fill("input[name=label_en]", "Stock level")
    page.fill("input[name=label_zh]", "库存水平")
    page.fill("input[name=help_en]", "Units on the shelf")
    page.click("text=Preview the change")

    expect(page.locator("ol.plan-steps")).to_contain_text(
        "add field customer.stock_level (column stock_level)")
    page.click("text=Apply the change")
    page.wait_for_url(f"{live_server}/admin/entities/customer")
    expect(page.locator("#field-stock_level")).to_contain_text("Stock level")

    page.goto(f"{live_server}/e/customer/new")
    expect(page.locator("label[for='w-stock_level']")).to_contain_text("Stock level")
    page.fill("input[name=name]", "Browser Admin Shop")
    page.fill("#w-stock_level", "42")
    page.click("#record-form button[type=submit]")
    page.wait_for_url(re.compile(rf"{live_server}/e/customer/\d+$"))
    expect(page.locator("main")).to_contain_text("Stock level")
    expect(page.locator("main")).to_contain_text("42")

    page.goto(f"{live_server}/admin/history")
    expect(page.locator("table")).to_contain_text("add field customer.stock_level (integer)")
