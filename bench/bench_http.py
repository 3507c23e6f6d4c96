"""HTTP: the API list, point read and patch and the HTML list, with 1 and 2 workers, each
next to a bare endpoint running the same SQL and to that SQL run alone.

Run ``python -m bench.bench_http`` (``--help`` for options). It builds the demo
database (users of every role, an org tree), grows ENTITY to ``--rows`` rows
spread over the demo reps and the pool, then for each worker count starts
``bench._http_server`` (the real app through ``ui.serve.run_workers``, as
``tidepool serve --workers N`` runs it, plus bare endpoints) and loads it with
``--clients`` keep-alive connections, signed in as a rep. The load generator is
wrk when it is on PATH (C: a few per cent of a core, so the server gets the
machine's cores; a generated Lua script adds the token and carries a PATCH's
version), else a small asyncio HTTP/1.1 client in this process (``--client``
chooses; the report says which ran):

* list: ``GET /api/v1/<entity>?limit=50`` (token) vs ``GET /bare/list``;
* get: ``GET /api/v1/<entity>/<id>`` vs ``GET /bare/get``;
* patch: ``PATCH /api/v1/<entity>/<id>`` (each connection its own record, the
  version carried over) vs ``POST /bare/patch`` (one UPDATE ... RETURNING);
* html: ``GET /e/<entity>`` (browser session) vs ``GET /bare/list``.

For each load: requests per second, the median latency, the server's CPU time
per request (all its processes, from /proc), on PostgreSQL the CPU of the
database server's processes per request (``db ms/req``), SQL statements per
request (one worker: the worker's own count), and the CPU of the SQL statement
alone, executed in a loop in this process with the same driver (``sql ms``; plus
PostgreSQL's own CPU for it in ``sql total ms``).

Results go to the ``HTTP with wrk (issue 13)`` section of bench/RESULTS.md, or
``HTTP (issue 13)`` when loaded by the asyncio client (the ``HTTP (issue 4)``
section holds the earlier single-worker httpx measurements).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import io
import json
import os
import re
import resource
import shutil
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
from sqlalchemy import create_engine, select, text, update

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
#: Where runs loaded by wrk go (the section above holds the asyncio client's runs).
WRK_HEADING = "HTTP with wrk (issue 13)"
ENTITY = "customer"
REP = "rep_east1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: What the numbers say, written with them (kept in RESULTS.md on every run).
READING = """

Reading: `x bare` is the bare endpoint's req/s over the endpoint's (same run, same worker count). `CPU ms/req` is the server's processes (uvicorn's supervisor and workers; on SQLite this includes the database engine, which runs inside them) per request. `sql ms` is the CPU of the endpoint's SQL statement run alone in a loop in the bench process (pool checkout + driver; on PostgreSQL only the client side), and `x sql` is `CPU ms/req` over it: the old column, which on PostgreSQL leaves the database server's work out of both sides. `db ms/req` (PostgreSQL only) is the CPU of the postmaster and all its children (the backends serving the workers' connections, plus background writers) per request, from /proc; `sql total ms` is the statement alone counted the same way (bench process + PostgreSQL's processes per statement), and `x sql total` is (`CPU ms/req` + `db ms/req`) over `sql total ms`: total CPU vs total CPU (on SQLite it equals `x sql`). `2w/1w` is two workers' req/s over one worker's. `client ms/req` is the load generator's own CPU (wrk's user + system time) per request: with the server it shares the two cores, so a two-worker run can give the workers at most 2 cores less the client's and PostgreSQL's share. `cores busy` is the server's, PostgreSQL's and the client's CPU per request times req/s: the cores the whole run kept busy (2.00 = all of this machine's; at 2.00 a second worker can only add what the others leave). `runq ms/req` is the time the server's threads were runnable but waiting for a CPU (the scheduler's run-queue delay from /proc/<pid>/task/<tid>/schedstat), per request: near zero on a machine with a free core, large when other processes (the load generator, PostgreSQL, other sessions) hold the cores. `CPU split` is each busy server process's share of the server CPU (the workers first, largest first; the supervisor's share is ~0). CPU per request is the steadier figure: the load generator runs on the same two cores, and this machine is shared with other sessions, so req/s and the worker ratios move from run to run."""

#: What moved the figures of the asyncio-loaded section (kept with them).
NOTES = """

