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

Taking turns is not enough on its own: a worker busy with requests polls its loop
all the time while an idle one has to be woken and scheduled, so the busy one wins
each race for a new connection and keeps it for the connection's life (one worker
took all eight of wrk's connections in one of five two-worker runs with turns
alone). So a worker also reads the ``ConnectionBoard`` its siblings share: when
another live worker holds fewer connections, it stops watching the socket for
``DEFER_SECONDS`` and leaves the connection to that worker, then takes one itself if
any is still waiting (a stuck sibling delays a connection by that much, no more).
With one worker there is no board and nothing is deferred.

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

from ui.connection_board import ConnectionBoard

logger = logging.getLogger("uvicorn.error")

#: How long to stop accepting when the process is out of file descriptors or memory
#: (asyncio's own servers wait the same second: constants.ACCEPT_RETRY_DELAY).
ACCEPT_RETRY_DELAY = 1.0
#: accept() errors that say the process is out of a resource, not that one connection
#: failed: retrying at once would spin.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: How long a worker ahead of a sibling leaves a waiting connection to it: longer
#: than a woken process waits for a busy core, short enough to go unnoticed.
DEFER_SECONDS = 0.005
#: How often a worker on a board republishes its count, so that connections which
#: closed since its last accept stop counting against it (a few timer calls a second).
PUBLISH_SECONDS = 0.25

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class TurnTakingServer(asyncio.AbstractServer):
    """A server on an already bound socket that accepts one connection per readiness
    event; the socket may be shared with other processes doing the same."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol_factory: ProtocolFactory, *, backlog: int,
                 board: ConnectionBoard | None = None) -> None:
        self._loop = loop
        self._board = board if board is not None and board.claimed else None
        #: With a board: transports handed over (closed ones pruned by the publishing
        #: timer), and accepted connections still being handed over.
        self._open: set[Any] = set()
        self._arriving = 0
        self._publishing = False
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
        if self._board is not None:
            self._board.release()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)
        if self._connecting:  # hand-overs already started finish first
            await asyncio.gather(*self._connecting, return_exceptions=True)

    def _watch(self) -> None:
        if not self._closed.done():
            self._loop.add_reader(self._sock.fileno(), self.accept_one)
            if self._board is not None and not self._publishing:
                self._publishing = True
                self._loop.call_later(PUBLISH_SECONDS, self._republish)
            self._serving = True

    def _republish(self) -> None:
        if self._board is None or self._closed.done():
            self._publishing = False
            return
        self._board.publish(self.open_connections())
        self._loop.call_later(PUBLISH_SECONDS, self._republish)

    def _unwatch(self) -> None:
        if self._serving:
            self._loop.remove_reader(self._sock.fileno())
            self._serving = False

    def open_connections(self) -> int:
        """Connections this server accepted that are still open (or being handed over)."""
        self._open = {t for t in self._open if not t.is_closing()}
        return len(self._open) + self._arriving

    def accept_one(self) -> None:
        """The loop calls this each time the socket is readable: take one waiting
        connection, unless a sibling worker holds fewer (then defer to it)."""
        if self._board is not None:
            # Closed connections are pruned by the republishing timer, not here: an
            # accept must not cost a walk over thousands of open connections.
            mine = len(self._open) + self._arriving
            self._board.publish(mine)
            fewest = self._board.fewest_elsewhere()
            if fewest is not None and mine > fewest:
                self._unwatch()
                self._loop.call_later(DEFER_SECONDS, self._after_deferring)
                return
        self.take_one()

    def _after_deferring(self) -> None:
        if not self._closed.done():
            self._watch()
            self.take_one()  # whatever the siblings left waiting

    def take_one(self) -> None:
        """Accept one waiting connection, if another worker has not taken it."""
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
        self._arriving += 1
        if self._board is not None:
            self._board.publish(len(self._open) + self._arriving)
        task = self._loop.create_task(self._hand_over(conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _hand_over(self, conn: socket.socket) -> None:
        try:
            transport, _ = await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError as exc:  # the client went away before its transport was made
            logger.debug("connection dropped while being set up: %s", exc)
            conn.close()
        else:
            if self._board is not None:  # counted only to be published (pruned by its timer)
                self._open.add(transport)
        finally:
            self._arriving -= 1


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
        board = ConnectionBoard.from_environment()
        if board is not None:
            board.claim()
        turns = TurnTakingServer(self, sock, protocol_factory, backlog=backlog, board=board)
        if start_serving:
            await turns.start_serving()
        return turns
