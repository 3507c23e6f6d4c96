"""The list page on the event loop (``UIContext.endpoint(..., inline=True)``): on SQLite
with a statement timeout, as ``tidepool serve`` runs it, the page is served without the
thread hop, and it is the same page, for every viewer, as through a request thread.
A page the bound refuses (a statement past the budget) is finished in a thread."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine
from tests.ui.conftest import SECRET, DemoDB, make_record, sign_in
from ui import context as ui_context
from ui import inline as api_inline
from ui.app import create_app
from ui.context import UIContext

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_STAMPS = ("tp_policy_version", "tp_metadata")


@dataclass
class Served:
    ui: UIContext
    app: Any
    hops: list[str]  # handlers run in a request thread, in order
    statements: list[str]

    def client(self, login: str, lang: str) -> TestClient:
        client = TestClient(self.app, base_url="http://testserver")
        client.cookies.set("tp_lang", lang)
        return sign_in(client, login)

    def inline_page(self, client: TestClient, path: str) -> str:
        """``path`` served on the loop: asked again if a cache's stamp came due meanwhile
        (its read sends the page to a thread, as it should)."""
        for _ in range(5):
            self.hops.clear()
            response = client.get(path)
            assert response.status_code == 200, response.text[:300]
            if not self.hops:
                return response.text
        raise AssertionError(f"{path} never ran on the event loop: {self.hops}")

    def threaded_page(self, client: TestClient, path: str) -> str:
        self.ui.inline.enabled = False
        try:
            response = client.get(path)
        finally:
            self.ui.inline.enabled = True
        assert response.status_code == 200 and self.hops, response.text[:300]
        return response.text


@pytest.fixture(scope="module")
def seeded(demo_db: DemoDB) -> DemoDB:
    make_record(demo_db, "customer", {"name": "Inline <Co> & Sons", "grade": "A",
                                      "annual_revenue": {"amount": "777", "currency": "CNY"}},
                owner="rep_east2")
    make_record(demo_db, "customer", {"name": "Inline Pool Co"})
    return demo_db


@pytest.fixture
def served(seeded: DemoDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The app over a bounded engine (statement timeout: the inline path applies), every
    hop to a request thread recorded, every statement seen."""
    hops: list[str] = []
    real = ui_context.in_thread

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", "?"))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(ui_context, "in_thread", counted)  # the endpoint's own hop
    monkeypatch.setattr(api_inline, "in_thread", counted)  # a refused inline read's
    engine = make_engine(seeded.url, statement_timeout=5.0)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    live = LiveRuntime(seeded.url, engine=engine, policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=SECRET)
    try:
        yield Served(app.state.ui, app, hops, statements)
    finally:
        live.dispose()


@pytest.mark.parametrize("login", ["rep_east2", "manager"])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_page_on_the_loop_is_the_page_from_a_thread(
        served: Served, login: str, lang: str) -> None:
    assert served.ui.inline.enabled  # SQLite, bounded
    client = served.client(login, lang)
    for path in ("/e/customer", "/e/customer?q=Inline&cols=name&cols=grade&cols=owner_id",
                 "/e/customer?panel=filters", "/e/contact"):
        threaded = served.threaded_page(client, path)
        assert served.inline_page(client, path) == threaded, path
    fragment = client.get("/e/customer?q=Inline", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    # What each viewer may see, on the loop: a rep's hidden field stays hidden.
    page = served.inline_page(client, "/e/customer?q=Inline&panel=filters")
    assert "&lt;Co&gt; &amp; Sons" in page and "<Co>" not in page
    revenue = "Annual revenue" if lang == "en" else "年营业额"
    assert (revenue in page) is (login == "manager")
    asked = client.get("/e/customer?q=Inline&cols=name&cols=annual_revenue")
    if login == "manager":
        assert asked.status_code == 200 and "777" in asked.text
    else:  # a column it may not see is refused, not drawn
        assert asked.status_code == 400 and "777" not in asked.text
    # The CSRF token of the session is on the page's forms and in htmx's header.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and f'"X-CSRF-Token": "{token.group(1)}"' in page


def test_a_page_on_the_loop_is_still_its_query_plus_one(served: Served) -> None:
    client = served.client("rep_east1", "en")
    make_record_as = served.ui.runtime().records
    make_record_as.create(Actor.system("test"), "customer", {
        "name": "Counted Inline Co", "owner_id": _user(served, "rep_east1")})
    served.inline_page(client, "/e/customer")  # warm: caches and plans
    served.statements.clear()
    page = served.inline_page(client, "/e/customer")
    assert "Counted Inline Co" in page
    work = [s for s in served.statements if not any(t in s for t in _STAMPS)]
    assert len(work) == 2, work  # the page and the drop forecast of the rep's rows
    assert "FROM customer" in work[0]


def test_a_page_past_the_budget_is_finished_in_a_thread(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    records = served.ui.runtime().records
    owner = _user(served, "rep_east1")
    records.bulk_create(Actor.system("test"), "customer",
                        [{"name": f"Budget Shop {n}", "owner_id": owner} for n in range(1_500)])
    client = served.client("rep_east1", "en")
    served.inline_page(client, "/e/customer")  # warm
    # A budget spent before the statement starts: the progress handler stops the search
    # (a scan of 1,500 rows) at its first check, and the page runs again in a thread.
    monkeypatch.setattr(served.ui.inline, "budget", 1e-9)
    before = served.ui.inline.retries
    served.hops.clear()
    response = client.get("/e/customer", params={"q": "Budget Shop 1499"})
    assert response.status_code == 200
    assert re.findall(r">(Budget Shop \d+)</a>", response.text) == ["Budget Shop 1499"]
    assert served.ui.inline.retries == before + 1 and served.hops == ["in_zone"]


def _user(served: Served, login: str) -> int:
    from engine.permissions.identity import find_user

    with served.ui.runtime().engine.connect() as conn:
        user = find_user(conn, login)
    assert user is not None
    return user.id


@pytest.mark.parametrize("owned", [False, True])
def test_the_kept_connection_goes_back_when_the_app_stops(seeded: DemoDB, owned: bool) -> None:
    """The event loop's reads keep one pooled connection between requests; the app's
    shutdown gives it back, and disposes the engine if the app was told it owns it."""
    engine = make_engine(seeded.url, statement_timeout=5.0)
    live = LiveRuntime(seeded.url, engine=engine, policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=SECRET, dispose_on_shutdown=owned)
    pool = engine.pool
    try:
        with TestClient(app) as client:
            sign_in(client, "rep_east1")
            assert app.state.ui.inline.enabled
            for _ in range(5):  # the first pages read due stamps, so finish in a thread
                assert client.get("/e/customer").status_code == 200
                if pool.checkedout():  # type: ignore[attr-defined]
                    break
            assert pool.checkedout() == 1  # type: ignore[attr-defined]  # kept by the loop
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        assert (engine.pool is not pool) is owned  # disposed: a new, empty pool
    finally:
        live.dispose()