What moved them (issue 13): statements per API read from 3 plus stamp reads to 1.0-1.1 (token and session checks from a per-process cache keyed by token hash, invalidated by the `credentials` stamp; every stamp in one statement shared within a request); one thread hop instead of two; no session cookie on API responses; the point-read statement built once per scope shape; the API mount matched before ~50 screen routes; orjson for API bodies; TCP_NODELAY on every worker's accepted sockets (uvicorn's multi-worker path dropped it, #3149). In-process profile (SQLite, warm): point read 0.98 -> 0.47 ms CPU, 50-row list 2.13 -> 1.19 ms. The HTML list page dropped from ~15.9 to ~7.5 ms of CPU (one run before, one after, same machine) once its count became a deferred htmx fragment and the navigation a per-role cache; it still renders ~50 rows through Jinja and reads saved views and owner names (3.1 statements). Patch is read, update and activity insert (4 statements). Not met here: API list CPU within 2x its SQL (5x on SQLite, where the statement is cheap and Python's row handling is not), the HTML list within 2x of the bare endpoint, and a 2-worker gain that a machine with no free core cannot show."""

#: What moved the figures of the wrk-loaded section (the analysis of a run is in its notes).
WRK_NOTES = """

What moved them (issue 13, h-apipath): wrk instead of a Python load client (the client no longer takes a core); uvicorn on httptools and uvloop (neither was installed, so it ran the pure-Python h11 parser and asyncio's loop); point reads and list pages run their cached statement straight on a pooled DBAPI cursor (`engine/storage/direct.py`: no Connection, no BEGIN/ROLLBACK around one statement, PostgreSQL in autocommit for it); the thread hop as one queue item (`ui/threads.py`). The bare endpoints go through SQLAlchemy's Connection and hop to a request thread (`ui.threads.in_thread`, as the API did before it ran SQLite's bounded reads on the event loop: `ui/inline.py`), so the API can cost less than its bare floor. Analysis and the worker ratios: section "HTTP with wrk (issue 13), notes"."""


@dataclass(frozen=True)
class Load:
    op: str
    target: str
    requests: int
    seconds: float
    p50_ms: float
    cpu_ms: float          # server CPU per request
    statements: float | None  # SQL statements per request (one worker only)
    db_cpu_ms: float | None = None  # PostgreSQL's processes' CPU per request
    run_queue_ms: float = 0.0  # server threads' wait for a CPU, per request
    #: each busy server process's share of the server's CPU (workers, then supervisor)
    split: tuple[float, ...] = ()
    client_ms: float | None = None  # the load generator's CPU per request (wrk only)

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


def postgres_cpu(url: str) -> Callable[[], float] | None:
    """CPU seconds so far of the PostgreSQL server at ``url`` (the postmaster and all its
    children: the backends serving our connections, plus the background writers), from
    /proc; None on SQLite, where the database's work is in the client's own process."""
    if not url.startswith("postgresql"):
        return None
    engine = create_engine(url)
    with engine.connect() as conn:  # read while the backend lives: it exits on disconnect
        backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        stat = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    engine.dispose()
    postmaster = int(stat[1])  # a backend's parent
    return lambda: server_cpu_seconds(postmaster)


@dataclass(frozen=True)
class SqlCost:
    """CPU milliseconds of one endpoint's SQL statement run alone in a loop."""

    client_ms: float  # this process: SQLAlchemy's connection checkout + the driver
    db_ms: float | None  # PostgreSQL's processes (None on SQLite: it is in client_ms)

    @property
    def total_ms(self) -> float:
        return self.client_ms + (self.db_ms or 0.0)


