"""The vendored ECharts is the pinned npm release, byte for byte, and pages serve it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.conftest import REPO_ROOT

VENDOR = REPO_ROOT / "ui" / "static" / "vendor" / "echarts"


def _pins() -> dict[str, str]:
    lines = (VENDOR / "VERSION").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_echarts_file_matches_its_pinned_hash() -> None:
    pins = _pins()
    assert pins["package"] == "echarts" and pins["version"] == "6.1.0"
    data = (VENDOR / pins["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == pins["sha256"]
    assert (VENDOR / "LICENSE").exists() and (VENDOR / "NOTICE").exists()


def test_report_pages_load_the_vendored_echarts(client_for: Callable[..., TestClient]) -> None:
    client = client_for("manager")
    page = client.get("/reports/sales_funnel")
    assert '<script src="/static/vendor/echarts/echarts.min.js" defer></script>' in page.text
    assert "cdn" not in page.text.lower()
    served = client.get("/static/vendor/echarts/echarts.min.js")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == _pins()["sha256"]
