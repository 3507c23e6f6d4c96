"""HTTP: the API list, point read and patch and the HTML list, with 1 and 2 workers, each
next to a bare endpoint running the same SQL and to that SQL run alone.

Run ``python -m bench.bench_http`` (``--help`` for options). It builds the demo
database (users of every role, an org tree), grows ENTITY to ``--rows`` rows
spread over the demo reps and the pool, then for each worker count starts
``bench._http_server`` (the real app through ``ui.serve.run_workers``, as
``tidepool serve --workers N`` runs it, plus bare endpoints) and loads it with
``--clients`` keep-alive connections from a small asyncio HTTP/1.1 client in
this process (cheaper per request than an HTTP library, so the load generator
takes less of the shared cores), signed in as a rep:

* list: ``GET /api/v1/<entity>?limit=50`` (token) vs ``GET /bare/list``;
* get: ``GET /api/v1/<entity>/<id>`` vs ``GET /bare/get``;
* patch: ``PATCH /api/v1/<entity>/<id>`` (each connection its own record, the
  version carried over) vs ``POST /bare/patch`` (one UPDATE ... RETURNING);
* html: ``GET /e/<entity>`` (browser session) vs ``GET /bare/list``.

For each load: requests per second, the median latency, the server's CPU time
per request (all its processes, from /proc), SQL statements per request (one
worker: the worker's own count), and the CPU of the SQL statement alone,
executed in a loop in this process with the same driver (``sql ms``).

Results go to the ``HTTP (issue 13)`` section of bench/RESULTS.md (the ``HTTP (issue 4)``
section holds the earlier single-worker httpx measurements).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select, update

from bench._http_server import captured_sql
from bench.databases import copy_rows_until, database
from bench.results import write_section
from engine.demo import DEMO_PASSWORD, prepare_demo
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.tokens import create_token
from engine.runtime import LiveRuntime, open_runtime
from engine.storage.database import write_transaction

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "HTTP (issue 13)"
ENTITY = "customer"
REP = "rep_east1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: What the numbers say, written with them (kept in RESULTS.md on every run).
READING = """

Reading: `x bare` is the bare endpoint's req/s over the endpoint's (same run, same worker count); `x sql` is the endpoint's server CPU per request over the CPU of its SQL statement run alone in a loop in the client process (for PostgreSQL that is the driver's side; the server's own CPU is not in either figure). `2w/1w` is two workers' req/s over one worker's. CPU per request counts every server process and is the steadier figure: the load generator runs on the same two cores, and this machine is shared with other sessions (load average 12-15 during the runs), so req/s and the worker ratios move from run to run, and a second worker rarely finds a free core.

What moved them (issue 13): statements per API read from 3 plus stamp reads to 1.0-1.1 (token and session checks from a per-process cache keyed by token hash, invalidated by the `credentials` stamp; every stamp in one statement shared within a request); one thread hop instead of two; no session cookie on API responses; the point-read statement built once per scope shape; the API mount matched before ~50 screen routes; orjson for API bodies; TCP_NODELAY on every worker's accepted sockets (uvicorn's multi-worker path dropped it, #3149). In-process profile (SQLite, warm): point read 0.98 -> 0.47 ms CPU, 50-row list 2.13 -> 1.19 ms. The HTML list page dropped from ~15.9 to ~7.5 ms of CPU (one run before, one after, same machine) once its count became a deferred htmx fragment and the navigation a per-role cache; it still renders ~50 rows through Jinja and reads saved views and owner names (3.1 statements). Patch is read, update and activity insert (4 statements). Not met here: API list CPU within 2x its SQL (5x on SQLite, where the statement is cheap and Python's row handling is not), the HTML list within 2x of the bare endpoint, and a 2-worker gain that a machine with no free core cannot show."""


@dataclass(frozen=True)
class Load:
    op: str
    target: str
    requests: int
    seconds: float
    p50_ms: float
    cpu_ms: float          # server CPU per request
    statements: float | None  # SQL statements per request (one worker only)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


# --- the database ------------------------------------------------------------------------------

def grow(url: str, rows: int) -> int:
    """Copy the demo's rows (owners and pool membership kept) until ENTITY holds ``rows``."""
    runtime = open_runtime(url)
    try:
        return copy_rows_until(runtime, ENTITY, rows)
    finally:
        runtime.engine.dispose()


def api_token(url: str) -> str:
    runtime = open_runtime(url)
    with write_transaction(runtime.engine) as conn:
        user = find_user(conn, REP)
        assert user is not None
        _, plaintext = create_token(conn, user.id, name="bench")
    runtime.engine.dispose()
    return plaintext


def rep_records(url: str, count: int) -> list[int]:
    """Ids of live records the rep owns (one per patching connection, plus one to read)."""
    runtime = open_runtime(url)
    table = runtime.schema.table(ENTITY)
    with runtime.engine.connect() as conn:
        user = find_user(conn, REP)
        assert user is not None
        ids = conn.execute(select(table.c.id).where(table.c.owner_id == user.id,
                                                    table.c.deleted_at.is_(None))
                           .order_by(table.c.id).limit(count)).scalars().all()
    runtime.engine.dispose()
    if len(ids) < count:
        raise SystemExit(f"{REP} owns only {len(ids)} {ENTITY} rows")
    return [int(i) for i in ids]


