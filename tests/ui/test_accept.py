"""Workers take turns at a shared listening socket (``ui.accept``): one connection per
readiness event, the rest left queued for the other workers."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import pytest
import uvloop

from ui import accept
from ui.accept import TurnTakingLoop, TurnTakingServer
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
