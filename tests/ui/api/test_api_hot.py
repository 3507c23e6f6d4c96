"""The API's list and point reads dispatched past the route table (ui/api/hot.py): the same
status, body and headers as through the mounted API, for answers, refusals and errors;
the app's security headers on every one; one statement per read; other paths untouched."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.service import RecordService
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine
from tests.ui.api.conftest import API
from tests.ui.api.test_api_request_path import Seeded, Statements, seeded  # noqa: F401
from ui.api.hot import HotReads, route_path
from ui.app import create_app

_SAME_HEADERS = ("content-type", "etag", "link", "www-authenticate", "location")
_SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy",
             "content-security-policy")


def _api_of(app: Starlette) -> Starlette:
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == API)
    api: Starlette = mount.app  # type: ignore[assignment]
    return api


def test_hot_reads_answer_as_the_mounted_api(seeded: Seeded) -> None:  # noqa: F811
    engine = make_engine(seeded.url, statement_timeout=5.0)  # as `tidepool serve` builds it
    live = LiveRuntime(seeded.url, engine=engine, policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=b"k" * 32, screen_modules=["ui.auth"])
    api = _api_of(app)
    hot: HotReads = api.state.hot_reads
    routed = Starlette(routes=[Mount(API, app=api)])  # the route table, as before
    rep1, rep3 = seeded.tokens["rep1"], seeded.tokens["rep3"]
    try:
        with TestClient(app, base_url="https://crm.test") as full, \
                TestClient(routed, base_url="https://crm.test") as plain:
            def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return client.request(method, API + path, headers=headers)

            mine = []
            for n in range(3):
                created = full.post(f"{API}/customer", json={"name": f"Shop {n}"},
                                    headers={"Authorization": f"Bearer {rep1}"})
                assert created.status_code == 201, created.text
                mine.append(created.json()["id"])
            theirs = full.post(f"{API}/customer", json={"name": "Theirs"},
                               headers={"Authorization": f"Bearer {rep3}"}).json()["id"]
            assert hot.served == 0  # writes take the route table
            hot_shaped = [
                ("GET", "/customer?limit=2", rep1),  # a page with a next link
                ("GET", "/customer?limit=2&filter[name][eq]=Shop%201&q=Shop", rep1),
                ("GET", f"/customer/{mine[0]}", rep1),
                ("HEAD", f"/customer/{mine[0]}", rep1),
                ("GET", f"/customer/{theirs}", rep1),  # out of scope: 404, as absent
                ("GET", "/customer/999999", rep1),
                ("GET", "/nothing", rep1),  # no such entity
                ("GET", "/customer?limit=0", rep1),  # bounds: a 400 problem
                ("GET", "/customer?limit=100000", rep1),
                ("GET", "/customer?nonsense=1", rep1),
                ("GET", "/customer", None),  # no token: 401 with a challenge
                ("GET", "/customer", rep1 + "x"),
                ("GET", f"/customer/{mine[0]}?include_deleted=maybe", rep1),
            ]
            elsewhere = [
                ("GET", "/openapi.json", rep1),
                ("GET", "/customer/99999999999999999999", rep1),  # beyond 64 bits: no route
                ("GET", f"/customer/{mine[0]}/activity", rep1),
                ("DELETE", "/customer", rep1),  # 405 from the route table
            ]
            for method, path, token in hot_shaped + elsewhere:
                got, expected = call(full, method, path, token), call(plain, method, path, token)
                assert (got.status_code, got.content) == (expected.status_code,
                                                          expected.content), (method, path)
                for name in _SAME_HEADERS:
                    assert got.headers.get(name) == expected.headers.get(name), (path, name)
                for name in _SECURITY:
                    assert name in got.headers, (path, name)
                if got.status_code >= 400:
                    assert got.headers["content-type"] == "application/problem+json", path
            assert hot.served == len(hot_shaped)
            listed = call(full, "GET", "/customer?limit=50", rep1).json()["items"]
            assert sorted(item["id"] for item in listed) == sorted(mine)
            # One statement per read, as through the route table.
            statements = Statements(engine)
            for path in ("/customer?limit=50", f"/customer/{mine[0]}"):
                with statements.counting() as found:
                    assert call(full, "GET", path, rep1).status_code == 200
                assert len(found) == 1, found
    finally:
        live.dispose()


def test_a_failing_hot_read_is_a_500_problem_with_the_security_headers(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    live = LiveRuntime(seeded.url, policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=b"k" * 32, screen_modules=["ui.auth"])

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret SQL text")

    monkeypatch.setattr(RecordService, "list_json", broken)
    try:
        with TestClient(app, base_url="https://crm.test", raise_server_exceptions=False) as client:
            response = client.get(f"{API}/customer",
                                  headers={"Authorization": f"Bearer {seeded.tokens['rep1']}"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "secret" not in response.text
        assert all(name in response.headers for name in _SECURITY)
        assert _api_of(app).state.hot_reads.served == 1
    finally:
        live.dispose()


@pytest.mark.parametrize(("path", "root", "expected"), [
    ("/api/v1/customer", "", "/api/v1/customer"),
    ("/crm/api/v1/customer", "/crm", "/api/v1/customer"),
    ("/crm", "/crm", ""),
    ("/crmx/api/v1/customer", "/crm", "/crmx/api/v1/customer"),  # not below the root
    ("/api/v1/customer", "/crm", "/api/v1/customer"),
])
def test_route_path_is_the_path_below_the_root(path: str, root: str, expected: str) -> None:
    assert route_path({"type": "http", "path": path, "root_path": root}) == expected


def test_hot_reads_pick_handlers_as_starlette_does() -> None:
    """Status-code handlers first for an HTTPException, then the class hierarchy; 500 and
    Exception belong to the server-error handler (Starlette's middleware split)."""
    from starlette.exceptions import HTTPException

    async def by_status(request: Any, exc: Exception) -> Any: ...
    async def by_class(request: Any, exc: Exception) -> Any: ...
    async def server(request: Any, exc: Exception) -> Any: ...

    class Teapot(HTTPException):
        pass

    hot = HotReads("/api/v1", list_endpoint=by_class, get_endpoint=by_class,  # type: ignore[arg-type]
                   handlers={418: by_status, HTTPException: by_class, 500: server,
                             Exception: server, LookupError: by_class})
    assert hot._handler(Teapot(418)) is by_status
    assert hot._handler(HTTPException(404)) is by_class
    assert hot._handler(KeyError("x")) is by_class  # via LookupError
    assert hot._handler(ValueError("x")) is None  # the server error's, raised on


def test_hot_reads_send_the_headers_the_security_middleware_sent(
        seeded: Seeded) -> None:  # noqa: F811
    """Answered before the app's middleware, a hot read still has every header, in the
    order the security-header middleware gave them (the tile server's origin in the CSP)."""
    from starlette.middleware import Middleware

    from ui.app import SecurityHeadersMiddleware

    engine = make_engine(seeded.url, statement_timeout=5.0)
    live = LiveRuntime(seeded.url, engine=engine, policy_factory=CasbinAccessPolicy)
    tiles = "https://tile.example.org/{z}/{x}/{y}.png"
    app = create_app(live, secret_key=b"k" * 32, screen_modules=["ui.auth"], map_tiles=tiles)
    api = _api_of(app)
    routed = Starlette(routes=[Mount(API, app=api)], middleware=[
        Middleware(SecurityHeadersMiddleware, image_source="https://tile.example.org")])
    token = seeded.tokens["rep1"]
    try:
        with TestClient(app, base_url="https://crm.test") as full, \
                TestClient(routed, base_url="https://crm.test") as plain:
            for n in range(3):
                assert full.post(f"{API}/customer", json={"name": f"Shop {n}"},
                                 headers={"Authorization": f"Bearer {token}"}).status_code == 201
            served = api.state.hot_reads.served
            for path, sent in (("/customer?limit=2", token), ("/customer/999999", token),
                               ("/customer", None), ("/customer?limit=0", token)):
                headers = {"Authorization": f"Bearer {sent}"} if sent else {}
                got = full.get(API + path, headers=headers)
                expected = plain.get(API + path, headers=headers)
                assert (got.status_code, got.content) == (expected.status_code,
                                                          expected.content), path
                assert got.headers.raw == expected.headers.raw, path
                assert b"img-src 'self' data: https://tile.example.org" \
                    in dict(got.headers.raw)[b"content-security-policy"]
            assert api.state.hot_reads.served == served + 4
    finally:
        live.dispose()
