"""The list page's rows, drawn in Python (ui/screens/records/row_html.py): every value and
link escaped, cells as the generic display shows them, links per type."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime
from tests.ui.conftest import SECRET, DemoDB, make_record, sign_in
from ui import partials
from ui.app import create_app

Client = Callable[..., TestClient]
SCRIPT = '<script>alert("x")</script> & Co'


def _row(html: str, record_id: int) -> str:
    found = re.search(rf'<tr id="row-{record_id}">.*?</tr>', html, re.DOTALL)
    assert found, f"row {record_id} not listed"
    return found.group(0)


def test_values_and_links_are_escaped(demo_db: DemoDB, client_for: Client) -> None:
    customer = make_record(demo_db, "customer", {
        "name": SCRIPT, "phone": "+86 10-5555 0100", "industry": "retail"}, owner="rep_east1")
    contact = make_record(demo_db, "contact", {
        "name": "Esc <b>Bold</b>", "customer": customer, "email": "a&b@example.com",
        "title": '"></td><img src=x onerror=alert(1)>'}, owner="rep_east1")
    rep = client_for("rep_east1")
    page = rep.get("/e/customer", params={"q": "alert", "cols": ["name", "phone",
                                                                   "industry"]}).text
    row = _row(page, customer)
    assert "<script>" not in page and "<img" not in page
    assert (f'<td class="title"><a href="/e/customer/{customer}">&lt;script&gt;'
            "alert(&#34;x&#34;)&lt;/script&gt; &amp; Co</a>") in row
    assert '<a href="tel:+861055550100">+86 10-5555 0100</a>' in row
    contacts = rep.get("/e/contact", params={"q": "Esc", "cols": ["name", "customer", "email",
                                                                  "title"]}).text
    row = _row(contacts, contact)
    assert "<b>" not in row and "Esc &lt;b&gt;Bold&lt;/b&gt;" in row
    # a reference cell links to the record, its title escaped
    assert (f'<a href="/e/customer/{customer}">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;'
            " &amp; Co</a>") in row
    assert '<a href="mailto:a&amp;b@example.com">a&amp;b@example.com</a>' in row
    assert "<img" not in contacts
    assert "&#34;&gt;&lt;/td&gt;&lt;img src=x onerror=alert(1)&gt;</td>" in row


def test_cells_keep_labels_blanks_and_the_phone_card_classes(
        demo_db: DemoDB, client_for: Client) -> None:
    record = make_record(demo_db, "customer", {"name": "Cells Co", "grade": "A",
                                               "employees": 1234}, owner="rep_east1")
    page = client_for("rep_east1").get("/e/customer", params={
        "q": "Cells Co", "cols": ["name", "licence_no", "grade", "employees", "industry"]}).text
    row = _row(page, record)
    cells = re.findall(r"<td[^>]*>.*?</td>", row)
    assert cells[2] == '<td data-label="Business licence no." class="blank"></td>'
    assert any(c.startswith('<td data-label="') and ">1,234</td>" in c for c in cells)
    # rep_east1 may claim pool records: the last cell holds the row's pool actions
    assert cells[-1] == '<td class="row-actions"></td>'
    assert cells[-2].startswith('<td data-label="Industry" class="minor">')
    zh = client_for("rep_east1", lang="zh-CN").get("/e/customer", params={
        "q": "Cells Co", "cols": ["name", "grade"]}).text
    assert re.search(r'<td data-label="[^"]+">A类', _row(zh, record))


def test_a_list_page_is_its_query_plus_at_most_one_more(demo_db: DemoDB) -> None:
    """Issue 13: owner names and saved views come from stamped per-process caches and
    every drop rule's forecast is one statement, so a rep's list page runs its page
    query and the forecast of its held rows (stamp reads, shared by every cache, aside).
    The app is served as in production (caches on: the fixture's runtime turns them off
    to see every change at once)."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK",
                                                      "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    make_record(demo_db, "customer", {"name": "Counted Co"}, owner="rep_east1")
    live = LiveRuntime(demo_db.url, policy_factory=CasbinAccessPolicy)
    event.listen(live.engine, "before_cursor_execute", record)
    try:
        with TestClient(create_app(live, secret_key=SECRET)) as client:
            sign_in(client, "rep_east1")
            assert client.get("/e/customer").status_code == 200  # warm: caches, plans
            seen.clear()
            page = client.get("/e/customer")
    finally:
        live.dispose()
    assert page.status_code == 200 and "Counted Co" in page.text
    work = [s for s in seen if "tp_policy_version" not in s and "tp_metadata" not in s]
    assert len(work) <= 2, work
    assert "FROM customer" in work[0] and not any("tp_user" in s or "tp_saved_view" in s
                                                   for s in work)


def test_a_page_names_only_the_people_its_columns_show(
        demo_db: DemoDB, client_for: Client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Owners and creators are named only when a column shows them: the default columns
    ask the people cache for nobody; the owner column asks for the page's owners."""
    from ui.screens.records import display

    asked: list[set[int]] = []
    real = display.cached_people

    def spy(engine, ids):  # type: ignore[no-untyped-def]
        asked.append(set(ids))
        return real(engine, ids)

    monkeypatch.setattr(display, "cached_people", spy)
    rep = client_for("rep_east1")
    assert rep.get("/e/customer").status_code == 200
    assert asked == []
    page = rep.get("/e/customer", params={"cols": "name,owner_id"}).text
    me = demo_db.user_id("rep_east1")
    assert asked and asked[-1] and me in asked[-1]
    assert "Chen Jie" in page or "陈杰" in page  # rep_east1's name in the owner column


def test_a_kept_page_shell_draws_new_rows_and_the_viewers_own_chrome(
        demo_db: DemoDB, app, client_for: Client,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The markup around the rows is kept (``ui.render_shell``): the rows are drawn on
    every request, and the kept text is the page Jinja draws, per viewer and locale."""
    rep, other = client_for("rep_east1"), client_for("rep_east2")
    zh = client_for("rep_east1", lang="zh-CN")
    path = "/e/customer?cols=name&cols=grade"
    first = rep.get(path).text
    added = make_record(demo_db, "customer", {"name": SCRIPT}, owner="rep_east1")
    second = rep.get(path).text
    assert f'id="row-{added}"' not in first and f'id="row-{added}"' in second
    assert "&lt;script&gt;" in _row(second, added) and "<script>" not in second
    # the same page drawn by Jinja without the kept shell: the very same text
    app.state.ui.shells._kept.clear()
    monkeypatch.setattr(partials, "_split", lambda text, marks: None)
    assert rep.get(path).text == second
    monkeypatch.undo()
    # another viewer and another locale: their own chrome and CSRF token
    mine, theirs, chinese = (re.findall(r'name="csrf_token" value="([^"]+)"', c.get(path).text)
                             for c in (rep, other, zh))
    assert mine and theirs and set(mine).isdisjoint(theirs)
    assert "Liu Yang" in other.get(path).text and "Liu Yang" not in rep.get(path).text
    assert "筛选" in zh.get(path).text and "筛选" not in rep.get(path).text
    assert set(chinese) != set() and len(app.state.ui.shells._kept) >= 3