def sql_cpu_ms(url: str, record: int, patch_ids: Sequence[int], *,
               seconds: float) -> dict[str, SqlCost]:
    """The CPU of each endpoint's SQL statement run alone (same driver, same pool)."""
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy)
    db_cpu = postgres_cpu(url)
    try:
        captured = captured_sql(live, REP, ENTITY, record)
        engine = live.current().engine
        table = live.current().schema.table(ENTITY)

        def read(name: str) -> Callable[[], object]:
            statement, params = captured[name]

            def run() -> object:
                with engine.connect() as conn:
                    return conn.exec_driver_sql(statement, params).fetchall()
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
            db = db_cpu() if db_cpu else 0.0
            done, start, wall = 0, time.process_time(), time.perf_counter()
            while time.perf_counter() - wall < seconds:
                call()
                done += 1
            client = (time.process_time() - start) * 1000 / done
            db_ms = (db_cpu() - db) * 1000 / done if db_cpu else None
            found[name] = SqlCost(client, db_ms)
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


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each process of the tree (to see how work splits across workers)."""
    found = {}
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[p] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def run_queue_seconds(pid: int) -> float:
    """Time the threads of a process tree spent runnable but waiting for a CPU (the
    scheduler's run-queue delay, /proc/<pid>/task/<tid>/schedstat): how much a loaded
    machine held the server back, which req/s alone cannot tell."""
    total = 0
    for p in _process_tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


@contextmanager
def server(url: str, *, workers: int, record: int) -> Iterator[tuple[str, int, int]]:
    """(host, port, pid) of a bench server with ``workers`` workers."""
    port = _free_port()
    with serving([sys.executable, "-m", "bench._http_server", "--db", url, "--port", str(port),
                  "--login", REP, "--entity", ENTITY, "--record", str(record),
                  "--workers", str(workers)], port=port) as found:
        yield found


@contextmanager
def serving(argv: list[str], *, port: int,
            env: dict[str, str] | None = None) -> Iterator[tuple[str, int, int]]:
    """(host, port, pid) of the bench app ``argv`` serves on ``port``, once it answers;
    stopped on leaving."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env)
    try:
        wait_until_serving(proc, port)
        yield "127.0.0.1", port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_until_serving(proc: subprocess.Popen[bytes], port: int) -> None:
    """Return once the bench app answers on ``port``; raise if ``proc`` ends first."""
    deadline = time.monotonic() + 300  # spawned workers start slowly on a busy machine
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/bare/stats", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the bench server did not start (exit code "
                                   f"{proc.poll()})") from None
            time.sleep(0.2)


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


@dataclass(frozen=True)
class Traffic:
    """What every connection of one load sends, for either load client."""

    method: str
    #: ``{id}`` is replaced by the connection's own record (``ids[i]``)
    path: str
    headers: dict[str, str]
    body: bytes = b""
    ids: tuple[int, ...] = ()
    #: PATCH with the version of the previous response (a GET of the record first)
    carry_version: bool = False
    #: builds every request itself (new bodies per request; the asyncio client only)
    maker: RequestMaker | None = None

    def path_for(self, index: int) -> str:
        return self.path.replace("{id}", str(self.ids[index])) if self.ids else self.path


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _patch_body(version: int) -> bytes:
    return json.dumps({"version": version, "employees": version % 500}).encode()


def request_maker(traffic: Traffic) -> RequestMaker:
    """The asyncio client's requests for ``traffic``."""
    if traffic.maker is not None:
        return traffic.maker
    if traffic.carry_version:
        read_headers = {k: v for k, v in traffic.headers.items() if k != "Content-Type"}

        def carried(i: int, previous: bytes | None) -> bytes:
            version = json.loads(previous)["version"] if previous else None
            if version is None:  # the first request of a connection: read the version
                return _request("GET", traffic.path_for(i), read_headers)
            return _request(traffic.method, traffic.path_for(i), traffic.headers,
                            _patch_body(version))
        return carried
    if traffic.ids:
        per_connection = [_request(traffic.method, traffic.path_for(i), traffic.headers,
                                   traffic.body) for i in range(len(traffic.ids))]
        return lambda i, b: per_connection[i]
    fixed = _request(traffic.method, traffic.path, traffic.headers, traffic.body)
    return lambda i, b: fixed


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


