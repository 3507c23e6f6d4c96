"""The API as the web app mounts it at /api/v1: tokens work, a signed-in browser session
does not (no cookies on the API, hence no CSRF), and errors stay problem details."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from engine.permissions.tokens import create_token
from engine.storage.database import write_transaction
from tests.ui.conftest import DemoDB


def _token(demo_db: DemoDB, login: str) -> str:
    with write_transaction(demo_db.live.engine) as conn:
        _, plaintext = create_token(conn, demo_db.user_id(login), name="mounted test")
    return plaintext


def test_tokens_open_the_mounted_api(demo_db: DemoDB,
                                     client_for: Callable[..., TestClient]) -> None:
    client = client_for(None)
    headers = {"Authorization": f"Bearer {_token(demo_db, 'rep_east1')}"}
    listed = client.get("/api/v1/customer", headers=headers)
    assert listed.status_code == 200, listed.text
    owners = {row["owner_id"] for row in listed.json()["items"]}
    assert owners <= {demo_db.user_id("rep_east1"), None}
    assert client.get("/api/v1/openapi.json", headers=headers).json()["openapi"] == "3.1.0"
    created = client.post("/api/v1/customer", json={"name": "Via the web app"}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/v1/customer/{created.json()['id']}"
    missing = client.get("/api/v1/no_such_entity", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_browser_session_is_no_api_credential(demo_db: DemoDB,
                                                client_for: Callable[..., TestClient]) -> None:
    browser = client_for("admin")
    assert browser.get("/").status_code == 200  # signed in to the screens
    listed = browser.get("/api/v1/customer")
    assert listed.status_code == 401
    assert listed.headers["www-authenticate"] == 'Bearer realm="tidepool"'
    assert listed.headers["content-type"] == "application/problem+json"
    # Not a CSRF refusal either: the API is exempt, and simply wants a token.
    posted = browser.post("/api/v1/customer", json={"name": "Ridden session"})
    assert posted.status_code == 401 and posted.json()["status"] == 401
