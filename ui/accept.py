"""Workers that take turns at a shared listening socket: one connection per loop turn.

``tidepool serve --workers N`` runs N processes accepting on one socket. libuv (under
uvloop) accepts in a loop until the queue is empty, so the worker that wakes first
takes every connection waiting: when a client opens its keep-alive connections at
once (a load balancer's upstream pool, or wrk's eight), they can all land on one
worker and the others sit idle for as long as the connections live. In issue 13's
runs one worker took all eight in two of three two-worker runs. libuv had a switch
for this (``UV_TCP_SINGLE_ACCEPT``); the libuv uvloop bundles no longer has it, and
``SO_REUSEPORT``'s hash spreads eight connections no better.

``TurnTakingLoop`` is uvloop's loop with one change: a server on a socket passed in
(``create_server(sock=...)``, which is how uvicorn serves the socket ``ui.serve``
binds) accepts one connection each time the socket is ready and then goes back to the
loop. Every waiting worker is woken by the same arrival, so the queue is shared out
among the workers that are free, and a worker busy with a request takes nothing until
it comes back. Connections are then served by uvloop's own transports
(``connect_accepted_socket``), exactly as its servers serve them.

Accepting costs one more turn of the loop per connection, nothing per request.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvloop

logger = logging.getLogger("uvicorn.error")

#: How long to stop accepting when the process is out of file descriptors or memory
#: (asyncio's own servers wait the same second: constants.ACCEPT_RETRY_DELAY).
ACCEPT_RETRY_DELAY = 1.0
#: accept() errors that say the process is out of a resource, not that one connection
#: failed: retrying at once would spin.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class TurnTakingServer(asyncio.AbstractServer):
    """A server on an already bound socket that accepts one connection per readiness
    event; the socket may be shared with other processes doing the same."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol_factory: ProtocolFactory, *, backlog: int) -> None:
        self._loop = loop
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._serving = False
        self._closed = loop.create_future()
        self._connecting: set[asyncio.Task[Any]] = set()
        sock.setblocking(False)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed.done() else (self._sock,)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._closed.done():
            raise RuntimeError("the server is closed")
        if not self._serving:
            self._sock.listen(self._backlog)
            self._watch()

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.shield(self._closed)

    def close(self) -> None:
        """Stop accepting; connections already accepted live on (as asyncio's servers)."""
        if self._closed.done():
            return
        self._unwatch()
        self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)
        if self._connecting:  # hand-overs already started finish first
            await asyncio.gather(*self._connecting, return_exceptions=True)

    def _watch(self) -> None:
        if not self._closed.done():
            self._loop.add_reader(self._sock.fileno(), self.accept_one)
            self._serving = True

    def _unwatch(self) -> None:
        if self._serving:
            self._loop.remove_reader(self._sock.fileno())
            self._serving = False

    def accept_one(self) -> None:
        """Take one waiting connection, if another worker has not (the loop calls this
        each time the socket is readable)."""
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up in the queue
        except OSError as exc:
            if exc.errno not in _EXHAUSTED:
                raise
            logger.error("accepting connections paused for %.0f s: %s", ACCEPT_RETRY_DELAY, exc)
            self._unwatch()
            self._loop.call_later(ACCEPT_RETRY_DELAY, self._watch)
            return
        conn.setblocking(False)
        task = self._loop.create_task(self._hand_over(conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _hand_over(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError as exc:  # the client went away before its transport was made
            logger.debug("connection dropped while being set up: %s", exc)
            conn.close()


class TurnTakingLoop(uvloop.Loop):
    """uvloop's loop whose servers on passed-in sockets take turns with other workers
    (``TurnTakingServer``); everything else, TLS servers included, is uvloop's."""

    async def create_server(self, protocol_factory: ProtocolFactory,  # type: ignore[override]
                            host: Any = None, port: Any = None, *,
                            sock: socket.socket | None = None, backlog: int = 100,
                            ssl: Any = None, start_serving: bool = True,
                            **kwargs: Any) -> asyncio.AbstractServer:
        if sock is None or ssl is not None or kwargs or host is not None or port is not None:
            server: asyncio.AbstractServer = await super().create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl,
                start_serving=start_serving, **kwargs)
            return server
        turns = TurnTakingServer(self, sock, protocol_factory, backlog=backlog)
        if start_serving:
            await turns.start_serving()
        return turns
