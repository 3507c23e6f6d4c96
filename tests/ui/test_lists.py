"""List screens: search, filters, sort, keyset paging, columns, counts, saved views,
bulk actions and exports -- always within the signed-in user's permissions."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, fragment, make_record, sign_in

Client = Callable[[str | None], TestClient]


def _ids(html: str, entity: str = "customer") -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="row-(\d+)"', html)] if entity else []


@pytest.fixture(scope="module")
def marked(demo_db: DemoDB) -> dict[str, int]:
    """Customers with known values, one per rep, plus one in the pool."""
    return {
        "east1": make_record(demo_db, "customer", {
            "name": "Zebra Alpha East1", "industry": "retail", "employees": 150,
            "grade": "A"}, owner="rep_east1"),
        "east2": make_record(demo_db, "customer", {
            "name": "Zebra Bravo East2", "industry": "retail", "employees": 40,
            "annual_revenue": {"amount": "999", "currency": "CNY"}}, owner="rep_east2"),
        "west1": make_record(demo_db, "customer", {
            "name": "Zebra Charlie West1", "industry": "saas", "employees": 10},
            owner="rep_west1"),
        "formula": make_record(demo_db, "customer", {
            "name": "=HYPERLINK(\"http://evil\")", "industry": "other"}, owner="rep_west1"),
    }


def test_rep_sees_only_own_and_pool_rows(client_for: Client, marked: dict[str, int],
                                         demo_db: DemoDB) -> None:
    page = client_for("rep_east1").get("/e/customer", params={"q": "Zebra", "n": "200"})
    assert page.status_code == 200
    assert _ids(page.text) == [marked["east1"]]
    everything = client_for("rep_east1").get("/e/customer", params={"n": "200"}).text
    owners = demo_db.live.current().records
    from engine.actor import Actor

    for record_id in _ids(everything):
        record = owners.get(Actor.system(), "customer", record_id)
        assert record["owner_id"] in (demo_db.user_id("rep_east1"), None)


def test_manager_sees_the_whole_department(client_for: Client, marked: dict[str, int]) -> None:
    page = client_for("manager").get("/e/customer", params={"q": "Zebra"})
    assert set(_ids(page.text)) == {marked["east1"], marked["east2"], marked["west1"]}


def test_search_as_you_type_returns_a_fragment(client_for: Client, marked: dict[str, int]) -> None:
    page = client_for("manager").get("/e/customer", params={"q": "bravo"},
                                     headers={"HX-Request": "true"})
    assert fragment(page.text) and page.headers["vary"] == "HX-Request"
    assert _ids(page.text) == [marked["east2"]]
    assert '<div id="results">' in page.text
    full = client_for("manager").get("/e/customer", params={"q": "bravo"},
                                     headers={"HX-Request": "true", "HX-Request-Type": "full"})
    assert "<html" in full.text


def test_list_and_detail_pages_answer_with_the_same_page_headers(
        client_for: Client, marked: dict[str, int]) -> None:
    """The list page is drawn around its kept shell (``render_shell``), every other page by
    ``render``: both say ``Vary`` and keep a ``?lang=`` choice in the locale cookie."""
    for url in ("/e/customer", f"/e/customer/{marked['east1']}"):
        page = client_for("rep_east1").get(url, params={"lang": "zh-CN"})  # cookie: en
        assert page.status_code == 200 and page.headers["vary"] == "HX-Request"
        assert 'lang="zh-CN"' in page.text
        assert "tp_lang=zh-CN" in page.headers["set-cookie"]


@pytest.mark.parametrize("params,expected", [
    ({"f.industry.in": ["retail"]}, {"east1", "east2"}),
    ({"f.industry.in": ["retail", "saas"]}, {"east1", "east2", "west1"}),
    ({"f.employees.gte": "40", "f.employees.lte": "150"}, {"east1", "east2"}),
    ({"f.employees.gte": "100"}, {"east1"}),
    ({"f.grade.in": ["A"]}, {"east1"}),
    ({"f.grade.is_empty": "1", "f.industry.in": ["retail"]}, {"east2"}),
    ({"f.name.contains": "charlie"}, {"west1"}),
])
def test_filters_per_field_type(client_for: Client, marked: dict[str, int],
                                params: dict[str, object], expected: set[str]) -> None:
    page = client_for("manager").get("/e/customer", params={"q": "Zebra", **params})
    assert page.status_code == 200, page.text[:300]
    assert set(_ids(page.text)) == {marked[k] for k in expected}


def test_reference_filter_and_bad_filters(client_for: Client, marked: dict[str, int],
                                          demo_db: DemoDB) -> None:
    contact = make_record(demo_db, "contact", {"name": "Ref Person", "customer": marked["east1"]},
                          owner="rep_east1")
    page = client_for("rep_east1").get("/e/contact", params={
        "f.customer.eq": str(marked["east1"])})
    assert _ids(page.text) == [contact]
    client = client_for("manager")
    assert client.get("/e/customer", params={"f.employees.gte": "many"}).status_code == 400
    assert client.get("/e/customer", params={"f.nope.eq": "1"}).status_code == 400
    assert client.get("/e/customer", params={"f.name.explode": "1"}).status_code == 400
    assert client.get("/e/customer", params={"f.annual_revenue.gte": "1"}).status_code == 200


def test_sort_only_on_indexed_fields(client_for: Client, marked: dict[str, int]) -> None:
    client = client_for("manager")
    up = client.get("/e/customer", params={"q": "Zebra", "sort": "website"})
    assert up.status_code == 400  # website has no index
    by_grade = client.get("/e/customer", params={"q": "Zebra", "sort": "-grade"})
    assert by_grade.status_code == 200
    assert 'aria-sort="descending"' in by_grade.text
    assert client.get("/e/customer", params={"sort": "notes"}).status_code == 400


def test_keyset_paging_visits_every_row_once(client_for: Client) -> None:
    client = client_for("manager")
    first = client.get("/e/customer", params={"n": "25"})
    total = _count(client, first.text)
    seen = _ids(first.text)
    more = re.search(r'<a href="([^"]+)" rel="next"', first.text)
    while more:
        page = client.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
        assert fragment(page.text) and "<thead" not in page.text  # rows only
        seen += _ids(page.text)
        more = re.search(r'<a href="([^"]+)" rel="next"', page.text)
    assert len(seen) == len(set(seen)) == total
    assert client.get("/e/customer", params={"after": "garbage"}).status_code == 400
    assert client.get("/e/customer", params={"n": "5000"}).status_code == 400


def test_column_choice(client_for: Client, marked: dict[str, int]) -> None:
    client = client_for("manager")
    page = client.get("/e/customer", params=[("q", "Zebra"), ("cols", "name"),
                                             ("cols", "employees")])
    head = re.search(r"<thead>.*?</thead>", page.text, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert "Employees" in head and "Industry" not in head
    assert client.get("/e/customer", params={"cols": "password"}).status_code == 400
    rep = client_for("rep_east1")  # a hidden field is no column for a rep
    assert rep.get("/e/customer", params={"cols": "annual_revenue"}).status_code == 400


def _count(client: Client, page: str) -> int:
    """The count the list page loads after itself (its deferred htmx fragment)."""
    url = re.search(r'hx-get="(/e/[a-z_]+/count[^"]*)" hx-trigger="load"', page)
    assert url, "no deferred count on the page"
    fragment = client.get(url.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    found = re.search(r"([\d,]+)\+? records", fragment.text)
    assert found, fragment.text
    return int(found.group(1).replace(",", ""))


def test_counts(client_for: Client, marked: dict[str, int]) -> None:
    client = client_for("manager")
    page = client.get("/e/customer", params={"q": "Zebra"})
    assert "records" not in page.text.split('class="count"')[1][:200]  # not in the page
    assert _count(client, page.text) == 3  # the filters travel with the count's URL
    # Scoped as the list is: a rep counts only what they may read.
    rep = client_for("rep_east1")
    listed = rep.get("/e/customer", params={"n": "100"})
    assert _count(rep, listed.text) == len(_ids(listed.text))
    assert rep.get("/e/nothing/count").status_code == 404
    assert rep.get("/e/customer/count", params={"f.nope.eq": "1"}).status_code == 400


def test_saved_views_personal_and_shared(client_for: Client, marked: dict[str, int]) -> None:
    owner, other = client_for("sup_east"), client_for("sup_west")
    token = csrf(owner)
    done = owner.post("/e/customer/views", data={
        "name": "Retail zebras", "state": "q=Zebra&f.industry.in=retail", "csrf_token": token},
        follow_redirects=False)
    assert done.status_code == 303
    opened = owner.get(done.headers["location"], follow_redirects=False)
    assert opened.headers["location"] == "/e/customer?q=Zebra&f.industry.in=retail"
    assert "Retail zebras" in owner.get("/e/customer").text
    assert "Retail zebras" not in other.get("/e/customer").text
    assert other.get(done.headers["location"], follow_redirects=False).status_code == 404
    owner.post("/e/customer/views", data={"name": "Team view", "state": "q=Zebra",
                                          "shared": "1", "csrf_token": token})
    page = other.get("/e/customer").text
    assert "Team view" in page
    shared_id = re.search(r'href="/e/customer/views/(\d+)">Team view', page).group(1)  # type: ignore[union-attr]
    refused = other.post(f"/e/customer/views/{shared_id}/delete",
                         data={"csrf_token": csrf(other)})
    assert refused.status_code == 403
    not_yours = other.post(f"/e/customer/views/{shared_id}/rename",
                           data={"csrf_token": csrf(other), "name": "Mine now"})
    assert not_yours.status_code == 403
    renamed = owner.post(f"/e/customer/views/{shared_id}/rename",
                         data={"csrf_token": token, "name": "Team zebras"},
                         follow_redirects=False)
    assert renamed.status_code == 303
    assert "Team zebras" in other.get("/e/customer").text
    clash = owner.post(f"/e/customer/views/{shared_id}/rename",
                       data={"csrf_token": token, "name": "Retail zebras"})
    empty = owner.post(f"/e/customer/views/{shared_id}/rename",
                       data={"csrf_token": token, "name": " "})
    assert clash.status_code == 422 and empty.status_code == 422
    assert "Team zebras" in owner.get("/e/customer").text
    # a shared view shows the viewer only their own rows
    rows = client_for("sup_west").get(f"/e/customer/views/{shared_id}")
    assert _ids(rows.text) == [marked["west1"]]


def test_bulk_update_assign_and_delete(client_for: Client, demo_db: DemoDB) -> None:
    a = make_record(demo_db, "customer", {"name": "Bulk A"}, owner="rep_east1")
    b = make_record(demo_db, "customer", {"name": "Bulk B"}, owner="rep_east2")
    west = make_record(demo_db, "customer", {"name": "Bulk W"}, owner="rep_west1")
    sup = client_for("sup_east")
    token = csrf(sup)
    page = sup.post("/e/customer/bulk", data={
        "action": "update", "field": "grade", "value": "B", "ids": [str(a), str(b), str(west)],
        "csrf_token": token, "state": "q=Bulk"})
    assert page.status_code == 200
    assert "2 of 3 records changed." in page.text and f"#{west}: not found" in page.text
    records = demo_db.live.current().records
    from engine.actor import Actor

    assert records.get(Actor.system(), "customer", a)["grade"] == "B"
    assert records.get(Actor.system(), "customer", west)["grade"] is None
    bad = sup.post("/e/customer/bulk", data={"action": "update", "field": "grade",
                                             "value": "Z", "ids": [str(a)], "csrf_token": token})
    assert bad.status_code == 422
    assert re.search(rf"#{a}: grade: [^<]*Z", bad.text), bad.text[:3000]
    sup.post("/e/customer/bulk", data={"action": "assign", "owner": str(
        demo_db.user_id("rep_east2")), "ids": [str(a)], "csrf_token": token})
    assert records.get(Actor.system(), "customer", a)["owner_id"] == demo_db.user_id("rep_east2")
    asked = sup.post("/e/customer/bulk", data={"action": "delete", "ids": [str(a)],
                                               "csrf_token": token})
    assert asked.status_code == 200 and "Delete 1 record?" in asked.text
    assert records.get(Actor.system(), "customer", a)  # nothing deleted before confirming
    assert 'name="confirmed" value="1"' in asked.text
    sup.post("/e/customer/bulk", data={"action": "delete", "ids": [str(a)], "confirmed": "1",
                                       "csrf_token": token})
    with pytest.raises(Exception, match="not found"):
        records.get(Actor.system(), "customer", a)
    rep = client_for("rep_east1")
    refused = rep.post("/e/customer/bulk", data={"action": "delete", "ids": [str(b)],
                                                 "csrf_token": csrf(rep)})
    assert refused.status_code == 403
    assign = rep.post("/e/customer/bulk", data={"action": "assign", "ids": [str(b)],
                                                "owner": "1", "csrf_token": csrf(rep)})
    assert assign.status_code == 403


def test_exports_hold_only_exportable_rows(client_for: Client, marked: dict[str, int]) -> None:
    assert client_for("rep_east1").get("/e/customer/export.csv").status_code == 403
    sup = client_for("sup_west")
    response = sup.get("/e/customer/export.csv", params={"q": "Zebra"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="customer.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["ID", "Name"]
    assert [r[1] for r in rows[1:]] == ["Zebra Charlie West1"]
    everything = sup.get("/e/customer/export.csv").content.decode("utf-8-sig")
    assert "East1" not in everything and "East2" not in everything
    assert "'=HYPERLINK" in everything  # formulas are written as text
    xlsx = sup.get("/e/customer/export.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    names = {row[1] for row in values[1:]}
    assert "Zebra Charlie West1" in names and not any("East" in str(n) for n in names)
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    selected = sup.post("/e/customer/bulk", data={
        "action": "export_csv", "ids": [str(marked["west1"]), str(marked["east1"])],
        "csrf_token": csrf(sup)})
    lines = selected.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "West1" in lines[1]


def test_hidden_fields_stay_hidden(client_for: Client, marked: dict[str, int]) -> None:
    manager = client_for("manager")
    assert "Annual revenue" in manager.get(f"/e/customer/{marked['east2']}").text
    rep = client_for("rep_east2")
    page = rep.get(f"/e/customer/{marked['east2']}")
    assert "Annual revenue" not in page.text and "999" not in page.text
    assert "Annual revenue" not in rep.get("/e/customer").text
    assert "annual_revenue" not in rep.get(f"/e/customer/{marked['east2']}/edit").text


def test_the_title_column_sorts(client_for: Client, demo_db: DemoDB) -> None:
    for name in ("Sort Zeta Co", "Sort Alpha Co", "Sort Mid Co"):
        make_record(demo_db, "customer", {"name": name}, owner="rep_east1")
    rep = client_for("rep_east1")
    page = rep.get("/e/customer?q=Sort&sort=name").text
    assert 'href="/e/customer?q=Sort&amp;sort=-name"' in page  # the header toggles
    names = re.findall(r">(Sort \w+ Co)</a>", page)
    assert names == ["Sort Alpha Co", "Sort Mid Co", "Sort Zeta Co"]
    backwards = re.findall(r">(Sort \w+ Co)</a>", rep.get("/e/customer?q=Sort&sort=-name").text)
    assert backwards == names[::-1]


def test_buttons_and_navigation_follow_a_role_change(demo_db: DemoDB, client_for: Client) -> None:
    """The list's buttons and the menu are kept per user (``UIContext.may``, the cached
    navigation providers) only while the policy state is the same: a new role shows at
    once, and so does losing it."""
    from engine.permissions.identity import create_user
    from engine.permissions.policy_store import bind_role, unbind_role
    from engine.storage.database import write_transaction

    with write_transaction(demo_db.live.engine) as conn:
        user = create_user(conn, login="promoted", display_name="Promoted", password="pw-prom-1")
        bind_role(conn, user_id=user.id, role="rep")
    client = sign_in(client_for(None), "promoted", "pw-prom-1")
    before = client.get("/e/customer").text
    assert 'href="/admin"' not in before and '<option value="delete">' not in before
    policy = demo_db.live.current().policy
    with write_transaction(demo_db.live.engine) as conn:
        bind_role(conn, user_id=user.id, role="admin")
    policy.cache.refresh()  # type: ignore[attr-defined]  # as its next stamp check would
    promoted = client.get("/e/customer").text
    assert 'href="/admin"' in promoted and '<option value="delete">' in promoted
    with write_transaction(demo_db.live.engine) as conn:
        unbind_role(conn, user_id=user.id, role="admin")
    policy.cache.refresh()  # type: ignore[attr-defined]
    after = client.get("/e/customer").text
    assert 'href="/admin"' not in after and '<option value="delete">' not in after
