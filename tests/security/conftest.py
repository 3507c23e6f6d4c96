"""Fixtures of the security suite: the API world and the demo screens, reused from tests/ui.

``world`` runs on SQLite and PostgreSQL (tests/ui/api/conftest.py); ``demo_db``,
``app`` and ``client_for`` are the demo database and signed-in screen clients of
tests/ui/conftest.py (SQLite). ``raw_call`` drives the ASGI app directly, for
requests no HTTP client will send (a 64 KiB query string, a body that never ends).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio

from tests.ui.api.conftest import World, sqlite_world, world
from tests.ui.conftest import DemoDB, app, client_for, csrf, demo_db, make_record, sign_in

__all__ = ["DemoDB", "RawResponse", "World", "app", "client_for", "csrf", "demo_db",
           "make_record", "raw_call", "sign_in", "sqlite_world", "world"]


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    consumed: int = 0           # request body bytes the app pulled from the client
    chunks_left: int = 0        # chunks of the request body never asked for

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def raw_call(asgi: Callable[..., Awaitable[None]], method: str, path: str, *,
             query: bytes = b"", headers: Iterable[tuple[str, str]] = (),
             body: Iterable[bytes] = (), cookies: str = "") -> RawResponse:
    """One request straight through the ASGI app; ``body`` is pulled chunk by chunk, so a
    test can offer hundreds of MiB lazily and see how much was read."""
    chunk_iter = iter(body)
    consumed = 0
    sent: list[dict[str, object]] = []
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers]
    if cookies:
        raw_headers.append((b"cookie", cookies.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "headers": raw_headers,
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80)}
    pending: list[bytes] = []

    async def receive() -> dict[str, object]:
        nonlocal consumed
        if not pending:
            nxt = next(chunk_iter, None)
            if nxt is None:
                return {"type": "http.request", "body": b"", "more_body": False}
            pending.append(nxt)
        chunk = pending.pop()
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def run() -> None:
        await asgi(scope, receive, send)

    # In a thread of its own: Playwright's sync API (the browser tests, earlier in the
    # same session) keeps an event loop marked running on the main thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, run).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent  # type: ignore[misc]
                       if m["type"] == "http.response.body")
    left = sum(1 for _ in chunk_iter)
    hdrs = {k.decode().lower(): v.decode()
            for k, v in start.get("headers", [])}  # type: ignore[attr-defined]
    return RawResponse(status=int(start["status"]), headers=hdrs,  # type: ignore[call-overload]
                       body=content, consumed=consumed, chunks_left=left)
