"""Issue 9's browser story: a rep claims a pool record, lets it age past the pool's rule
(the scheduler's injectable clock moved 15 days on, run in-process), the scheduler drops it,
the record's feed and the rep's notifications say which rule did it, another rep claims it.

Its own demo database and server: the rule run drops every untouched record of the
demo, which other browser tests must not see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from engine.workflow.scheduler import RuleScheduler
from tests.browser.conftest import login, serve_in_thread
from tests.ui.conftest import SECRET, DemoDB, make_demo, make_record
from ui.app import create_app


@pytest.fixture(scope="module")
def aging_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoDB, str]]:
    db = make_demo(tmp_path_factory.mktemp("aging"), rows=4)
    app = create_app(db.live, secret_key=SECRET, upload_dir=db.upload_dir)
    with serve_in_thread(app) as url:
        yield db, url
    db.live.dispose()


def _pooled(db: DemoDB, name: str) -> int:
    record_id = make_record(db, "customer", {"name": name, "grade": "C"})
    table = db.live.current().schema.table("customer")
    with db.live.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(owner_id=None, pool_id="customer_pool"))
    return record_id


def test_claim_age_drop_and_reclaim(page: Page, aging_demo: tuple[DemoDB, str]) -> None:
    db, base = aging_demo
    record_id = _pooled(db, "Ageing Teahouse")
    url = f"{base}/e/customer/{record_id}"

    login(page, base, "rep_east1")
    page.goto(url)
    page.get_by_role("button", name="Claim", exact=True).click()
    page.wait_for_url(url)
    expect(page.locator("#feed")).to_contain_text("claimed")
    expect(page.get_by_role("button", name="Claim", exact=True)).to_have_count(0)

    # Fifteen days without a follow-up: past "No follow-up for 7 days" (grade C).
    later = datetime.now(UTC) + timedelta(days=15)
    scheduler = RuleScheduler(lambda: db.live.current().records, clock=lambda: later)
    report = scheduler.run_once()
    assert report is not None and report.moved >= 1
    outcome = {(o.pool, o.rule): o.moved for o in report.outcomes}
    assert outcome[("customer_pool", "untouched_7d")] >= 1

    page.goto(url)
    feed = page.locator("#feed")
    expect(feed).to_contain_text("dropped it back to the pool")
    expect(feed).to_contain_text("customer_pool.untouched_7d")
    page.goto(f"{base}/notifications")
    # One notice per owner and batch: the rep's other untouched demo records went with it.
    note = page.locator(".note-taken", has_text="No follow-up for 7 days")
    expect(note).to_have_count(1)
    expect(note).to_contain_text(re.compile(
        r"took (a record of yours back to the pool|\d+ records of yours back to Customer pool)"))
    page.context.clear_cookies()

    login(page, base, "rep_east2")
    page.goto(url)
    page.get_by_role("button", name="Claim", exact=True).click()
    page.wait_for_url(url)
    expect(page.locator("#feed li").first).to_contain_text("claimed")
    table = db.live.current().schema.table("customer")
    with db.live.engine.connect() as conn:
        owner = conn.execute(table.select().where(table.c.id == record_id)).one().owner_id
    assert owner == db.user_id("rep_east2")
