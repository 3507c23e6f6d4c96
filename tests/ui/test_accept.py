"""Workers take turns at a shared listening socket (``ui.accept``): one connection per
readiness event, the rest left queued for the other workers."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import pytest
import uvloop

from ui import accept
from ui.accept import TurnTakingLoop, TurnTakingServer
from ui.connection_board import BOARD_ENV, ConnectionBoard
from ui.serve import bind_socket, server_config

T = TypeVar("T")


class _Greeter(asyncio.Protocol):
    """Says hello on every connection it is given, and counts them."""

    made: ClassVar[list[_Greeter]] = []

    def connection_made(self, transport: Any) -> None:
        _Greeter.made.append(self)
        transport.write(b"hello")


def _run(scenario: Callable[[], Awaitable[T]]) -> T:
    _Greeter.made = []
    with asyncio.Runner(loop_factory=TurnTakingLoop) as runner:
        return runner.run(scenario())


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition was not met within 2 s")


def _connect(address: tuple[str, int]) -> socket.socket:
    client = socket.create_connection(address, timeout=5)  # the kernel's queue completes it
    return client


def test_a_readiness_event_takes_one_connection_and_leaves_the_rest_queued() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = bind_socket("127.0.0.1", 0)
        server = await loop.create_server(_Greeter, sock=listener, backlog=16)
        assert isinstance(server, TurnTakingServer) and server.is_serving()
        clients = [_connect(listener.getsockname()) for _ in range(3)]
        try:
            server.accept_one()  # as the loop calls it: one of the three, no more
            other_worker, _ = listener.accept()  # the second is still queued for another
            other_worker.close()
            await _until(lambda: len(_Greeter.made) == 2)  # the loop takes the third
            await asyncio.sleep(0.05)
            assert len(_Greeter.made) == 2
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing left in the queue
                listener.accept()
            greeted = 0
            for client in clients:
                try:
                    greeted += client.recv(5) == b"hello"
                except (ConnectionResetError, TimeoutError):
                    pass  # the one the "other worker" closed
            assert greeted == 2
        finally:
            for client in clients:
                client.close()
            server.close()
            await server.wait_closed()
            listener.close()

    _run(scenario)


def test_a_closed_server_accepts_nothing_more() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = bind_socket("127.0.0.1", 0)
        server = await loop.create_server(_Greeter, sock=listener, backlog=16)
        first = _connect(listener.getsockname())
        await _until(lambda: len(_Greeter.made) == 1)
        assert first.recv(5) == b"hello"
        server.close()
        await server.wait_closed()
        assert not server.is_serving() and server.sockets == ()
        late = _connect(listener.getsockname())  # queued by the kernel, never taken
        await asyncio.sleep(0.1)
        assert len(_Greeter.made) == 1
        with pytest.raises(RuntimeError, match="closed"):
            await server.start_serving()
        for s in (first, late, listener):
            s.close()

    _run(scenario)


class _Exhausted(socket.socket):
    """A listening socket whose first accept() fails as a process out of descriptors."""

    failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if not _Exhausted.failed:
            _Exhausted.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_running_out_of_descriptors_pauses_accepting_then_resumes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accept, "ACCEPT_RETRY_DELAY", 0.1)
    _Exhausted.failed = False

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = _Exhausted(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.bind(("127.0.0.1", 0))
        server = await loop.create_server(_Greeter, sock=listener, backlog=16)
        client = _connect(listener.getsockname())
        server.accept_one()  # EMFILE: no spinning on a socket that stays readable
        assert _Exhausted.failed and not server.is_serving()
        assert _Greeter.made == []
        await _until(lambda: len(_Greeter.made) == 1)  # after the pause, it is taken
        assert server.is_serving()
        assert client.recv(5) == b"hello"
        client.close()
        server.close()
        listener.close()

    _run(scenario)


def test_servers_on_a_host_and_port_are_uvloops_own() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Greeter, "127.0.0.1", 0)
        try:
            assert not isinstance(server, TurnTakingServer)
        finally:
            server.close()

    _run(scenario)


def test_the_server_runs_on_the_turn_taking_uvloop() -> None:
    factory = server_config(host="127.0.0.1", port=0, workers=2).get_loop_factory()
    assert factory is TurnTakingLoop
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_board_gives_each_live_worker_a_slot_and_reuses_dead_ones() -> None:
    board = ConnectionBoard.create(2)
    sibling = ConnectionBoard(board.path)
    late = ConnectionBoard(board.path)
    try:
        assert board.claim() and sibling.claim(pid=os.getppid())  # two live processes
        assert not late.claim(pid=os.getpid() + 1)  # full: no slot is free
        assert board.fewest_elsewhere() == 0
        sibling.publish(3)
        assert board.fewest_elsewhere() == 3 and sibling.fewest_elsewhere() == 0
        sibling.release()
        assert board.fewest_elsewhere() is None
        dead = ConnectionBoard(board.path)
        assert dead.claim(pid=_dead_pid())
        dead.publish(0)
        assert board.fewest_elsewhere() is None  # a dead worker's slot steers nothing
        assert late.claim(pid=os.getppid())  # and is taken over by its replacement
        dead.close()
    finally:
        sibling.close()
        late.close()
        board.remove()
    assert not board.path.exists()
    with pytest.raises(ValueError):
        ConnectionBoard.create(0)


def test_a_worker_ahead_of_a_sibling_leaves_the_next_connection_to_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accept, "DEFER_SECONDS", 0.2)
    monkeypatch.setattr(accept, "PUBLISH_SECONDS", 0.02)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = bind_socket("127.0.0.1", 0)
        board_a = ConnectionBoard.create(2)
        board_b = ConnectionBoard(board_a.path)
        assert board_a.claim() and board_b.claim(pid=os.getppid())
        a = TurnTakingServer(loop, listener, _Greeter, backlog=16, board=board_a)
        shared = listener.dup()  # b's own descriptor for the same socket, as a worker has
        b = TurnTakingServer(loop, shared, _Greeter, backlog=16, board=board_b)
        listener.listen(16)  # not serving: the test calls accept_one as the loop would
        clients = []
        try:
            clients.append(_connect(listener.getsockname()))
            a.accept_one()  # level with its sibling: takes it
            await _until(lambda: a.open_connections() == 1 and len(_Greeter.made) == 1)
            clients.append(_connect(listener.getsockname()))
            a.accept_one()  # one ahead of b: defers
            assert a.open_connections() == 1 and not a.is_serving()
            b.accept_one()  # b takes it
            await _until(lambda: b.open_connections() == 1)
            assert a.open_connections() == 1
            await _until(a.is_serving)  # a watches again after the deferral
            clients[0].close()  # a's connection ends: a is behind now
            await _until(lambda: board_b.fewest_elsewhere() == 0)  # and a says so
            clients.append(_connect(listener.getsockname()))
            b.accept_one()  # b is ahead: it defers, and a takes it
            assert b.open_connections() == 1 and not b.is_serving()
            a.accept_one()
            await _until(lambda: a.open_connections() == 1)
        finally:
            for client in clients:
                client.close()
            for server in (a, b):
                server.close()
                await server.wait_closed()
            board_b.close()
            board_a.remove()
            shared.close()
            listener.close()

    _run(scenario)


def test_a_sibling_that_takes_nothing_only_delays_a_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accept, "DEFER_SECONDS", 0.05)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = bind_socket("127.0.0.1", 0)
        board = ConnectionBoard.create(2)
        stuck = ConnectionBoard(board.path)  # a live sibling that never accepts
        assert board.claim() and stuck.claim(pid=os.getppid())
        server = await loop.create_server(_Greeter, sock=listener, backlog=16)
        assert isinstance(server, TurnTakingServer)
        server.close()  # replaced by one on the board
        turns = TurnTakingServer(loop, listener, _Greeter, backlog=16, board=board)
        await turns.start_serving()
        clients = [_connect(listener.getsockname()) for _ in range(3)]
        try:
            await _until(lambda: len(_Greeter.made) == 3)  # each after a deferral
            assert turns.open_connections() == 3
            for client in clients:
                assert client.recv(5) == b"hello"
        finally:
            for client in clients:
                client.close()
            turns.close()
            stuck.close()
            board.remove()
            listener.close()

    _run(scenario)


def test_run_workers_names_a_board_only_while_serving_several(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor makes the board for N > 1 workers and removes it when it stops."""
    seen: list[str | None] = []

    class _Supervisor:
        def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
            assert config.workers == 2 and len(sockets) == 1

        def run(self) -> None:
            path = os.environ.get(BOARD_ENV)
            seen.append(path)
            assert path is not None
            board = ConnectionBoard(path)
            assert board.slots == 4  # a replacement worker starts before the old one stops
            board.close()

    monkeypatch.setattr("uvicorn.supervisors.Multiprocess", _Supervisor)
    from ui.serve import run_workers

    run_workers("ui.serve:app_from_environment", host="127.0.0.1", port=0, workers=2)
    assert seen and seen[0] is not None
    assert not os.path.exists(seen[0]) and BOARD_ENV not in os.environ