@dataclass(frozen=True)
class Measured:
    """What a load client reports: completed requests, wall seconds, median latency."""

    requests: int
    seconds: float
    p50_ms: float
    #: the load generator's own CPU (user + system), when it runs as a child process
    client_cpu_s: float | None = None


def asyncio_load(host: str, port: int, traffic: Traffic, *, clients: int,
                 seconds: float) -> Measured:
    """``clients`` keep-alive connections from a small asyncio HTTP/1.1 client in this
    process (the fallback when wrk is not installed: it takes most of a core itself)."""
    make = request_maker(traffic)
    samples: list[float] = []

    async def go() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(host, port, i, make, until=until, samples=samples)
                               for i in range(clients)))

    started = time.perf_counter()
    # On a thread of its own: the caller may already run an event loop on this thread
    # (a test session with Playwright's sync API does).
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-load") as loop:
        loop.submit(asyncio.run, go()).result()
    elapsed = time.perf_counter() - started
    return Measured(len(samples), elapsed, statistics.median(samples) * 1000)


def _lua_string(value: str | bytes) -> str:
    text = value.decode() if isinstance(value, bytes) else value
    return json.dumps(text)  # a JSON string literal is a valid Lua one for this text


#: Prints wrk's summary as one JSON line (its text output is for people).
_WRK_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "p50_us": %.1f, "errors": %d, "status": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50.0),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def wrk_script(traffic: Traffic) -> str:
    """The Lua script that makes wrk send ``traffic`` (one connection per wrk thread
    when each connection has its own record, so a thread's globals are its state)."""
    headers = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}"
                              for k, v in traffic.headers.items()) + "}"
    lines = [f"local headers = {headers}"]
    if not traffic.ids:
        lines += [f"wrk.method = {_lua_string(traffic.method)}",
                  f"wrk.path = {_lua_string(traffic.path)}",
                  "wrk.headers = headers"]
        if traffic.body:
            lines.append(f"wrk.body = {_lua_string(traffic.body)}")
        return "\n".join(lines) + _WRK_DONE
    ids = ", ".join(str(i) for i in traffic.ids)
    lines += [
        f"local ids = {{{ids}}}",
        "local started = 0",
        "function setup(thread)",
        "  started = started + 1",
        "  thread:set('record', ids[started])",
        "end",
        f"local template = {_lua_string(traffic.path)}",
        "local path = nil",
        "local version = nil",
        "function request()",
        "  if path == nil then path = template:gsub('{id}', tostring(record)) end",
    ]
    if traffic.carry_version:
        lines += [
            "  if version == nil then",
            "    local read = {}",
            "    for k, v in pairs(headers) do if k ~= 'Content-Type' and k ~= 'Content-Length' then read[k] = v end end",
            "    return wrk.format('GET', path, read)",
            "  end",
            "  local body = string.format('{\"version\": %d, \"employees\": %d}',",
            "                             version, version % 500)",
            f"  return wrk.format({_lua_string(traffic.method)}, path, headers, body)",
            "end",
            "function response(status, response_headers, body)",
            "  local found = body:match('\"version\":%s*(%d+)')",
            "  if found then version = tonumber(found) end",
            "end",
        ]
    else:
        body = _lua_string(traffic.body) if traffic.body else "nil"
        lines += [f"  return wrk.format({_lua_string(traffic.method)}, path, headers, {body})",
                  "end"]
    return "\n".join(lines) + _WRK_DONE


