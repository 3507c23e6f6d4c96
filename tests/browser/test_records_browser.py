"""A business user's day in a real browser: sign in, create a record (fixing a
validation error), edit it and see the change in the feed, switch language."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import login
from tests.ui.conftest import DemoDB, make_record


def test_sign_in_create_fix_edit_and_see_the_feed(page: Page, live_server: str) -> None:
    login(page, live_server, "rep_east1")
    expect(page.locator("nav.menu")).to_contain_text("Customers")
    page.click("nav.menu >> text=Customers")
    page.click("text=New")
    expect(page.locator("h1")).to_have_text("New Customer")
    page.fill("#w-phone", "not a phone")
    page.click("#record-form button[type=submit]")
    # htmx swaps the 422 form in place: messages next to the fields, input kept
    expect(page.locator("#w-name-error")).to_have_text("is required")
    expect(page.locator("#w-phone-error")).to_be_visible()
    expect(page.locator("#w-phone")).to_have_value("not a phone")
    page.fill("#w-name", "Browser Bakery")
    page.fill("#w-phone", "+86 21 6000 1234")
    page.select_option("#w-industry", "catering")
    page.click("#record-form button[type=submit]")
    page.wait_for_url(re.compile(r"/e/customer/\d+$"))
    # the title, then the holder's "drops in N days" badge (the rep now holds it)
    expect(page.locator("h1")).to_contain_text("Browser Bakery")
    expect(page.locator("h1 .drop-due")).to_have_text("Drops in 7 days")
    expect(page.locator("#feed")).to_contain_text("created the record")

    page.click(".actions >> text=Edit")
    page.fill("#w-name", "Browser Bakery & Co")
    page.click("#record-form button[type=submit]")
    page.wait_for_url(re.compile(r"/e/customer/\d+$"))
    expect(page.locator("h1")).to_contain_text("Browser Bakery & Co")
    change = page.locator("#feed .changes li").first
    expect(change).to_contain_text("Browser Bakery")
    expect(change.locator("ins")).to_have_text("Browser Bakery & Co")

    page.fill("#comment-body", "Called the owner")
    page.click(".comment-form button")
    expect(page.locator("#feed .feed-comment").first).to_contain_text("Called the owner")


def test_search_as_you_type_and_load_more(page: Page, live_server: str) -> None:
    login(page, live_server, "manager")
    page.goto(f"{live_server}/e/customer?n=25&lang=en")
    rows = page.locator("#rows tr[id^=row-]")
    before = rows.count()
    more = page.locator("tr.more a")
    if more.count():
        more.click()
        expect(rows).not_to_have_count(before)
    page.fill("input[name=q]", "zzzz-nothing-matches")
    expect(page.locator("#rows")).to_contain_text("No records")
    assert "q=zzzz-nothing-matches" in page.url


def test_switch_language(page: Page, live_server: str) -> None:
    login(page, live_server, "rep_east2")
    page.goto(f"{live_server}/e/customer")
    page.click("form.lang button[value=zh-CN]")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("nav.menu")).to_contain_text("客户")
    expect(page.locator("input[name=q]")).to_have_attribute("placeholder", "搜索")
    page.click("form.lang button[value=en]")
    expect(page.locator("input[name=q]")).to_have_attribute("placeholder", "Search")


def test_leaving_the_name_warns_of_a_twin_and_one_submit_saves(
        page: Page, live_server: str, browser_demo: DemoDB) -> None:
    twin = make_record(browser_demo, "customer", {"name": "Tab Away Trading Co"},
                       owner="rep_east1")
    login(page, live_server, "rep_east1")
    page.goto(f"{live_server}/e/customer/new")
    save = page.locator("#record-form button[type=submit]")
    expect(save).to_have_text("Save", use_inner_text=True)
    page.fill("#w-name", "TAB AWAY trading")
    page.press("#w-name", "Tab")  # leaving the field asks the server (htmx, on change)
    warning = page.locator("#dedup-live .dedup-warnings")
    expect(warning).to_be_visible()
    expect(warning.locator(f'a[href="/e/customer/{twin}"]')).to_be_visible()
    expect(save).to_have_text("Save anyway", use_inner_text=True)  # CSS :has(), no script
    page.click("#record-form button[type=submit]")  # already warned: saves at once
    page.wait_for_url(re.compile(r"/e/customer/\d+$"))
    expect(page.locator("h1")).to_contain_text("TAB AWAY trading")
