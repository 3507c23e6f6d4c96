"""The list's filter panel: drawn with the page when filters are set (it is open then),
otherwise an htmx fragment loaded when the panel is opened (issue 13), scoped as the list."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import fragment

Client = Callable[..., TestClient]


def test_a_closed_panel_loads_when_opened_with_the_lists_state(client_for: Client) -> None:
    rep = client_for("rep_east1")
    page = rep.get("/e/customer", params={"q": "tea", "sort": "name"}).text
    assert 'hx-get="/e/customer/filters?q=tea&amp;sort=name" hx-trigger="revealed"' in page
    assert 'name="f.industry.in"' not in page  # not drawn with the page
    panel = rep.get("/e/customer/filters", params={"q": "tea", "sort": "name"})
    assert panel.status_code == 200 and fragment(panel.text)
    assert panel.text.lstrip().startswith('<div class="filter-grid">')
    assert 'name="f.industry.in"' in panel.text and 'name="f.created_at.gte"' in panel.text
    assert "Annual revenue" not in panel.text  # hidden from reps: no filter either
    assert "Annual revenue" in client_for("manager").get("/e/customer/filters").text
    zh = client_for("rep_east1", lang="zh-CN")
    assert "正在加载筛选条件…" in zh.get("/e/customer").text
    assert "行业" in zh.get("/e/customer/filters").text


def test_set_filters_draw_the_panel_open_with_the_page(client_for: Client) -> None:
    rep = client_for("rep_east1")
    page = rep.get("/e/customer", params={"f.industry.in": "retail"}).text
    assert '<details class="panel" open>' in page and "/e/customer/filters" not in page
    assert '<option value="retail" selected>' in page
    chosen = rep.get("/e/customer/filters", params={"f.industry.in": "retail"}).text
    assert '<option value="retail" selected>' in chosen


def test_the_panel_needs_a_session_and_a_known_entity(client_for: Client) -> None:
    anonymous = client_for(None).get("/e/customer/filters", follow_redirects=False)
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
    assert client_for("rep_east1").get("/e/nothing/filters").status_code == 404
    rep = client_for("rep_east1")
    unknown_option = rep.get("/e/customer/filters", params={"f.industry.in": "x" * 500})
    assert unknown_option.status_code == 200 and 'name="f.industry.in"' in unknown_option.text
    # a bad list state is refused as the list page refuses it
    assert rep.get("/e/customer/filters", params={"n": "-3"}).status_code == 400
    assert rep.get("/e/customer", params={"n": "-3"}).status_code == 400


def test_without_javascript_a_link_draws_the_panel_with_the_page(client_for: Client) -> None:
    """The deferred panel never loads with JavaScript off: a <noscript> link (keeping the
    list's state) asks for the page with the panel drawn and open, in both languages."""
    rep = client_for("rep_east1")
    page = rep.get("/e/customer", params={"q": "tea", "sort": "name"}).text
    assert ('<noscript><p><a href="/e/customer?q=tea&amp;sort=name&amp;panel=filters">'
            "Show the filters</a></p></noscript>") in page
    assert 'class="muted needs-script"' in page  # the loading text hides without scripts
    drawn = rep.get("/e/customer", params={"q": "tea", "sort": "name", "panel": "filters"})
    assert drawn.status_code == 200
    assert '<details class="panel" open>' in drawn.text and 'name="f.industry.in"' in drawn.text
    assert 'hx-get="/e/customer/filters' not in drawn.text and "<noscript>" not in drawn.text
    assert 'value="tea"' in drawn.text  # the state is kept
    zh = client_for("rep_east1", lang="zh-CN").get("/e/customer").text
    assert "显示筛选条件" in zh
    # the panel stays the reader's: a hidden field is not offered
    hidden = rep.get("/e/customer", params={"panel": "filters"}).text
    assert "annual_revenue" not in hidden
