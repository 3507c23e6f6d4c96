"""The server side of bench/bench_http.py: the real app plus a bare baseline endpoint.

Run as ``python -m bench._http_server --db URL --port N --login LOGIN``. It serves
the Tidepool app (sessions, CSRF, the API, permissions: everything as in
production) and, mounted beside it at ``/bare/list``, a bare Starlette endpoint that
runs the very SQL statement the records service issues for LOGIN's first list page
of ENTITY (captured at start-up) and returns the rows as JSON. No session, no
permission evaluation, no mapping: the floor any endpoint with that query stands on.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from bench.bench_records import captured_statement
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.query import ListQuery
from engine.runtime import LiveRuntime
from ui.app import create_app

SECRET = b"bench-only-secret-key-not-for-production-use"


def captured_list_sql(live: LiveRuntime, login: str, entity: str) -> tuple[str, Any]:
    runtime = live.current()
    with runtime.engine.connect() as conn:
        user = find_user(conn, login)
    if user is None:
        raise SystemExit(f"no user {login!r}")
    actor = runtime.policy.actor_for(user.id)  # type: ignore[attr-defined]
    captured = captured_statement(
        runtime.engine, lambda: runtime.records.list(actor, entity, ListQuery(limit=50)))
    return captured.sql, captured.params


def build(url: str, *, login: str, entity: str) -> Starlette:
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=SECRET)
    sql, params = captured_list_sql(live, login, entity)
    engine = live.current().engine

    def run() -> list[Any]:
        with engine.connect() as conn:
            return [list(row) for row in conn.exec_driver_sql(sql, params).fetchall()]

    async def bare(request: Request) -> Response:
        rows = await run_in_threadpool(run)
        return Response(json.dumps(rows, default=str), media_type="application/json")

    return Starlette(routes=[Route("/bare/list", bare), Mount("/", app)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--entity", required=True)
    args = parser.parse_args(argv)
    app = build(args.db, login=args.login, entity=args.entity)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
