"""The list page in process: its CPU per page, and its bytes for comparing two trees.

Not part of ``run_all``: a tool for work on the list page (issue 13, item 4). The
app is called as an ASGI callable (no HTTP server, no TestClient), over a bounded
engine as ``tidepool serve`` runs it, so the page is served on the event loop.

  PYTHONPATH=TREE python -m bench.list_pages setup DIR --rows 20000
      a demo database in DIR grown to ROWS customers, and the session cookies of
      four demo users (signed with this module's key: both trees accept them)
  PYTHONPATH=TREE python -m bench.list_pages time DIR [--pages 300] [--rounds 7]
      CPU per page of rep_east1's /e/customer (min and median of the rounds)
  PYTHONPATH=TREE python -m bench.list_pages count DIR --pages N
      N pages after a warm-up, nothing printed: run under
      ``valgrind --tool=cachegrind --cache-sim=no`` with N and with 0, the
      difference over N is the instructions per page, steady on a shared machine
  PYTHONPATH=TREE python -m bench.list_pages dump DIR OUT
      every list page below (4 users, en and zh-CN, full and htmx fragment, and
      two "load more" pages after each full one) written to OUT, one file each:
      ``diff -r`` two trees' OUT for byte identity (run both within a minute: the
      filter panel's "Today" links follow the company's clock)
"""

from __future__ import annotations

import argparse
import asyncio
import html
import io
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from bench.databases import copy_rows_until
from engine.demo import DEMO_PASSWORD, prepare_demo
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine, statement_timeout_setting
from ui.app import create_app

SECRET = b"bench-only-secret-key-not-for-production-use"
USERS = ("rep_east1", "rep_east2", "manager", "admin")
CRM = Path(__file__).resolve().parent.parent / "apps" / "crm"
PATHS = ("/e/customer", "/e/customer?sort=name", "/e/customer?sort=-name&limit=25",
         "/e/customer?q=a", "/e/customer?panel=filters", "/e/customer?f.grade=A",
         "/e/customer?cols=name,grade,owner_id,annual_revenue", "/e/customer?tab=pool",
         "/e/contact", "/e/opportunity", "/e/lead", "/e/customer?limit=100")
_MORE = re.compile(rb'hx-get="(/e/[a-z_]+\?[^"]*after=[^"]+)"')


def live_runtime(directory: Path) -> LiveRuntime:
    """The runtime over ``directory``'s demo database as ``tidepool serve`` builds it
    (a statement timeout, so SQLite's bounded reads run on the event loop)."""
    url = f"sqlite:///{directory / 'demo.db'}"
    return LiveRuntime(url, engine=make_engine(url, statement_timeout=statement_timeout_setting()),
                       policy_factory=CasbinAccessPolicy)


def demo_database(directory: Path, rows: int) -> LiveRuntime:
    """The CRM demo in ``directory`` with ``rows`` customers, opened (the caller disposes
    of it); this bench and bench/api_requests.py set up the same way."""
    directory.mkdir(parents=True, exist_ok=True)
    prepare_demo(f"sqlite:///{directory / 'demo.db'}", apps=[CRM], out=io.StringIO(), rows=200)
    live = live_runtime(directory)
    copy_rows_until(live.current(), "customer", rows)
    return live


def setup(directory: Path, rows: int) -> None:
    live = demo_database(directory, rows)
    app = create_app(live, secret_key=SECRET)
    cookies = {}
    for login in USERS:
        client = TestClient(app, base_url="http://testserver")
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert found, "no CSRF field on /login"
        signed = client.post("/login", data={"login": login, "password": DEMO_PASSWORD,
                                              "csrf_token": found.group(1), "next": "/"},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.text[:300]
        cookies[login] = dict(client.cookies)
    (directory / "cookies.json").write_text(json.dumps(cookies))
    live.dispose()


class Caller:
    """GET requests straight into the app, one at a time, on one event loop."""

    def __init__(self, directory: Path) -> None:
        self.live = live_runtime(directory)
        self.app = create_app(self.live, secret_key=SECRET)
        self.cookies = json.loads((directory / "cookies.json").read_text())
        self.loop = asyncio.new_event_loop()

    def get(self, login: str, target: str, *, lang: str = "en",
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        cookie = "; ".join(f"{k}={v}" for k, v in {**self.cookies[login], "tp_lang": lang}.items())
        sent = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
        sent += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "", "headers": sent,
                 "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {}}
        body: list[bytes] = []
        status = [0]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        self.loop.run_until_complete(self.app(scope, receive, send))
        return status[0], b"".join(body)


def timing(directory: Path, pages: int, rounds: int) -> None:
    caller = Caller(directory)
    for _ in range(50):
        status, body = caller.get("rep_east1", "/e/customer")
        assert status == 200, body[:300]
    results = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(pages):
            caller.get("rep_east1", "/e/customer")
        results.append((time.process_time() - started) / pages * 1000)
    results.sort()
    print(f"ms/page min {results[0]:.3f} median {results[len(results) // 2]:.3f} "
          f"({len(body):,} bytes)")


def count(directory: Path, pages: int) -> None:
    caller = Caller(directory)
    for _ in range(30 + pages):
        caller.get("rep_east1", "/e/customer")


def dump(directory: Path, out: Path) -> None:
    caller = Caller(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = 0

    def keep(name: str, status: int, body: bytes) -> None:
        nonlocal written
        (out / name).write_bytes(f"{status}\n".encode() + body)
        written += 1

    for login in USERS:
        for lang in ("en", "zh-CN"):
            for path in PATHS:
                for kind, headers in (("full", {}), ("frag", {"HX-Request": "true"})):
                    name = f"{login}_{lang}_{kind}_{path.replace('/', '_')}"
                    status, body = caller.get(login, path, lang=lang, headers=headers)
                    keep(name, status, body)
                    for more in ("_more", "_more2") if kind == "full" else ():
                        found = _MORE.search(body)
                        if not found:
                            break
                        status, body = caller.get(login, html.unescape(found.group(1).decode()),
                                                  lang=lang, headers={"HX-Request": "true"})
                        keep(name + more, status, body)
    print(f"{written} pages in {out}")


def tool_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The command line of an in-process tool (this one and bench/api_requests.py):
    ``setup`` a demo database in a directory, ``time`` or ``count`` requests against it,
    ``dump`` its responses to ``out`` for comparing two trees."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=("setup", "time", "count", "dump"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    return parser


def run_tool(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
             commands: Mapping[str, Callable[[argparse.Namespace], None]]) -> None:
    """Parse a ``tool_parser`` command line and run its command (``dump`` needs ``out``)."""
    args = parser.parse_args(argv)
    if args.command == "dump" and args.out is None:
        parser.error("dump needs an output directory")
    commands[args.command](args)


def main(argv: Sequence[str] | None = None) -> None:
    parser = tool_parser("python -m bench.list_pages", __doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    run_tool(parser, argv, {
        "setup": lambda a: setup(a.directory, a.rows),
        "time": lambda a: timing(a.directory, a.pages, a.rounds),
        "count": lambda a: count(a.directory, a.pages),
        "dump": lambda a: dump(a.directory, a.out)})


if __name__ == "__main__":
    main()
