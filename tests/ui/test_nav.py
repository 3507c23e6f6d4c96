"""The main menu: the link of the page's area marked current, on list, record and other
pages, and its drawn links kept by which one is current, not by the page's path."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, make_record

Client = Callable[[str | None], TestClient]


def _current(html: str) -> list[str]:
    menu = re.search(r'<nav class="menu".*?</nav>', html, re.DOTALL)
    assert menu is not None, html[:500]
    return re.findall(r'<a href="([^"]+)" aria-current="page">', menu.group(0))


def test_the_menu_marks_the_pages_area_and_keeps_one_drawing_per_area(
        client_for: Client, app: Starlette, demo_db: DemoDB) -> None:
    ids = [make_record(demo_db, "customer", {"name": f"Nav Shop {n}"}, owner="rep_east1")
           for n in range(4)]
    rep = client_for("rep_east1")
    assert _current(rep.get("/e/customer").text) == ["/e/customer"]
    assert _current(rep.get("/e/contact").text) == ["/e/contact"]
    assert _current(rep.get("/profile").text) == []
    drawn = app.state.ui._nav_links
    before = len(drawn)
    for record_id in ids:  # every record's page: the list's link current, one drawing
        page = rep.get(f"/e/customer/{record_id}")
        assert page.status_code == 200 and _current(page.text) == ["/e/customer"]
    assert _current(rep.get(f"/e/customer/{ids[0]}/edit").text) == ["/e/customer"]
    assert len(drawn) == before  # the customer list's drawing serves its records' pages
