"""Dashboards and reports in headless Chromium: a rep and a manager each open Tidepool to
their own dashboard with drawn charts; clicking a funnel step opens its records."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import login


def _chart_ready(page: Page, selector: str) -> None:
    page.wait_for_selector(f"{selector}[data-ready='1'] canvas")


def test_a_rep_opens_to_their_dashboard(page: Page, live_server: str) -> None:
    login(page, live_server, "rep_east1")
    page.wait_for_selector(".dashboard")
    text = page.inner_text(".dashboard")
    assert "My dashboard" in text and "Follow-ups due today" in text and "My rank" in text
    _chart_ready(page, ".dashboard .chart")
    assert "Admin" not in page.inner_text("nav.menu")


def test_a_manager_clicks_a_funnel_step_to_its_records(page: Page, live_server: str) -> None:
    login(page, live_server, "manager")
    page.wait_for_selector(".dashboard")
    assert "Sales overview" in page.inner_text(".dashboard")
    _chart_ready(page, ".dashboard .chart")
    page.goto(f"{live_server}/reports/sales_funnel?period=all_time")
    _chart_ready(page, ".chart")
    box = page.locator(".chart").bounding_box()
    assert box is not None
    # The funnel's first step (leads) is the top band; ECharts leaves 60px above it.
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 75)
    page.wait_for_url(lambda url: "/e/lead" in url)
    assert page.locator("table").count() >= 1


def test_reports_are_legible_on_a_phone(page: Page, live_server: str) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, live_server, "manager", lang="zh-CN")
    page.goto(f"{live_server}/reports/opportunity_pipeline?period=all_time")
    _chart_ready(page, ".chart")
    width = page.evaluate("document.querySelector('.chart canvas').getBoundingClientRect().width")
    assert width <= 390
    assert "商机阶段分布" in page.inner_text("h1")
    page.goto(f"{live_server}/leaderboard?period=this_year&scope=all")
    assert page.locator("tr.me").count() == 1 or "您的排名" in page.inner_text("main")