#: The load generator: wrk when installed (it leaves the cores to the server).
WRK = shutil.which("wrk")
#: wrk threads for loads where connections share one request (``--wrk-threads``).
WRK_THREADS = 2


def wrk_load(host: str, port: int, traffic: Traffic, *, clients: int,
             seconds: float, threads: int = WRK_THREADS) -> Measured:
    """``clients`` keep-alive connections from wrk (C, epoll: a few per cent of a core)."""
    assert WRK is not None
    threads = clients if traffic.ids else min(clients, threads)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(traffic))
    try:
        # wrk is the only child that ends during the run, so the children's usage moves
        # by its CPU alone: what the load client takes from the two cores per request.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [WRK, "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s",
             "--timeout", "30s", "-s", script.name, f"http://{host}:{port}/"],
            capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(script.name)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout} {done.stderr}")
    summary = json.loads(line[4:])
    if summary["errors"] or summary["status"]:
        raise RuntimeError(f"wrk saw {summary['errors']} socket errors and "
                           f"{summary['status']} non-2xx responses: {traffic.path}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(summary["requests"], summary["duration_us"] / 1e6, summary["p50_us"] / 1000,
                    used)


def run_load(host: str, port: int, pid: int, op: str, target: str, traffic: Traffic, *,
             clients: int, seconds: float, count_statements: bool, client: str,
             db_cpu: Callable[[], float] | None = None, wrk_threads: int = WRK_THREADS) -> Load:
    generate: Callable[..., Measured] = (
        functools.partial(wrk_load, threads=wrk_threads)
        if client == "wrk" and traffic.maker is None else asyncio_load)
    generate(host, port, traffic, clients=clients, seconds=0.5)  # warm-up: workers, caches
    # wrk drops its connections when time is up, with requests still in the server: let
    # them finish, so their CPU is not counted and a PATCH does not race the next run.
    time.sleep(0.5)
    while True:
        before_statements = _statements(host, port) if count_statements else 0
        cpu = server_cpu_seconds(pid)
        each = process_cpu(pid)
        waited = run_queue_seconds(pid)
        db = db_cpu() if db_cpu else 0.0
        measured = generate(host, port, traffic, clients=clients, seconds=seconds)
        if measured.requests:
            break
        # Nothing finished in time (quick mode's one second of 1,000-record bulk bodies
        # on a busy machine): measure again, longer, rather than divide by zero.
        if seconds >= 16:
            raise RuntimeError(f"no {op} request finished in {seconds:g} s")
        seconds *= 2
        time.sleep(0.5)
    cpu = server_cpu_seconds(pid) - cpu
    waited = run_queue_seconds(pid) - waited
    used = sorted((c - each.get(p, 0.0) for p, c in process_cpu(pid).items()), reverse=True)
    split = tuple(u / cpu for u in used if u > 0) if cpu else ()
    db_ms = (db_cpu() - db) * 1000 / measured.requests if db_cpu else None
    statements = None
    if count_statements:
        # The stats request itself runs none; the statements all belong to the load.
        statements = (_statements(host, port) - before_statements) / measured.requests
    client_ms = (measured.client_cpu_s * 1000 / measured.requests
                 if measured.client_cpu_s is not None else None)
    return Load(op, target, measured.requests, measured.seconds, measured.p50_ms,
                cpu * 1000 / measured.requests, statements, db_ms,
                waited * 1000 / measured.requests, split, client_ms)


def _statements(host: str, port: int) -> int:
    return int(httpx.get(f"http://{host}:{port}/bare/stats", timeout=10).json()["statements"])


