"""The vendored htmx is the pinned release, byte for byte, and the app serves it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.conftest import REPO_ROOT

VENDOR = REPO_ROOT / "ui" / "static" / "vendor" / "htmx"


def _pins() -> dict[str, str]:
    lines = (VENDOR / "VERSION").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_htmx_file_matches_its_pinned_hash() -> None:
    pins = _pins()
    assert pins["package"] == "htmx.org" and pins["version"].startswith("4.")
    data = (VENDOR / pins["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == pins["sha256"]
    assert (VENDOR / "LICENSE").exists()


def test_pages_load_the_vendored_htmx(client_for: Callable[[str | None], TestClient]) -> None:
    client = client_for(None)
    page = client.get("/login")
    assert '<script src="/static/vendor/htmx/htmx.min.js" defer></script>' in page.text
    served = client.get("/static/vendor/htmx/htmx.min.js")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == _pins()["sha256"]
