"""HTTP: the API list endpoint and the HTML list page vs a bare endpoint running the same SQL.

Run ``python -m bench.bench_http`` (``--help`` for options). It builds the demo
database (users of every role, an org tree), grows ENTITY to ``--rows`` rows
spread over the demo reps and the pool, starts ``bench._http_server`` under
uvicorn on 127.0.0.1 in its own process, and loads it from this process with
keep-alive httpx clients (one client = sequential latency; ``--concurrency``
clients = throughput), signed in as a rep:

* ``GET /api/v1/<entity>?limit=50`` with the rep's API token;
* ``GET /e/<entity>`` as the rep's browser session (the full HTML list page);
* ``GET /bare/list``: the same SQL as the rep's first list page, no framework.

Results go to the ``HTTP (issue 4)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from bench.databases import copy_rows_until, database
from bench.results import write_section
from engine.demo import DEMO_PASSWORD, prepare_demo
from engine.permissions.identity import find_user
from engine.permissions.tokens import create_token
from engine.runtime import open_runtime
from engine.storage.database import write_transaction

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "HTTP (issue 4)"
ENTITY = "customer"
REP = "rep_east1"


#: What the numbers say, written with them (kept in RESULTS.md on every run).
READING = """

Reading: the API list is within 2x of the bare endpoint for one client (1.8x) and just above with four (2.2x: one server process, the load generator shares the two cores); it adds token check (no write: last use recorded at most once a minute), the rep's scope (3 UNION arms), record mapping and JSON. The HTML list page (5.4-5.6x) misses the 2x target: besides the same list it checks the session, reads saved views, counts the rows (capped at 10,000), resolves owner names and renders 50 rows with filters and navigation through Jinja2; loading the count and the filter panel as deferred htmx fragments is the next step."""


@dataclass(frozen=True)
class Load:
    target: str
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench._http_server", "--db", url,
                             "--port", str(port), "--login", REP, "--entity", ENTITY],
                            cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the bench server did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def browser_client(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no CSRF field on /login"
    response = client.post("/login", data={"login": REP, "password": DEMO_PASSWORD,
                                           "csrf_token": token.group(1), "next": "/"})
    assert response.status_code in (302, 303), response.status_code
    return client


def api_client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"})


def run_load(target: str, path: str, clients: Sequence[httpx.Client], *,
             requests: int) -> Load:
    for client in clients:  # warm-up, and a check that the path answers 200
        for _ in range(5):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code,
                                                  response.text[:300])
    per_client = max(1, requests // len(clients))

    def worker(client: httpx.Client) -> list[float]:
        samples = []
        for _ in range(per_client):
            start = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code}")
        return samples

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        samples = [s for part in pool.map(worker, clients) for s in part]
    elapsed = time.perf_counter() - started
    samples.sort()
    return Load(target, len(clients), len(samples), elapsed, statistics.median(samples),
                samples[min(len(samples) - 1, int(len(samples) * 0.95))])


def report(results: Sequence[tuple[str, int, Load]], command: str) -> str:
    lines = [
        (f"Command: `{command}` — {time.strftime('%Y-%m-%d')}; server: one uvicorn process; "
         "load: keep-alive httpx clients in another process, same machine (2 cores shared "
         f"by both). Signed in as `{REP}` (row scope: own + team pool)."),
        "",
        "| backend | rows | endpoint | clients | req/s | p50 ms | p95 ms | bare / endpoint req/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    bare = {(b, r.concurrency): r for b, _, r in results if r.target == "bare"}
    for backend, rows, r in results:
        base = bare[(backend, r.concurrency)]
        lines.append(f"| {backend} | {rows:,} | {r.target} | {r.concurrency} | "
                     f"{r.per_second:,.0f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | "
                     f"{base.per_second / r.per_second:.2f} |")
    return "\n".join(lines) + READING


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_http",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    results: list[tuple[str, int, Load]] = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-http-") as tmp, \
                database(backend, Path(tmp)) as url:
            prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=200)
            rows = max(grow(url, args.rows), args.rows)
            token = api_token(url)
            with server(url) as base:
                paths = {"bare": "/bare/list", "api": f"/api/v1/{ENTITY}?limit=50",
                         "html": f"/e/{ENTITY}"}
                for concurrency in sorted({1, args.concurrency}):
                    for target, path in paths.items():
                        clients = [api_client(base, token) if target == "api"
                                   else browser_client(base) for _ in range(concurrency)]
                        load = run_load(target, path, clients, requests=args.requests)
                        for client in clients:
                            client.close()
                        results.append((backend, rows, load))
                        print(f"  {backend} {target:5} x{concurrency}: {load.per_second:7.1f} "
                              f"req/s  p50 {load.p50_ms:6.1f} ms  p95 {load.p95_ms:6.1f} ms",
                              flush=True)
    command = "python -m bench.bench_http" + (f" {' '.join(argv)}" if argv else "")
    body = report(results, command)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
