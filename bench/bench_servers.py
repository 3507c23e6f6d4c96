"""Which HTTP server: the same app and load under uvicorn, granian and gunicorn.

Issue 13 asks for the server to be chosen by measurement. Run ``python -m
bench.bench_servers`` (``--help`` for options). It builds bench_http's database
(the demo, ENTITY grown to ``--rows``), then serves the very app bench_http
measures (``bench._http_server``: the Tidepool app plus bare endpoints) under each
server and worker count, and loads the API list (``GET /api/v1/<entity>?limit=50``)
and point read (``GET /api/v1/<entity>/<id>``) with ``--clients`` keep-alive
connections, signed in as a rep:

* ``uvicorn``: ``ui.serve.run_workers``, as ``tidepool serve --workers N`` runs it
  (httptools, uvloop, TCP_NODELAY on every accepted socket, one write per response);
* ``granian``: granian's ASGI interface (Rust HTTP server, the app on a uvloop loop);
* ``gunicorn``: gunicorn's arbiter with uvicorn's worker class (httptools, uvloop);
* ``uvicorn-libuv``: as ``uvicorn``, but each worker accepts as uvloop does on its own
  (libuv takes every queued connection at once) and without the connection board:
  how ``tidepool serve`` accepted before ``ui/accept.py``.

``--repeat N`` runs each load N times (each with fresh connections: each run is a new
race for them among the workers) and the ``CPU split`` column shows how the
server's CPU fell on its processes, so uneven accepts show up (docs/scaling.md,
"How connections reach the workers").

For each: requests per second and the server's CPU per request (all its processes,
from /proc), and ``x uvicorn``: that CPU over uvicorn's for the same load and worker
count in the same run. A server that is not installed is left out and said so
(``pip install -e '.[bench]'`` installs granian and gunicorn). Results go to the
``HTTP servers (issue 13)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._http_server import ENV
from bench.bench_http import (
    CRM,
    ENTITY,
    REP,
    REPO,
    WRK,
    Load,
    Traffic,
    _free_port,
    _load_average,
    api_token,
    grow,
    rep_records,
    run_load,
    serving,
)
from bench.databases import database
from bench.results import write_section
from engine.demo import prepare_demo

HEADING = "HTTP servers (issue 13)"
SERVERS = ("uvicorn", "granian", "gunicorn")
#: Measured only when asked for (``--servers``): the accept path ui/accept.py replaced.
VARIANTS = ("uvicorn-libuv",)
_BIN = Path(sys.executable).parent
_FACTORY = "bench._http_server:app_from_environment"


def command(server: str, *, port: int, workers: int) -> list[str] | None:
    """The command line serving the bench app under ``server`` (None: not installed)."""
    if server == "uvicorn":
        return [sys.executable, "-c",
                ("from ui.serve import run_workers; "
                f"run_workers({_FACTORY!r}, host='127.0.0.1', port={port}, "
                f"workers={workers}, log_level='warning')")]
    if server == "uvicorn-libuv":
        return [sys.executable, "-c",
                ("import uvicorn; from uvicorn.supervisors import Multiprocess; "
                 "from ui.serve import bind_socket, server_config; "
                 f"config = server_config(host='127.0.0.1', port={port}, workers={workers}, "
                 f"log_level='warning', app={_FACTORY!r}); config.loop = 'uvloop'; "
                 f"sock = bind_socket('127.0.0.1', {port}); "
                 "Multiprocess(config, sockets=[sock]).run() if config.workers > 1 "
                 "else uvicorn.Server(config).run(sockets=[sock])")]
    if server == "granian":
        exe = _BIN / "granian"
        return None if not exe.exists() else [
            str(exe), "--interface", "asgi", "--factory", "--loop", "uvloop",
            "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-ws", _FACTORY]
    if server == "gunicorn":
        exe = _BIN / "gunicorn"
        try:
            import uvicorn.workers  # noqa: F401  (the worker class gunicorn loads)
        except ImportError:
            return None
        return None if not exe.exists() else [
            str(exe), "--workers", str(workers), "--worker-class",
            "uvicorn.workers.UvicornWorker", "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning", f"{_FACTORY}()"]
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS + VARIANTS)}")


def server_environment(settings: dict[str, object]) -> dict[str, str]:
    """The environment a server command needs to build the bench app (its factory reads
    ``ENV``; granian and gunicorn import it from the repository)."""
    return {**os.environ, ENV: json.dumps(settings),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")]))}


@dataclass(frozen=True)
class Result:
    server: str
    workers: int
    load: Load


def report(results: Sequence[Result], missing: Sequence[str], command_line: str, *,
           rows: int, clients: int, client: str, load_average: str) -> str:
    lines = [
        (f"Command: `{command_line}` — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
         f"load average {load_average}; SQLite, {rows:,} {ENTITY} rows; load: {clients} "
         f"keep-alive connections from {client} on the same machine (2 cores shared by "
         f"all); signed in as `{REP}`."),
        "",
        "| server | workers | op | req/s | CPU ms/req | x uvicorn CPU | 2w/1w | CPU split |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    runs: dict[tuple[str, int, str], list[Load]] = {}
    for r in results:
        runs.setdefault((r.server, r.workers, r.load.op), []).append(r.load)
    # With --repeat, each run is set against the mean of the runs it is compared with.
    cpu = {key: statistics.fmean(x.cpu_ms for x in found) for key, found in runs.items()}
    rate = {key: statistics.fmean(x.per_second for x in found) for key, found in runs.items()}
    for r in results:
        base = cpu.get(("uvicorn", r.workers, r.load.op))
        one = rate.get((r.server, 1, r.load.op))
        versus = f"{r.load.cpu_ms / base:.2f}" if base else ""
        scale = f"{r.load.per_second / one:.2f}" if one and r.workers > 1 else ""
        split = " / ".join(f"{share:.0%}" for share in r.load.split)
        lines.append(f"| {r.server} | {r.workers} | {r.load.op} | {r.load.per_second:,.0f} | "
                     f"{r.load.cpu_ms:.3f} | {versus} | {scale} | {split} |")
    if missing:
        lines += ["", (f"Not installed, so not measured: {', '.join(missing)} "
                      "(`pip install -e '.[bench]'`).")]
    lines += ["", ("Reading: `CPU ms/req` is the server's processes (supervisor or arbiter "
                   "and workers; SQLite runs inside them) per request; `x uvicorn CPU` is that "
                   "over uvicorn's for the same op and workers in this run (below 1: cheaper "
                   "than uvicorn; with `--repeat`, over the mean of uvicorn's runs, and `2w/1w` over "
                   "the mean of one worker's). `CPU split` is each busy process's share of the "
                   "server's CPU, largest first: one worker near 100% means it accepted every "
                   "connection. uvicorn, as `ui.serve` runs it, is the server Tidepool "
                   "ships (docs/scaling.md, \"Why uvicorn\").")]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_servers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each load, each with fresh connections")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    client = "wrk" if WRK else "asyncio"
    worker_counts = [int(w) for w in args.workers.split(",")]
    results: list[Result] = []
    missing: list[str] = []
    averages = [_load_average()]
    with tempfile.TemporaryDirectory(prefix="tidepool-servers-") as tmp, \
            database("sqlite", Path(tmp)) as url:
        prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=200)
        rows = max(grow(url, args.rows), args.rows)
        token = api_token(url)
        record = rep_records(url, 1)[0]
        environment = server_environment({"db": url, "login": REP, "entity": ENTITY,
                                          "record": record})
        bearer = {"Authorization": f"Bearer {token}"}
        loads = [("list", Traffic("GET", f"/api/v1/{ENTITY}?limit=50", bearer)),
                 ("get", Traffic("GET", f"/api/v1/{ENTITY}/{record}", bearer))]
        for server in args.servers.split(","):
            for workers in worker_counts:
                port = _free_port()
                argv_ = command(server, port=port, workers=workers)
                if argv_ is None:
                    missing.append(server)
                    break
                with serving(argv_, port=port, env=environment) as (host, port_, pid):
                    for _ in range(args.repeat):
                        for op, traffic in loads:
                            load = run_load(host, port_, pid, op, "api", traffic,
                                            clients=args.clients, seconds=args.seconds,
                                            count_statements=False, client=client)
                            results.append(Result(server, workers, load))
                            print(f"  {server:8} w{workers} {op:4}: {load.per_second:8.1f} "
                                  f"req/s  cpu {load.cpu_ms:.3f} ms/req  split "
                                  f"{[round(x, 2) for x in load.split]}", flush=True)
    averages.append(_load_average())
    given = list(argv) if argv is not None else sys.argv[1:]
    command_line = "python -m bench.bench_servers" + (f" {' '.join(given)}" if given else "")
    body = report(results, missing, command_line, rows=rows, clients=args.clients,
                  client=client, load_average=" -> ".join(f"({a})" for a in averages))
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