def loads(token: str, cookie: str, record: int,
          patch_ids: Sequence[int]) -> list[tuple[str, str, Traffic]]:
    """(op, target, traffic) for every load, app endpoint and its bare floor."""
    bearer = {"Authorization": f"Bearer {token}"}
    as_json = {**bearer, "Content-Type": "application/json"}
    records = [{"name": f"Bulk {n}", "employees": n % 500} for n in range(BULK_ROWS)]
    ids = tuple(patch_ids)
    return [
        ("list", "api", Traffic("GET", f"/api/v1/{ENTITY}?limit=50", bearer)),
        ("list", "bare", Traffic("GET", "/bare/list", {})),
        ("get", "api", Traffic("GET", f"/api/v1/{ENTITY}/{record}", bearer)),
        ("get", "bare", Traffic("GET", "/bare/get", {})),
        ("patch", "api", Traffic("PATCH", f"/api/v1/{ENTITY}/{{id}}", as_json, ids=ids,
                                 carry_version=True)),
        ("patch", "bare", Traffic("POST", "/bare/patch?id={id}", {}, ids=ids)),
        ("html", "page", Traffic("GET", f"/e/{ENTITY}", {"Cookie": cookie})),
        # last: it grows the table
        ("bulk", "api", Traffic("POST", f"/api/v1/{ENTITY}/bulk", as_json,
                                json.dumps({"records": records}).encode())),
    ]


# --- the report ----------------------------------------------------------------------------------

BARE_OF = {"list": "list", "get": "get", "patch": "patch", "html": "list", "bulk": ""}
#: Records per bulk request (``bulk``: rows/s = req/s x BULK_ROWS).
BULK_ROWS = 1000


def report(results: Sequence[tuple[str, int, int, Load]], sql: dict[str, dict[str, SqlCost]],
           command: str, *, clients: int, client: str, load_average: str) -> str:
    generator = ("wrk (C, epoll; `-c` connections over at most 2 threads, one thread per "
                 "connection when each has its own record)" if client == "wrk" else
                 "a small asyncio HTTP/1.1 client (Python; wrk was not on PATH)")
    lines = [
        (f"Command: `{command}` — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
         f"{load_average}; server: the app under "
         "`ui.serve.run_workers` (as `tidepool serve --workers N`: TCP_NODELAY, one thread "
         f"hop per request); load: {clients} keep-alive connections from {generator} "
         f"in another process, same machine (2 cores shared by all). Signed in as `{REP}` "
         "(row scope: own + team pool)."),
        "",
        ("| backend | rows | workers | op | endpoint | req/s | p50 ms | CPU ms/req | "
         "stmts/req | x bare | sql ms | x sql | 2w/1w | db ms/req | sql total ms | "
         "x sql total | runq ms/req | client ms/req | cores busy | CPU split |"),
        ("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
         "---:|---:|---|"),
    ]
    index = {(b, w, r.op, r.target): r for b, _, w, r in results}
    for backend, rows, workers, r in results:
        if r.op == "bulk":
            continue
        bare = index[(backend, workers, BARE_OF[r.op], "bare")]
        base = sql[backend][BARE_OF[r.op]]
        one = index.get((backend, 1, r.op, r.target))
        scale = f"{r.per_second / one.per_second:.2f}" if one and workers > 1 else ""
        statements = f"{r.statements:.2f}" if r.statements is not None else ""
        db = f"{r.db_cpu_ms:.2f}" if r.db_cpu_ms is not None else ""
        total = r.cpu_ms + (r.db_cpu_ms or 0.0)
        lines.append(
            f"| {backend} | {rows:,} | {workers} | {r.op} | {r.target} | {r.per_second:,.0f} | "
            f"{r.p50_ms:.1f} | {r.cpu_ms:.2f} | {statements} | "
            f"{bare.per_second / r.per_second:.2f} | {base.client_ms:.3f} | "
            f"{r.cpu_ms / base.client_ms:.1f} | {scale} | {db} | {base.total_ms:.3f} | "
            f"{total / base.total_ms:.1f} | {r.run_queue_ms:.2f} | "
            f"{'' if r.client_ms is None else f'{r.client_ms:.3f}'} | "
            f"{_cores_busy(r)} | "
            f"{' / '.join(f'{x:.0%}' for x in r.split[:workers + 1])} |")
    if any(r.op == "bulk" for _, _, _, r in results):
        lines += ["", (f"Bulk create over HTTP (`POST /api/v1/{ENTITY}/bulk`, {BULK_ROWS} "
                       "records per request, validation, unique keys, activity):"), ""]
    lines += [f"- {b}, {w} worker{'s' if w > 1 else ''}: {r.per_second * BULK_ROWS:,.0f} rows/s "
              f"({r.cpu_ms / BULK_ROWS * 1000:.0f} µs server CPU per row)"
              for b, _, w, r in results if r.op == "bulk"]
    return "\n".join(lines) + READING + (WRK_NOTES if client == "wrk" else NOTES)


