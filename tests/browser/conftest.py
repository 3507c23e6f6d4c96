"""Browser tests: the real app under uvicorn, driven by Debian's Chromium via Playwright.

``live_server`` is the base URL of a server started in a thread on 127.0.0.1
over a fresh SQLite demo database (users of every role, password
``DEMO_PASSWORD``); ``login(page, user)`` signs a page in. A failing test leaves
a screenshot in ``tests/browser/artifacts/<test name>.png``. Kanban and admin
browser tests reuse these fixtures.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from engine.demo import DEMO_PASSWORD
from tests.ui.conftest import SECRET, DemoDB, make_demo
from ui.app import create_app

CHROMIUM = "/usr/bin/chromium"
#: Milliseconds an action or navigation may wait. Generous on purpose: CI runs one test
#: process per core, so a sign-in (an argon2 hash) and a page render share the machine
#: with another process's server and browser. Not a speed check: benches measure speed.
TIMEOUT_MS = 30_000
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: A rep's phone: 390x844, touch, zh-CN, Shanghai time.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                         "has_touch": True, "device_scale_factor": 2, "locale": "zh-CN",
                         "timezone_id": "Asia/Shanghai"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def browser_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDB]:
    db = make_demo(tmp_path_factory.mktemp("browser"), rows=8)
    yield db
    db.live.dispose()


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` under uvicorn in a thread on 127.0.0.1; yields the base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(browser_demo: DemoDB) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:<port>``) of the app serving the demo database."""
    app = create_app(browser_demo.live, secret_key=SECRET, upload_dir=browser_demo.upload_dir)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--disable-background-networking"])
    yield browser
    browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) in English; screenshot on failure."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def device_page(browser: Browser, options: dict[str, Any]) -> Iterator[Page]:
    """A page in a fresh context made with ``options`` (a device: ``PHONE``...), for a
    fixture to ``yield from``; the test fails on any JavaScript error on the page."""
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def login(page: Page, base_url: str, user: str, password: str = DEMO_PASSWORD, *,
          lang: str = "en") -> None:
    """Sign ``page`` in as the demo user ``user``, reading pages in ``lang``
    (whatever the user's stored locale); lands on the start page."""
    page.goto(f"{base_url}/login?lang={lang}")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", password)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{base_url}/")
