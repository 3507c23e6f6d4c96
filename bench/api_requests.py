"""The API's hot reads in process, through uvicorn's HTTP protocol: instructions per request.

Not part of ``run_all``: a tool for work on the API's list page and point read (issue
13). Each request is raw HTTP bytes fed to ``ui.serve.NoDelayProtocol`` (uvicorn's
httptools protocol and our coalescing transport) over a transport that only keeps what
is written, on uvloop, with the app built as ``tidepool serve`` builds it: the same
Python a worker runs per request, without the kernel's socket work, so an instruction
count is steady on a shared machine.

  PYTHONPATH=TREE python -m bench.api_requests setup DIR --rows 20000
      a demo database in DIR grown to ROWS customers and an API token for rep_east1
  PYTHONPATH=TREE python -m bench.api_requests time DIR [--requests 1000] [--rounds 7]
      CPU per request of rep_east1's ``GET /api/v1/customer?limit=50`` (``--op get``:
      a point read of one of the rep's records)
  PYTHONPATH=TREE python -m bench.api_requests count DIR --requests N
      N requests after a warm-up, nothing printed: run under
      ``valgrind --tool=cachegrind --cache-sim=no`` with N and with 0; the difference
      over N is the instructions per request. The monotonic clock is virtual here,
      0.5 ms per request (~2,000 requests a second, as a worker serves a list), so the
      caches read their version stamps as often per request as they do in a server,
      however slowly valgrind runs
  PYTHONPATH=TREE python -m bench.api_requests dump DIR OUT
      the raw HTTP responses (head and body) of a few list and point reads, one file
      each, with a fixed Date header: ``diff -r`` two trees' OUT for byte identity
"""

from __future__ import annotations

import sys
import time

#: ``count``'s virtual monotonic clock, moved by each request (see the module's text);
#: replaced before the imports below, which keep references to it as default arguments.
VIRTUAL_STEP = 0.0005
_virtual: list[float] | None = None
if __name__ == "__main__" and sys.argv[1:2] == ["count"]:
    _virtual = [time.monotonic()]
    time.monotonic = lambda: _virtual[0]  # type: ignore[index]

import asyncio
import cProfile
import json
import pstats
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import select
from uvicorn.config import Config
from uvicorn.server import ServerState

from bench.list_pages import SECRET, demo_database, live_runtime, run_tool, tool_parser
from engine.permissions.identity import find_user
from engine.permissions.tokens import create_token
from engine.storage.database import write_transaction
from ui.app import create_app
from ui.serve import NoDelayProtocol

REP = "rep_east1"
DATE = b"Mon, 30 Nov 2026 12:00:00 GMT"
#: list and point-read targets of ``dump`` (``{id}``: one of the rep's records)
DUMP_PATHS = ("/api/v1/customer?limit=50", "/api/v1/customer", "/api/v1/customer?limit=3",
              "/api/v1/customer?limit=5&sort=-name", "/api/v1/customer?limit=2&q=a",
              "/api/v1/customer?limit=2&x=1&limit=3", "/api/v1/customer/{id}",
              "/api/v1/contact?limit=4", "/api/v1/nothing", "/api/v1/customer?limit=0",
              "/api/v1/customer/999999999", "/api/v1/customer?limit=2&after=bogus")


def setup(directory: Path, rows: int) -> None:
    live = demo_database(directory, rows)
    runtime = live.current()
    table = runtime.schema.table("customer")
    with write_transaction(runtime.engine) as conn:
        user = find_user(conn, REP)
        assert user is not None
        _, token = create_token(conn, user.id, name="bench")
        record = conn.execute(select(table.c.id).where(table.c.owner_id == user.id)
                              .order_by(table.c.id).limit(1)).scalar_one()
    (directory / "api.json").write_text(json.dumps({"token": token, "record": record}))
    live.dispose()