def _cores_busy(load: Load) -> str:
    """Cores the run kept busy: the server's, PostgreSQL's and the load client's CPU per
    request times the request rate (2.00 = both cores of this machine, nothing to spare)."""
    if load.client_ms is None:
        return ""
    per_request = load.cpu_ms + (load.db_cpu_ms or 0.0) + load.client_ms
    return f"{per_request * load.per_second / 1000:.2f}"


def _load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_http",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="per load (wrk: rounded to whole seconds, at least 1)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--only", default="", help="ops to run, e.g. list,get")
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto",
                        help="load generator (auto: wrk when on PATH, else asyncio)")
    parser.add_argument("--wrk-threads", type=int, default=WRK_THREADS,
                        help="wrk threads when every connection sends the same request")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    client = args.client if args.client != "auto" else ("wrk" if WRK else "asyncio")
    if client == "wrk" and WRK is None:
        parser.error("wrk is not on PATH")
    print(f"  load generator: {client}", flush=True)
    worker_counts = [int(w) for w in args.workers.split(",")]
    only = set(filter(None, args.only.split(",")))
    results: list[tuple[str, int, int, Load]] = []
    sql: dict[str, dict[str, SqlCost]] = {}
    averages = [_load_average()]
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-http-") as tmp, \
                database(backend, Path(tmp)) as url:
            prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=200)
            rows = max(grow(url, args.rows), args.rows)
            token = api_token(url)
            ids = rep_records(url, args.clients + 1)
            record, patch_ids = ids[0], ids[1:]
            sql[backend] = sql_cpu_ms(url, record, patch_ids, seconds=2.0)
            db_cpu = postgres_cpu(url)
            print(f"  {backend} sql alone (CPU ms): {sql[backend]}", flush=True)
            for workers in worker_counts:
                with server(url, workers=workers, record=record) as (host, port, pid):
                    cookie = session_cookie(host, port)
                    for op, target, traffic in loads(token, cookie, record, patch_ids):
                        # an op's bare floor runs with it (``--only html``: the bare list)
                        if only and op not in only and (target != "bare" or op not in {
                                BARE_OF.get(o) for o in only}):
                            continue
                        load = run_load(host, port, pid, op, target, traffic,
                                        clients=args.clients, seconds=args.seconds,
                                        count_statements=workers == 1, client=client,
                                        db_cpu=db_cpu, wrk_threads=args.wrk_threads)
                        results.append((backend, rows, workers, load))
                        print(f"  {backend} w{workers} {op:5} {target:4}: "
                              f"{load.per_second:7.1f} req/s  p50 {load.p50_ms:6.1f} ms  "
                              f"cpu {load.cpu_ms:5.2f} ms/req  db {load.db_cpu_ms}  "
                              f"runq {load.run_queue_ms:.2f} ms/req  client {load.client_ms}  split {load.split[:3]}  "
                              f"stmts {load.statements}", flush=True)
            averages.append(_load_average())
    given = list(argv) if argv is not None else sys.argv[1:]
    command = "python -m bench.bench_http" + (f" {' '.join(given)}" if given else "")
    body = report(results, sql, command, clients=args.clients, client=client,
                  load_average=" -> ".join(f"({a})" for a in averages))
    print(body)
    if not args.no_write:
        write_section(WRK_HEADING if client == "wrk" else HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

