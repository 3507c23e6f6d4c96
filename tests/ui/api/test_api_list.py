"""Lists through the API: keyset pages that visit every visible row once, the filter
syntax, sort and search, refusals of bad queries with 400, and the paged activity feed."""

from __future__ import annotations

from typing import Any

import pytest

from engine.actor import Actor
from engine.records.query import ListQuery, Sort
from engine.storage.direct import through_connection
from tests.ui.api.conftest import API, World

INDUSTRIES = ["retail", "saas", "catering", None]
ROWS = 30


class Seeded:
    def __init__(self, ids: list[int], rows: list[dict[str, Any]], rep1: set[int],
                 pool: set[int]) -> None:
        self.ids = ids
        self.rows = rows
        self.rep1 = rep1
        self.pool = pool

    def where(self, test: Any) -> set[int]:
        return {i for i, row in zip(self.ids, self.rows) if test(row)}


@pytest.fixture
def seeded(world: World) -> Seeded:
    """30 rows: a third each owned by rep1, by rep2, and waiting in the pool."""
    owners = [world.users["rep1"], world.users["rep2"], None]
    rows = []
    for i in range(ROWS):
        rows.append({
            "name": f"Cust {i:02d}", "industry": INDUSTRIES[i % 4], "employees": i,
            "owner_id": owners[i % 3] or world.users["admin"],
            "website": f"https://x{i}.example.com" if i % 5 == 0 else None,
            "licence_no": f"91310000MA1FL{i:04d}X" if i % 2 == 0 else None,
            "phone": f"+86 138 0000 {i:04d}", "tags": ["vip"] if i % 7 == 0 else None,
        })
    ids = world.live.current().records.bulk_create(Actor.system("test"), "customer", rows)
    pool = {ids[i] for i in range(ROWS) if i % 3 == 2}
    for record_id in pool:
        world.put_in_pool("customer", record_id, "customer_pool")
    rep1 = {ids[i] for i in range(ROWS) if i % 3 == 0}
    return Seeded(ids, rows, rep1, pool)


