"""A rep's morning on a phone (390x844, zh-CN, Shanghai) and the same on a desktop
(1366x768, English): sign in, see today's list, call a customer, log a visit with the
location from the browser, move a deal, comment. Every screen is checked for
sideways scrolling and serious axe-core violations and screenshotted into
tests/browser/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from engine.actor import Actor
from engine.records import ListQuery
from tests.browser.conftest import PHONE, TIMEOUT_MS, login
from tests.browser.screen_checks import check_screen
from tests.ui.conftest import DemoDB

DESKTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 768}, "locale": "en-US",
                           "timezone_id": "Asia/Shanghai"}
SHANGHAI_BUND = {"latitude": 31.2400, "longitude": 121.4900}
TEXT = {
    "zh-CN": {"call": "致电", "visit": "上门拜访", "comment": "评论", "move": "移动",
              "customers": "客户", "followups": "跟进记录", "location": "使用我的位置"},
    "en": {"customers": "Customers", "followups": "Follow-ups", "move": "Move",
           "comment": "Comment", "location": "Use my location"},
}


def _context(browser: Browser, device: dict[str, Any]) -> Iterator[BrowserContext]:
    context = browser.new_context(**device, bypass_csp=True, geolocation=SHANGHAI_BUND,
                                  permissions=["geolocation"])
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def _page(browser: Browser, device: dict[str, Any]) -> Iterator[Page]:
    errors: list[str] = []
    for context in _context(browser, device):
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, PHONE)


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, DESKTOP)


def _customer_with_phone(db: DemoDB, name: str, phone: str) -> int:
    records = db.live.current().records
    owner = db.user_id("rep_east1")
    return records.create(Actor.system("test"), "customer", {
        "name": name, "phone": phone, "owner_id": owner,
        "address": {"province": "上海市", "city": "上海市", "district": "黄浦区",
                    "street": "中山东一路 1 号"}}).id


def _deal(db: DemoDB, customer_id: int, name: str) -> int:
    records = db.live.current().records
    return records.create(Actor.system("test"), "opportunity", {
        "name": name, "customer": customer_id, "expected_close": "2027-01-31",
        "owner_id": db.user_id("rep_east1")}).id


def _open_menu_item(page: Page, label: str) -> None:
    toggle = page.locator(".menu-toggle")
    if toggle.is_visible():
        toggle.click()
        expect(page.locator("#main-menu")).to_be_visible()
    page.locator("#main-menu").get_by_role("link", name=label, exact=True).click()


def _morning(page: Page, base: str, db: DemoDB, *, lang: str, tag: str) -> None:
    text = TEXT[lang]
    # a phone number of its own per run: the customer's phone is a unique key
    digits = "13800138000" if tag.startswith("phone") else "13800138001"
    customer = _customer_with_phone(db, f"Morning Tea {tag}", f"{digits[:3]} {digits[3:7]} {digits[7:]}")
    deal = _deal(db, customer, f"Tea deal {tag}")
    login(page, base, "rep_east1", lang=lang)
    check_screen(page, f"{tag}-01-home")

    # today's list: the follow-ups, newest first
    _open_menu_item(page, text["followups"])
    expect(page.locator("h1")).to_be_visible()
    check_screen(page, f"{tag}-02-follow-ups")

    # find the customer and call them
    _open_menu_item(page, text["customers"])
    page.fill("input[name=q]", f"Morning Tea {tag}")
    # The search runs 400 ms after the typing and pushes its URL: clicking a row before
    # then lets that push cancel the row's navigation (the newest customer is already
    # on the unfiltered page, so the rows alone do not say the search has run).
    expect(page).to_have_url(re.compile(rf"[?&]q=Morning\+Tea\+{re.escape(tag)}(&|$)"))
    expect(page.locator("#rows")).to_contain_text(f"Morning Tea {tag}")
    check_screen(page, f"{tag}-03-customers")
    page.locator("#rows").get_by_role("link", name=f"Morning Tea {tag}").click()
    page.wait_for_url(re.compile(rf"/e/customer/{customer}$"))
    call = page.locator(f'a[href="tel:{digits}"]')
    expect(call).to_be_visible()
    check_screen(page, f"{tag}-04-customer")

    # log the visit with the phone's location
    page.goto(f"{base}/e/follow_up/new")
    check_screen(page, f"{tag}-05-new-visit")
    page.select_option("#w-customer", str(customer)) if page.locator(
        f"#w-customer option[value='{customer}']").count() else None
    page.fill("#w-content", f"Visited {tag}, tasted the new tea")
    page.get_by_role("button", name=text["location"]).click()
    expect(page.locator("input[name='check_in.lat']")).to_have_value("31.24")
    expect(page.locator("input[name='check_in.lng']")).to_have_value("121.49")
    page.locator("#record-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/e/follow_up/\d+$"))
    expect(page.locator("main")).to_contain_text("31.24")
    check_screen(page, f"{tag}-06-visit")

    # move the deal on the board: the default is the next stage
    page.goto(f"{base}/e/opportunity/kanban")
    card = page.locator(f"#card-{deal}")
    expect(card.locator("select[name=to]")).to_have_value("offer")
    check_screen(page, f"{tag}-07-board")
    card.get_by_role("button", name=text["move"]).click()
    expect(page.locator(f"#cards-offer #card-{deal}")).to_be_visible()

    # and comment on it
    page.goto(f"{base}/e/opportunity/{deal}")
    page.fill("#comment-body", f"Sent the offer {tag}")
    page.locator(".comment-form button").click()
    expect(page.locator("#feed .feed-comment").first).to_contain_text(f"Sent the offer {tag}")
    check_screen(page, f"{tag}-08-deal")
    page.goto(f"{base}/profile")
    check_screen(page, f"{tag}-09-profile")


def test_a_reps_morning_on_a_phone_in_chinese(phone: Page, live_server: str,
                                              browser_demo: DemoDB) -> None:
    _morning(phone, live_server, browser_demo, lang="zh-CN", tag="phone-zh")
    assert phone.evaluate("() => document.documentElement.lang") == "zh-CN"


def test_the_same_morning_on_a_desktop_in_english(desktop: Page, live_server: str,
                                                  browser_demo: DemoDB) -> None:
    _morning(desktop, live_server, browser_demo, lang="en", tag="desktop-en")


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_every_screen_fits_and_passes_axe(device: str, browser: Browser, live_server: str,
                                          browser_demo: DemoDB) -> None:
    for context in _context(browser, PHONE if device == "phone" else DESKTOP):
        page = context.new_page()
        login(page, live_server, "admin", lang="zh-CN" if device == "phone" else "en")
        records = browser_demo.live.current().records
        paths = ["/", "/profile", "/profile/tokens", "/e/opportunity/kanban"]
        for entity in browser_demo.live.current().registry.entities:
            paths += [f"/e/{entity}", f"/e/{entity}/new"]
            first = records.list(Actor.system(), entity, ListQuery(limit=1)).rows
            if first:
                base = f"/e/{entity}/{first[0].id}"
                paths += [base, f"{base}/edit", f"{base}/shares", f"{base}/why?user=rep_east1"]
        paths += ["/admin", "/admin/roles", "/admin/users", "/admin/org", "/admin/history",
                  "/admin/settings", "/admin/view-as", "/admin/entities/customer",
                  "/admin/roles/manager/sharing",
                  "/admin/roles/manager/sharing/a_grade_customers",
                  "/admin/pipelines/opportunity_renewal", "/admin/pipelines/new?entity=opportunity"]
        failures = []
        for path in paths:
            page.goto(f"{live_server}{path}")
            try:
                check_screen(page, f"{device}-screen{path.replace('/', '_')}")
            except AssertionError as exc:
                failures.append(str(exc))
        assert failures == [], "\n\n".join(failures)


def test_the_checks_catch_what_they_look_for(browser: Browser) -> None:
    """The overflow and axe checks fail on a page that breaks them (not vacuous)."""
    from tests.browser.screen_checks import axe_violations, overflow

    for context in _context(browser, PHONE):
        page = context.new_page()
        page.set_content('<html lang="en"><head><title>t</title><meta name="viewport" '
                         'content="width=device-width, initial-scale=1"></head><body><main>'
                         '<div style="width:900px">wide</div><img src="x.png">'
                         '<input type="text"></main></body></html>')
        assert overflow(page) > 0
        found = axe_violations(page)
        assert any(v.startswith("image-alt") for v in found), found
        assert any(v.startswith("label") for v in found), found
