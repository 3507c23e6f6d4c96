"""The server side of bench/bench_http.py: the real app plus bare baseline endpoints.

Run as ``python -m bench._http_server --db URL --port N --login LOGIN --entity E
--record ID --workers W``. It serves the Tidepool app (sessions, CSRF, the API,
permissions: everything as in production, through ``ui.serve.run_workers``, so
with the same sockets and TCP_NODELAY as ``tidepool serve``) and, beside it,
bare Starlette endpoints that run the very SQL statements the records service
issues for LOGIN (captured at start-up) and return the rows as JSON: no token,
no session, no permission evaluation, no mapping: the floor any endpoint with
that query stands on. They hop to a request thread through ``ui.threads.in_thread``,
as the app's blocking handlers do (the API's reads on SQLite run on the event loop
instead, ``ui/inline.py``, so there ``x bare`` shows what that hop costs).

- ``/bare/list``: LOGIN's first list page of ENTITY;
- ``/bare/get``: the point read of record ID;
- ``/bare/patch?id=N``: one ``UPDATE ... RETURNING`` of the version and
  ``updated_at`` of record N in a write transaction;
- ``/bare/stats``: how many SQL statements this worker process has run (transaction
  control left out), for statements per request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.bench_records import captured_statement
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.query import ListQuery
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine, statement_timeout_setting, write_transaction
from ui.app import create_app
from ui.serve import run_workers
from ui.threads import in_thread

SECRET = b"bench-only-secret-key-not-for-production-use"
ENV = "TIDEPOOL_BENCH_SERVER"  # JSON: db, login, entity, record
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def captured_sql(live: LiveRuntime, login: str, entity: str,
                 record: int) -> dict[str, tuple[str, Any]]:
    """The driver-level SQL and parameters of LOGIN's list page and point read."""
    runtime = live.current()
    with runtime.engine.connect() as conn:
        user = find_user(conn, login)
    if user is None:
        raise SystemExit(f"no user {login!r}")
    actor = runtime.policy.actor_for(user.id)  # type: ignore[attr-defined]
    found = {}
    for name, call in (("list", lambda: runtime.records.list(actor, entity, ListQuery(limit=50))),
                       ("get", lambda: runtime.records.get(actor, entity, record))):
        captured = captured_statement(runtime.engine, call)
        found[name] = (captured.sql, captured.params)
    return found


def build(url: str, *, login: str, entity: str, record: int) -> ASGIApp:
    # Bounded as ``tidepool serve`` bounds it (ui/serve.py): the API's reads on SQLite
    # run on the event loop only under a statement timeout (ui/inline.py).
    live = LiveRuntime(url, engine=make_engine(url, statement_timeout=statement_timeout_setting()),
                       policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=SECRET)
    sql = captured_sql(live, login, entity, record)
    engine = live.current().engine
    table = live.current().schema.table(entity)
    statements = [0]

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)

    def run(name: str) -> list[Any]:
        text, params = sql[name]
        with engine.connect() as conn:
            return [list(row) for row in conn.exec_driver_sql(text, params).fetchall()]

    def patch(record_id: int) -> list[Any]:
        with write_transaction(engine) as conn:
            row = conn.execute(update(table).where(table.c.id == record_id)
                               .values(version=table.c.version + 1,
                                       updated_at=dt.datetime.now(dt.UTC))
                               .returning(table)).one()
        return list(row)

    def rows(found: Any) -> Response:
        return Response(json.dumps(found, default=str), media_type="application/json")

    # The same thread hop as the app's blocking handlers (``ui.threads``: the worker's
    # few request threads), not Starlette's 40-thread pool, so that ``x bare`` compares
    # like with like: with 40 threads the bare list paid the GIL contention described
    # in bench/RESULTS.md, "Request threads per worker" (2.3-2.8 ms against 1.3 ms).
    async def bare_list(request: Request) -> Response:
        return rows(await in_thread(run, "list"))

    async def bare_get(request: Request) -> Response:
        return rows(await in_thread(run, "get"))

    async def bare_patch(request: Request) -> Response:
        return rows(await in_thread(patch, int(request.query_params["id"])))

    async def stats(request: Request) -> Response:
        return rows({"statements": statements[0], "pid": os.getpid()})

    bare = Starlette(routes=[Route("/bare/list", bare_list), Route("/bare/get", bare_get),
                             Route("/bare/patch", bare_patch, methods=["POST"]),
                             Route("/bare/stats", stats)])

    # By path prefix, not a Starlette Mount around the app: a Mount put a second router
    # and middleware stack in front of every request of the app, which `tidepool serve`
    # does not have (~0.02 ms per request, issue 13).
    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bare/"):
            await bare(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch


def app_from_environment() -> ASGIApp:
    """The app each worker builds (settings from ``TIDEPOOL_BENCH_SERVER``)."""
    settings = json.loads(os.environ[ENV])
    return build(settings["db"], login=settings["login"], entity=settings["entity"],
                 record=settings["record"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--record", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[ENV] = json.dumps({"db": args.db, "login": args.login, "entity": args.entity,
                                  "record": args.record})
    run_workers("bench._http_server:app_from_environment", host="127.0.0.1", port=args.port,
                workers=args.workers, log_level="warning")


if __name__ == "__main__":
    main()