def _walk(world: World, login: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of a list, following the ``next`` links (and checking the Link header)."""
    response = world.get(login, "/customer", params=params)
    seen: list[dict[str, Any]] = []
    for _ in range(100):
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= int(params.get("limit", 50))
        seen += body["items"]
        if body["next"] is None:
            assert body["next_token"] is None and "link" not in response.headers
            return seen
        assert body["next"].startswith(f"https://crm.test{API}/customer?")
        assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
        response = world.client.get(body["next"], headers=world.auth(login))
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("sort", [None, "id", "-id", "industry", "-industry", "licence_no",
                                  "-updated_at"])
def test_pages_visit_every_visible_row_once(world: World, seeded: Seeded,
                                            sort: str | None) -> None:
    for login, limit, expected in (("rep1", 3, seeded.rep1 | seeded.pool),
                                   ("admin", 7, set(seeded.ids))):
        params = {"limit": str(limit), **({"sort": sort} if sort else {})}
        rows = _walk(world, login, params)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) and set(ids) == expected, (login, sort)
        if sort:
            key = sort.lstrip("-")
            values = [r[key] for r in rows]
            present = [v for v in values if v is not None]
            assert present == sorted(present, reverse=sort.startswith("-"))
            assert values == present + [None] * (len(values) - len(present))  # NULLs last


def test_filters_sort_and_search(world: World, seeded: Seeded) -> None:
    def ids(params: dict[str, str], login: str = "admin") -> set[int]:
        response = world.get(login, "/customer", params={"limit": "200", **params})
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["items"]}

    assert ids({"filter[industry]": "retail"}) == seeded.where(lambda r: r["industry"] == "retail")
    assert ids({"filter[industry][eq]": "retail"}) == ids({"filter[industry]": "retail"})
    assert ids({"filter[industry][in]": "retail,saas"}) == \
        seeded.where(lambda r: r["industry"] in ("retail", "saas"))
    assert ids({"filter[industry][in]": ["retail", "saas"]}) == \
        ids({"filter[industry][in]": "retail,saas"})
    assert ids({"filter[industry][is_empty]": ""}) == \
        seeded.where(lambda r: r["industry"] is None)
    assert ids({"filter[employees][gte]": "25"}) == seeded.where(lambda r: r["employees"] >= 25)
    assert ids({"filter[employees][between]": "5,9"}) == \
        seeded.where(lambda r: 5 <= r["employees"] <= 9)
    assert ids({"filter[employees][ne]": "3"}) == seeded.where(lambda r: r["employees"] != 3)
    assert ids({"filter[website][not_empty]": "true"}) == \
        seeded.where(lambda r: r["website"] is not None)
    assert ids({"filter[name][starts_with]": "Cust 1"}) == \
        seeded.where(lambda r: r["name"].startswith("Cust 1"))
    assert ids({"filter[tags][contains]": "vip"}) == seeded.where(lambda r: r["tags"])
    assert ids({"filter[industry]": "retail", "filter[employees][lt]": "10"}) == \
        seeded.where(lambda r: r["industry"] == "retail" and r["employees"] < 10)
    assert ids({"filter[owner_id]": str(world.users["rep1"])}) == seeded.rep1
    assert ids({"filter[pool_id]": "customer_pool"}, login="rep1") == seeded.pool
    # Search: a substring of name, phone or licence number; LIKE wildcards match literally.
    assert ids({"q": "Cust 2"}) == seeded.where(lambda r: r["name"].startswith("Cust 2"))
    assert ids({"q": "0000 0007"}) == seeded.where(lambda r: r["employees"] == 7)
    assert ids({"q": "%"}) == set() and ids({"q": "_"}) == set()
    assert ids({"q": "Cust"}, login="rep1") == seeded.rep1 | seeded.pool
    # Sort with a filter and a limit: the first rows in order.
    first = world.get("admin", "/customer", params={"sort": "-licence_no", "limit": "2",
                                                    "filter[industry]": "retail"}).json()
    licences = sorted((r["licence_no"] for r in seeded.rows
                       if r["industry"] == "retail" and r["licence_no"]), reverse=True)
    assert [r["licence_no"] for r in first["items"]] == licences[:2]


@pytest.mark.parametrize("params,field", [
    ({"filter[nope]": "1"}, "nope"),
    ({"filter[employees][like]": "1"}, "employees"),
    ({"filter[employees][gte]": "lots"}, "employees"),
    ({"filter[employees][between]": "1"}, "employees"),
    ({"filter[employees][gte]": ["1", "2"]}, "employees"),
    ({"filter[website][is_empty]": "no"}, "website"),
    ({"filter[location][eq]": "1,2"}, "location"),
    ({"filter[]": "1"}, "filter[]"),
    ({"filters[name]": "x"}, "filters[name]"),
    ({"page": "2"}, "page"),
    ({"sort": "notes"}, "notes"),
    ({"sort": "--id"}, "-id"),
    ({"sort": ["id", "name"]}, "sort"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"after": "not-a-token"}, "query"),
    ({"include_deleted": "maybe"}, "include_deleted"),
])
def test_bad_queries_are_400_naming_the_part(sqlite_world: World, params: dict[str, Any],
                                             field: str) -> None:
    response = sqlite_world.get("admin", "/customer", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "urn:tidepool:problem:bad-query"
    assert list(body["errors"]) == [field]


def test_a_page_token_belongs_to_its_sort(world: World, seeded: Seeded) -> None:
    page = world.get("admin", "/customer", params={"sort": "id", "limit": "2"}).json()
    other = world.get("admin", "/customer", params={"sort": "-id", "after": page["next_token"]})
    assert other.status_code == 400 and "another sort" in other.json()["detail"]
    recycle = world.get("admin", "/follow_up", params={"only_deleted": "true"})
    assert recycle.status_code == 400 and "recycle bin" in recycle.json()["detail"]


def test_the_activity_feed_pages_backwards(world: World) -> None:
    record = world.create("rep1", "customer", {"name": "Busy", "employees": 0})
    for n in range(1, 8):
        assert world.patch("rep1", f"/customer/{record['id']}",
                           {"version": n, "employees": n}).status_code == 200
    url = f"{API}/customer/{record['id']}/activity?limit=3"
    entries: list[dict[str, Any]] = []
    sizes = []
    while url:
        response = world.client.get(url, headers=world.auth("rep1"))
        assert response.status_code == 200, response.text
        body = response.json()
        sizes.append(len(body["items"]))
        entries += body["items"]
        url = body["next"]
    assert sizes == [3, 3, 2]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8
    assert [e["kind"] for e in entries] == ["update"] * 7 + ["create"]
    assert [c["new"] for e in entries[:7] for c in e["changes"]] == [7, 6, 5, 4, 3, 2, 1]
    path = f"/customer/{record['id']}/activity"
    for params in ({"limit": "0"}, {"limit": "101"}, {"before": "x"}, {"after": "1"}):
        bad = world.get("rep1", path, params=params)
        assert bad.status_code == 400, params


def test_list_items_are_written_as_point_reads_are(world: World) -> None:
    """A list page's records go to the encoder as read (issue 13): every value type must
    come out exactly as the point read writes it (decimals, money, dates, instants, JSON)."""
    customer = world.create("admin", "customer", {
        "name": "Types Ltd", "annual_revenue": {"amount": "1234.50", "currency": "CNY"},
        "address": {"city": "Hangzhou", "street": "1 West Lake Rd"},
        "location": {"lat": 30.25, "lng": 120.16}, "tags": ["vip"], "employees": 7})
    world.create("admin", "opportunity", {
        "name": "Deal", "customer": customer["id"], "probability": "12.5",
        "amount": {"amount": "99.99", "currency": "CNY"}, "expected_close": "2027-01-31"})
    world.create("admin", "follow_up", {"kind": "call", "content": "intro",
                                         "customer": customer["id"],
                                         "happened_at": "2026-11-30T08:15:00+08:00"})
    for entity in ("customer", "opportunity", "follow_up"):
        items = world.get("admin", f"/{entity}").json()["items"]
        assert items
        for item in items:
            assert item == world.get("admin", f"/{entity}/{item['id']}").json()
    listed = world.get("admin", "/customer").json()["items"][0]
    assert listed["annual_revenue"] == {"amount": "1234.50", "currency": "CNY"}
    assert listed["created_at"].endswith("+00:00")
    # Lists and point reads run on a pooled cursor (engine/storage/direct.py): the values
    # must be those SQLAlchemy's Connection reads, for every type, first page and keyset
    # page (its position bound as an instant).
    records = world.live.current().records
    admin = Actor.system("test")
    for entity in ("customer", "opportunity", "follow_up"):
        first = ListQuery(limit=1, sort=Sort("updated_at", descending=True))
        pages = [records.list(admin, entity, first)]
        if pages[0].next_token:
            pages.append(records.list(admin, entity, ListQuery(
                limit=1, sort=first.sort, after=pages[0].next_token)))
        with through_connection():
            assert records.list(admin, entity, first) == pages[0]
            if len(pages) > 1:
                assert records.list(admin, entity, ListQuery(
                    limit=1, sort=first.sort, after=pages[0].next_token)) == pages[1]
        for record in (r for page in pages for r in page.rows):
            direct = records.get(admin, entity, record.id)
            with through_connection():
                assert records.get(admin, entity, record.id) == direct


def test_next_links_keep_every_parameter_and_replace_the_position() -> None:
    """``with_query_param`` builds what Starlette's ``include_query_params`` did (the
    parameter replaced and moved last, the others kept in order, blanks kept)."""
    from starlette.requests import Request

    from ui.api.app import with_query_param

    scope = {"type": "http", "scheme": "http", "server": ("testserver", 80), "path": "/api/v1/x",
             "query_string": b"q=a%20b&after=old&filter[name][eq]=&limit=5",
             "headers": [(b"host", b"example.org:8080")], "root_path": ""}
    request = Request(scope)
    expected = str(request.url.include_query_params(after="new+/=token"))
    assert with_query_param(request, "after", "new+/=token") == expected