def sql_cpu_ms(url: str, record: int, patch_ids: Sequence[int], *,
               seconds: float) -> dict[str, float]:
    """CPU milliseconds of each endpoint's SQL statement run alone (same driver)."""
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy)
    try:
        captured = captured_sql(live, REP, ENTITY, record)
        engine = live.current().engine
        table = live.current().schema.table(ENTITY)

        def read(name: str) -> Callable[[], object]:
            text, params = captured[name]

            def run() -> object:
                with engine.connect() as conn:
                    return conn.exec_driver_sql(text, params).fetchall()
            return run

        def patch() -> object:
            with write_transaction(engine) as conn:
                return conn.execute(update(table).where(table.c.id == patch_ids[0])
                                    .values(version=table.c.version + 1)
                                    .returning(table)).one()

        found = {}
        for name, call in (("list", read("list")), ("get", read("get")), ("patch", patch)):
            for _ in range(20):
                call()
            done, start, wall = 0, time.process_time(), time.perf_counter()
            while time.perf_counter() - wall < seconds:
                call()
                done += 1
            found[name] = (time.process_time() - start) * 1000 / done
        return found
    finally:
        live.dispose()


# --- the server --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _process_tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_process_tree(int(child)))
    return found


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (children still running)."""
    total = 0
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


@contextmanager
def server(url: str, *, workers: int, record: int) -> Iterator[tuple[str, int, int]]:
    """(host, port, pid) of a bench server with ``workers`` workers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench._http_server", "--db", url,
                             "--port", str(port), "--login", REP, "--entity", ENTITY,
                             "--record", str(record), "--workers", str(workers)], cwd=REPO)
    try:
        deadline = time.monotonic() + 300  # spawned workers start slowly on a busy machine
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/bare/stats", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the bench server did not start (exit code "
                                       f"{proc.poll()})") from None
                time.sleep(0.2)
        yield "127.0.0.1", port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def session_cookie(host: str, port: int) -> str:
    """A signed-in browser session of the rep (the ``Cookie`` header value)."""
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "no CSRF field on /login"
        response = client.post("/login", data={"login": REP, "password": DEMO_PASSWORD,
                                               "csrf_token": token.group(1), "next": "/"})
        assert response.status_code in (302, 303), response.status_code
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


# --- the load ------------------------------------------------------------------------------------

