"""Fixtures for route tests of the UI: a demo database, the app and signed-in clients.

``demo_db`` is one prepared demo database per test module (CRM package, demo
users of every role, sample rows owned by the reps); tests that change rows make
their own records rather than relying on sample values. ``client_for(login)``
gives a ``TestClient`` signed in as that demo user; ``csrf(client)`` the token
to send with its POSTs. Kanban and admin tests use the same fixtures.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.demo import DEMO_PASSWORD, prepare_demo
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime
from tests.conftest import REPO_ROOT
from ui.app import create_app

CRM = REPO_ROOT / "apps" / "crm"
SECRET = b"test-secret-key-of-at-least-32-bytes!!"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class DemoDB:
    url: str
    live: LiveRuntime
    upload_dir: Path

    def user_id(self, login: str) -> int:
        from engine.permissions.identity import find_user

        with self.live.engine.connect() as conn:
            user = find_user(conn, login)
        assert user is not None, login
        return user.id


def make_demo(directory: Path, *, rows: int = 12) -> DemoDB:
    url = f"sqlite:///{directory / 'demo.db'}"
    prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=rows)
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy, check_interval=0)
    return DemoDB(url=url, live=live, upload_dir=directory / "uploads")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDB]:
    db = make_demo(tmp_path_factory.mktemp("ui"))
    yield db
    db.live.dispose()


@pytest.fixture(scope="module")
def app(demo_db: DemoDB):  # type: ignore[no-untyped-def]
    return create_app(demo_db.live, secret_key=SECRET, upload_dir=demo_db.upload_dir,
                      max_upload_bytes=256 * 1024)


def csrf(client: TestClient) -> str:
    """The client's CSRF token (from a page's form; the session cookie is set then)."""
    page = client.get("/login")
    found = _CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str = DEMO_PASSWORD) -> TestClient:
    response = client.post("/login", data={"login": login, "password": password,
                                           "csrf_token": csrf(client), "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    return client


@pytest.fixture
def client_for(app) -> Iterator[Callable[[str], TestClient]]:  # type: ignore[no-untyped-def]
    made: list[TestClient] = []

    def make(login: str | None, *, lang: str = "en") -> TestClient:
        """A client (signed in as ``login``) reading pages in ``lang`` (a cookie)."""
        client = TestClient(app, base_url="http://testserver")
        client.__enter__()
        if lang:
            client.cookies.set("tp_lang", lang)
        made.append(client)
        if login is not None:
            sign_in(client, login)
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)


def make_record(db: DemoDB, entity: str, values: dict[str, object], *,
                owner: str | None = None) -> int:
    """Insert a record as the engine (owned by the demo user ``owner``); returns its id."""
    from engine.actor import Actor

    payload = dict(values)
    if owner is not None:
        payload["owner_id"] = db.user_id(owner)
    return db.live.current().records.create(Actor.system("test"), entity, payload).id


def fragment(html: str) -> bool:
    """Whether a response is an htmx fragment (no page chrome)."""
    return "<html" not in html and 'class="top"' not in html
