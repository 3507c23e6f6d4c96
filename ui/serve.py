"""Serve the app under uvicorn (``tidepool serve`` and ``tidepool demo``), with N workers.

Why uvicorn, and what we change about it (docs/scaling.md, "Workers"):

- ``--workers N`` runs N processes accepting on one listening socket bound here.
  uvicorn's own multi-worker path binds with ``socket.socket(family)``: the socket's
  ``proto`` is 0, so asyncio's ``_set_nodelay`` (which checks ``proto ==
  IPPROTO_TCP``) leaves Nagle's algorithm on for every accepted connection, and
  keep-alive clients wait for delayed ACKs: two workers were slower than one
  (uvicorn issue #3149; measured in issue 13). ``bind_socket`` creates the socket
  with ``IPPROTO_TCP``, which survives the hand-over to spawned workers, and
  ``NoDelayProtocol`` sets ``TCP_NODELAY`` on each accepted socket as well, so no
  path of uvicorn's can lose it.
- uvicorn's "auto" choices find the C parts, which are dependencies: httptools parses
  HTTP and uvloop runs the event loop (h11 and asyncio's loop, its fallbacks, cost
  ~0.1-0.2 ms more CPU per request; bench/RESULTS.md, "HTTP with wrk (issue 13)").
- Workers take turns at the shared socket: the event loop is ``ui.accept.TurnTakingLoop``
  (uvloop's, accepting one connection per turn), so a client's keep-alive connections
  opened at once are shared out among the workers instead of all landing on the one
  that woke first; a worker holding more connections than a sibling leaves the next
  one to it (``ui.connection_board``).
- Workers are spawned processes that import ``app_from_environment``; every cache
  a process holds (registry, policy index, credentials) is kept valid across
  processes by the version stamps, as with several servers.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from engine.errors import TidepoolError
from engine.permissions.policy_store import sync_roles
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime, require_current_system_tables
from engine.storage.database import (
    DATABASE_URL_ENV,
    make_engine,
    statement_timeout_setting,
    write_transaction,
)
from engine.workflow.scheduler import DEFAULT_INTERVAL, RuleScheduler
from ui.app import create_app
from ui.connection_board import BOARD_ENV, ConnectionBoard
from ui.secret import load_secret_key

UPLOAD_DIR_ENV = "TIDEPOOL_UPLOAD_DIR"
#: The banner line for spawned workers (they read their settings from the environment).
BANNER_ENV = "TIDEPOOL_BANNER"


def default_upload_dir(url: str) -> Path | None:
    """``$TIDEPOOL_UPLOAD_DIR``, else ``uploads/`` beside a SQLite database file."""
    configured = os.environ.get(UPLOAD_DIR_ENV)
    if configured:
        return Path(configured)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database \
            and parsed.database != ":memory:":
        return Path(parsed.database).resolve().parent / "uploads"
    return None


def build_app(url: str, *, banner: str = "", https: bool | None = None,
              sync: bool = True) -> Starlette:
    """The app for ``url`` with the real permission policy, key and upload directory.

    ``sync=False`` skips syncing the roles (the parent process of the workers did).
    """
    # Every statement a request runs is bounded (docs/security.md, "Statement timeout").
    engine = make_engine(url, statement_timeout=statement_timeout_setting())
    if sync:  # a worker's parent has checked already
        try:
            require_current_system_tables(engine, url)
        except TidepoolError:
            engine.dispose()
            raise
    live = LiveRuntime(url, engine=engine, policy_factory=CasbinAccessPolicy)
    if sync:
        with write_transaction(live.engine) as conn:  # roles as the applied metadata declares
            sync_roles(conn, live.current().registry)
    return create_app(live, secret_key=load_secret_key(url), upload_dir=default_upload_dir(url),
                      banner=banner, https=https, dispose_on_shutdown=True)


def app_from_environment() -> Starlette:
    """The app a spawned worker serves: the database from ``TIDEPOOL_DATABASE_URL``."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise RuntimeError(f"{DATABASE_URL_ENV} is not set for the worker")
    return build_app(url, banner=os.environ.get(BANNER_ENV, ""), sync=False)


class NoDelayProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools, a dependency: the pure-Python h11 it falls
    back to cost more CPU per request than a point read, issue 13) with ``TCP_NODELAY``
    set on every accepted TCP connection: a response is sent at once, not held back
    until the client's delayed ACK. Its writes go through ``CoalescingTransport``."""

    def connection_made(self, transport: Any) -> None:
        set_nodelay(transport.get_extra_info("socket"))
        super().connection_made(CoalescingTransport(transport))


class CoalescingTransport:
    """A transport that sends a response's head and body in one write.

    uvicorn writes the status line and headers, then the body, each at once; with
    ``TCP_NODELAY`` that is two system calls and two segments per response, and the
    client is woken for the head alone. Here a write is held until the next one (and
    both go out together) or until the event loop's current turn ends, so nothing
    waits longer than that; closing, or anything else that ends or changes the
    stream, sends what is held first. Everything else is the wrapped transport's.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            if data:
                self._held = data
                self._loop.call_soon(self.flush)
            return
        self._held = None
        self._transport.writelines((held, data))

    def writelines(self, chunks: Any) -> None:
        self.flush()
        self._transport.writelines(chunks)

    def flush(self) -> None:
        """Send the held write, if any (and if the connection still takes writes)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def set_protocol(self, protocol: Any) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_write_buffer_size(self) -> int:
        return len(self._held or b"") + int(self._transport.get_write_buffer_size())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def set_nodelay(sock: Any) -> None:
    """Turn Nagle's algorithm off on a TCP socket (other sockets are left alone)."""
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that keeps ``IPPROTO_TCP`` across the hand-over to workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def server_config(*, host: str, port: int, workers: int, log_level: str = "info",
                  app: str = "ui.serve:app_from_environment") -> Any:
    """The uvicorn configuration ``serve`` runs (``app``, a factory, is imported by each
    worker)."""
    import uvicorn

    return uvicorn.Config(app, factory=True, host=host, port=port, workers=workers,
                          http="ui.serve:NoDelayProtocol", loop="ui.accept:TurnTakingLoop",
                          log_level=log_level,
                          access_log=False, proxy_headers=False)


def run_workers(app: str, *, host: str, port: int, workers: int,
                log_level: str = "info") -> None:
    """Serve the app factory ``app`` ("module:function") with ``workers`` processes on one
    socket bound here (benchmarks serve their own app through this too)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers < 1:
        raise ValueError("workers must be at least 1")
    config = server_config(host=host, port=port, workers=workers, log_level=log_level, app=app)
    sock = bind_socket(host, port)
    board = None
    try:
        if workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
        else:  # the workers share out connections through a board (ui/accept.py)
            # Room for each worker's replacement, which uvicorn starts before it stops
            # the worker it replaces.
            board = ConnectionBoard.create(2 * workers)
            os.environ[BOARD_ENV] = str(board.path)  # spawned workers inherit it
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if board is not None:
            os.environ.pop(BOARD_ENV, None)
            board.remove()


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8000, out: TextIO,
          banner: str = "", workers: int | None = None,
          rules_interval: float | None = DEFAULT_INTERVAL) -> None:
    """Serve ``url`` on ``host:port`` with ``workers`` processes (default: the CPU count).

    The pool rules run every ``rules_interval`` seconds (None: never) in this, the
    supervising process: once per server, not once per worker (their job leases
    make several servers on one database safe too).
    """
    workers = workers or default_workers()
    checked = make_engine(url)
    try:  # fail early, with the command to run, if not initialised or not migrated
        require_current_system_tables(checked, url)
    finally:
        checked.dispose()
    live = LiveRuntime(url, policy_factory=CasbinAccessPolicy)
    with write_transaction(live.engine) as conn:
        sync_roles(conn, live.current().registry)
    scheduler = None
    if rules_interval:
        scheduler = RuleScheduler(lambda: live.current().records, interval=rules_interval)
        scheduler.start()
    os.environ[DATABASE_URL_ENV] = url  # spawned workers inherit it
    os.environ[BANNER_ENV] = banner
    out.write(f"serving {make_url(url).render_as_string(hide_password=True)} "
              f"on http://{host}:{port}/ with {workers} worker{'s' if workers > 1 else ''}\n")
    out.flush()
    try:
        run_workers("ui.serve:app_from_environment", host=host, port=port, workers=workers)
    finally:
        if scheduler is not None:
            scheduler.stop()
        live.dispose()