#: Builds connection ``i``'s next request from the previous response body (None at first).
RequestMaker = Callable[[int, bytes | None], bytes]


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(host: str, port: int, index: int, make: RequestMaker, *,
                      until: float, samples: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body: bytes | None = None
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(make(index, body))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            samples.append(time.perf_counter() - start)
            if status not in (200, 201):
                raise RuntimeError(f"{status}: {body[:300]!r}")
    finally:
        writer.close()


def run_load(host: str, port: int, pid: int, op: str, target: str, make: RequestMaker, *,
             clients: int, seconds: float, count_statements: bool) -> Load:
    async def go(duration: float, samples: list[float]) -> None:
        until = time.perf_counter() + duration
        await asyncio.gather(*(_connection(host, port, i, make, until=until, samples=samples)
                               for i in range(clients)))

    asyncio.run(go(0.5, []))  # warm-up (every worker, caches, the plans)
    before_statements = _statements(host, port) if count_statements else 0
    samples: list[float] = []
    cpu = server_cpu_seconds(pid)
    started = time.perf_counter()
    asyncio.run(go(seconds, samples))
    elapsed = time.perf_counter() - started
    cpu = server_cpu_seconds(pid) - cpu
    statements = None
    if count_statements:
        # The stats request itself runs none; the statements all belong to the load.
        statements = (_statements(host, port) - before_statements) / len(samples)
    return Load(op, target, len(samples), elapsed, statistics.median(samples) * 1000,
                cpu * 1000 / len(samples), statements)


def _statements(host: str, port: int) -> int:
    return int(httpx.get(f"http://{host}:{port}/bare/stats", timeout=10).json()["statements"])


def loads(token: str, cookie: str, record: int,
          patch_ids: Sequence[int]) -> list[tuple[str, str, RequestMaker]]:
    """(op, target, request maker) for every load, app endpoint and its bare floor."""
    bearer = {"Authorization": f"Bearer {token}"}
    api_list = _request("GET", f"/api/v1/{ENTITY}?limit=50", bearer)
    api_get = _request("GET", f"/api/v1/{ENTITY}/{record}", bearer)
    html = _request("GET", f"/e/{ENTITY}", {"Cookie": cookie})
    bare_list = _request("GET", "/bare/list", {})
    bare_get = _request("GET", "/bare/get", {})

    def api_patch(i: int, previous: bytes | None) -> bytes:
        version = json.loads(previous)["version"] if previous else None
        if version is None:  # the first request of a connection: read the version
            return _request("GET", f"/api/v1/{ENTITY}/{patch_ids[i]}", bearer)
        body = json.dumps({"version": version, "employees": version % 500}).encode()
        return _request("PATCH", f"/api/v1/{ENTITY}/{patch_ids[i]}",
                        {**bearer, "Content-Type": "application/json"}, body)

    def bare_patch(i: int, previous: bytes | None) -> bytes:
        return _request("POST", f"/bare/patch?id={patch_ids[i]}", {})

    records = [{"name": f"Bulk {n}", "employees": n % 500} for n in range(BULK_ROWS)]
    bulk = _request("POST", f"/api/v1/{ENTITY}/bulk",
                    {**bearer, "Content-Type": "application/json"},
                    json.dumps({"records": records}).encode())
    return [
        ("list", "api", lambda i, b: api_list), ("list", "bare", lambda i, b: bare_list),
        ("get", "api", lambda i, b: api_get), ("get", "bare", lambda i, b: bare_get),
        ("patch", "api", api_patch), ("patch", "bare", bare_patch),
        ("html", "page", lambda i, b: html),
        ("bulk", "api", lambda i, b: bulk),  # last: it grows the table
    ]


# --- the report ----------------------------------------------------------------------------------

BARE_OF = {"list": "list", "get": "get", "patch": "patch", "html": "list", "bulk": ""}
#: Records per bulk request (``bulk``: rows/s = req/s x BULK_ROWS).
BULK_ROWS = 1000


def report(results: Sequence[tuple[str, int, int, Load]], sql: dict[str, dict[str, float]],
           command: str, *, clients: int) -> str:
    lines = [
        (f"Command: `{command}` — {time.strftime('%Y-%m-%d')}; server: the app under "
         "`ui.serve.run_workers` (as `tidepool serve --workers N`: TCP_NODELAY, one thread "
         f"hop per request); load: {clients} keep-alive connections from an asyncio client "
         f"in another process, same machine (2 cores shared by both). Signed in as `{REP}` "
         "(row scope: own + team pool)."),
        "",
        ("| backend | rows | workers | op | endpoint | req/s | p50 ms | CPU ms/req | "
         "stmts/req | x bare | sql ms | x sql | 2w/1w |"),
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    index = {(b, w, r.op, r.target): r for b, _, w, r in results}
    for backend, rows, workers, r in results:
        if r.op == "bulk":
            continue
        bare = index[(backend, workers, BARE_OF[r.op], "bare")]
        base_sql = sql[backend][BARE_OF[r.op]]
        one = index.get((backend, 1, r.op, r.target))
        scale = f"{r.per_second / one.per_second:.2f}" if one and workers > 1 else ""
        statements = f"{r.statements:.2f}" if r.statements is not None else ""
        lines.append(
            f"| {backend} | {rows:,} | {workers} | {r.op} | {r.target} | {r.per_second:,.0f} | "
            f"{r.p50_ms:.1f} | {r.cpu_ms:.2f} | {statements} | "
            f"{bare.per_second / r.per_second:.2f} | {base_sql:.3f} | "
            f"{r.cpu_ms / base_sql:.1f} | {scale} |")
    lines += ["", (f"Bulk create over HTTP (`POST /api/v1/{ENTITY}/bulk`, {BULK_ROWS} records "
                   "per request, validation, unique keys, activity):"), ""]
    lines += [f"- {b}, {w} worker{'s' if w > 1 else ''}: {r.per_second * BULK_ROWS:,.0f} rows/s "
              f"({r.cpu_ms / BULK_ROWS * 1000:.0f} µs server CPU per row)"
              for b, _, w, r in results if r.op == "bulk"]
    return "\n".join(lines) + READING


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_http",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=4.0, help="per load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--only", default="", help="ops to run, e.g. list,get")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(",")]
    only = set(filter(None, args.only.split(",")))
    results: list[tuple[str, int, int, Load]] = []
    sql: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-http-") as tmp, \
                database(backend, Path(tmp)) as url:
            prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=200)
            rows = max(grow(url, args.rows), args.rows)
            token = api_token(url)
            ids = rep_records(url, args.clients + 1)
            record, patch_ids = ids[0], ids[1:]
            sql[backend] = sql_cpu_ms(url, record, patch_ids, seconds=1.0)
            print(f"  {backend} sql alone (CPU ms): {sql[backend]}", flush=True)
            for workers in worker_counts:
                with server(url, workers=workers, record=record) as (host, port, pid):
                    cookie = session_cookie(host, port)
                    for op, target, make in loads(token, cookie, record, patch_ids):
                        if only and op not in only and (BARE_OF[op] not in only
                                                        or target != "bare"):
                            continue
                        load = run_load(host, port, pid, op, target, make,
                                        clients=args.clients, seconds=args.seconds,
                                        count_statements=workers == 1)
                        results.append((backend, rows, workers, load))
                        print(f"  {backend} w{workers} {op:5} {target:4}: "
                              f"{load.per_second:7.1f} req/s  p50 {load.p50_ms:6.1f} ms  "
                              f"cpu {load.cpu_ms:5.2f} ms/req  stmts {load.statements}",
                              flush=True)
    command = "python -m bench.bench_http" + (f" {' '.join(argv)}" if argv else "")
    body = report(results, sql, command, clients=args.clients)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