class _Transport:
    """What the protocol writes to, kept until a whole response has arrived."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.done: asyncio.Future[bytes] | None = None
        self.head_only = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def write(self, data: bytes) -> None:
        self.out.append(data)
        self._check()

    def writelines(self, chunks: Any) -> None:
        self.out.extend(chunks)
        self._check()

    def _check(self) -> None:
        data = b"".join(self.out)
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return
        length = head.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0]
        if (self.head_only or len(body) >= int(length or 0)) and self.done is not None:
            self.out = []
            self.done.set_result(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class Client:
    """One keep-alive connection into the app, through uvicorn's protocol, on uvloop."""

    def __init__(self, directory: Path) -> None:
        self.live = live_runtime(directory)
        self.app = create_app(self.live, secret_key=SECRET)
        found = json.loads((directory / "api.json").read_text())
        self.token, self.record = found["token"], found["record"]
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        config = Config(self.app, http=NoDelayProtocol, access_log=False, proxy_headers=False,
                        log_level="warning")
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", DATE), *config.encoded_headers]
        self.transport = _Transport()
        self.protocol = NoDelayProtocol(config=config, server_state=state, app_state={},
                                        _loop=self.loop)
        self.loop.run_until_complete(self._connect())

    async def _connect(self) -> None:
        self.protocol.connection_made(self.transport)

    def request_bytes(self, target: str) -> bytes:
        target = target.replace("{id}", str(self.record))
        return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
                f"Authorization: Bearer {self.token}\r\n\r\n").encode()

    async def _send(self, data: bytes) -> bytes:
        if _virtual is not None:
            _virtual[0] += VIRTUAL_STEP
        self.transport.done = self.loop.create_future()
        self.transport.head_only = data.startswith(b"HEAD ")
        self.protocol.data_received(data)
        return await self.transport.done

    def get(self, data: bytes) -> bytes:
        return self.loop.run_until_complete(self._send(data))

    def close(self) -> None:
        """Give the database connections back and close the loop."""
        self.live.dispose()
        self.loop.close()
        asyncio.set_event_loop(None)

    def many(self, data: bytes, count: int) -> None:
        async def go() -> None:
            for _ in range(count):
                await self._send(data)
        self.loop.run_until_complete(go())


def _target(op: str) -> str:
    return "/api/v1/customer?limit=50" if op == "list" else "/api/v1/customer/{id}"


def _warm(client: Client, data: bytes) -> None:
    first = client.get(data)
    assert first.startswith(b"HTTP/1.1 200 "), first[:500]
    client.many(data, 50)


def timing(directory: Path, *, op: str, requests: int, rounds: int, profile: bool,
           sort: str = "tottime") -> None:
    client = Client(directory)
    data = client.request_bytes(_target(op))
    _warm(client, data)
    try:
        if profile:
            profiler = cProfile.Profile()
            profiler.runcall(client.many, data, requests)
            pstats.Stats(profiler).sort_stats(sort).print_stats(70)
            return
        results = []
        for _ in range(rounds):
            started = time.process_time()
            client.many(data, requests)
            results.append((time.process_time() - started) / requests * 1000)
    finally:
        client.close()
    results.sort()
    print(f"{op} ms/request min {results[0]:.4f} median {results[len(results) // 2]:.4f}")


def count(directory: Path, *, op: str, requests: int) -> None:
    client = Client(directory)
    data = client.request_bytes(_target(op))
    _warm(client, data)
    client.many(data, requests)
    client.close()


def dump(directory: Path, out: Path) -> None:
    client = Client(directory)
    out.mkdir(parents=True, exist_ok=True)
    for n, target in enumerate(DUMP_PATHS):
        for head in (False, True):
            data = client.request_bytes(target)
            if head:
                data = b"HEAD" + data[3:]
            response = client.get(data)
            (out / f"{n:02d}{'_head' if head else ''}").write_bytes(response)
    client.close()
    print(f"{len(DUMP_PATHS) * 2} responses in {out}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = tool_parser("python -m bench.api_requests", __doc__.splitlines()[0])
    parser.add_argument("--op", choices=("list", "get"), default="list")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile instead of timing")
    parser.add_argument("--sort", default="tottime", help="the profile's order")
    run_tool(parser, argv, {
        "setup": lambda a: setup(a.directory, a.rows),
        "time": lambda a: timing(a.directory, op=a.op, requests=a.requests, rounds=a.rounds,
                                 profile=a.profile, sort=a.sort),
        "count": lambda a: count(a.directory, op=a.op, requests=a.requests),
        "dump": lambda a: dump(a.directory, a.out)})


if __name__ == "__main__":
    main()
