"""A CRM world for the API tests: org, users with roles and tokens, the API mounted at /api/v1.

HQ has an admin and a manager; East has a supervisor and two reps; West one rep.
``idle`` holds no role; ``gone`` was an admin and is deactivated. Every user
has an API token. The API runs over a ``LiveRuntime`` with the Casbin policy,
mounted at /api/v1 as ui/app.py mounts it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from engine.metadata.loader import load_packages
from engine.metadata.model import Registry
from engine.permissions.identity import create_user, deactivate_user
from engine.permissions.org import create_department
from engine.permissions.policy_store import bind_role, sync_roles
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.tokens import create_token
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import init_database
from tests.conftest import REPO_ROOT
from ui.api import build_api

CRM = REPO_ROOT / "apps" / "crm"
API = "/api/v1"

# login -> (department, role or None)
USERS: dict[str, tuple[str, str | None]] = {
    "admin": ("hq", "admin"),
    "boss": ("hq", "manager"),
    "sup_east": ("east", "supervisor"),
    "rep1": ("east", "rep"),
    "rep2": ("east", "rep"),
    "rep3": ("west", "rep"),
    "idle": ("west", None),
    "gone": ("hq", "admin"),
}


@dataclass
class World:
    url: str
    engine: Engine
    registry: Registry
    live: LiveRuntime
    client: TestClient
    users: dict[str, int]
    tokens: dict[str, str]
    token_ids: dict[str, int] = field(default_factory=dict)

    def auth(self, login: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[login]}"}

    def get(self, login: str, path: str, **kw: Any) -> Any:
        return self.client.get(API + path, headers={**self.auth(login), **kw.pop("headers", {})},
                               **kw)

    def post(self, login: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(API + path, json=body,
                                headers={**self.auth(login), **kw.pop("headers", {})}, **kw)

    def patch(self, login: str, path: str, body: Any, **kw: Any) -> Any:
        return self.client.patch(API + path, json=body,
                                 headers={**self.auth(login), **kw.pop("headers", {})}, **kw)

    def upload(self, login: str, path: str, data: bytes, *, name: str,
               content_type: str) -> Any:
        """POST raw file bytes to an upload route (``/follow_up/files/attachment``)."""
        return self.client.post(API + path, content=data, params={"name": name},
                                headers={**self.auth(login), "Content-Type": content_type})

    def delete(self, login: str, path: str, **kw: Any) -> Any:
        return self.client.delete(API + path,
                                  headers={**self.auth(login), **kw.pop("headers", {})}, **kw)

    def create(self, login: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(login, f"/{entity}", body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def put_in_pool(self, entity: str, record_id: int, pool: str) -> None:
        """Pools are the workflow engine's business; tests place a record there directly."""
        table = self.live.current().schema.table(entity)
        with write_transaction(self.engine) as conn:
            conn.execute(update(table).where(table.c.id == record_id)
                         .values(owner_id=None, pool_id=pool))


def seed(url: str) -> tuple[Engine, Registry, dict[str, int], dict[str, str], dict[str, int]]:
    registry = load_packages([CRM])
    engine = make_engine(url)
    init_database(engine, target=registry, actor="test")
    users: dict[str, int] = {}
    tokens: dict[str, str] = {}
    token_ids: dict[str, int] = {}
    with write_transaction(engine) as conn:
        sync_roles(conn, registry)
        hq = create_department(conn, code="hq", name="HQ").id
        depts = {"hq": hq,
                 "east": create_department(conn, code="east", name="East", parent_id=hq).id,
                 "west": create_department(conn, code="west", name="West", parent_id=hq).id}
        for login, (dept, role) in USERS.items():
            uid = create_user(conn, login=login, display_name=login,
                              department_id=depts[dept]).id
            users[login] = uid
            if role:
                bind_role(conn, user_id=uid, role=role, registry=registry)
            info, plaintext = create_token(conn, uid, name=f"{login} test")
            tokens[login] = plaintext
            token_ids[login] = info.id
        deactivate_user(conn, users["gone"])
    return engine, registry, users, tokens, token_ids


@contextmanager
def open_world(url: str) -> Iterator[World]:
    engine, registry, users, tokens, token_ids = seed(url)
    # check_interval=0: every request sees a metadata change made by another process.
    live = LiveRuntime(url, engine=engine, policy_factory=CasbinAccessPolicy, check_interval=0)
    uploads = tempfile.TemporaryDirectory()
    outer = Starlette(routes=[Mount(API, app=build_api(
        live, max_body=64_000, upload_dir=Path(uploads.name), max_upload_bytes=64_000))])
    try:
        with TestClient(outer, base_url="https://crm.test") as client:
            yield World(url=url, engine=engine, registry=registry, live=live, client=client,
                        users=users, tokens=tokens, token_ids=token_ids)
    finally:
        live.dispose()
        uploads.cleanup()


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    """The world on SQLite and on PostgreSQL."""
    with open_world(db_url) as w:
        yield w


@pytest.fixture
def sqlite_world(sqlite_url: str) -> Iterator[World]:
    """The world on SQLite only: for request parsing that no database sees."""
    with open_world(sqlite_url) as w:
        yield w
