"""``tidepool serve``: TCP_NODELAY on every accepted socket (uvicorn issue #3149), worker
processes, and a revoked token refused by every worker within a second."""

from __future__ import annotations

import http.client
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.reduction import ForkingPickler

import pytest
import uvicorn

from engine.permissions.tokens import revoke_token
from engine.storage.database import DATABASE_URL_ENV, write_transaction
from tests.conftest import REPO_ROOT
from tests.ui.api.conftest import seed
from ui.serve import NoDelayProtocol, bind_socket, default_workers, server_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stock_socket(host: str, port: int) -> socket.socket:
    """A listening socket made as uvicorn's own ``Config.bind_socket`` makes it (proto 0)."""
    sock = socket.socket(family=socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _handed_over(sock: socket.socket) -> socket.socket:
    """The socket as a spawned worker receives it (multiprocessing's pickling)."""
    moved: socket.socket = pickle.loads(ForkingPickler.dumps(sock))
    sock.close()
    return moved


@contextmanager
def _server(sock: socket.socket) -> Iterator[uvicorn.Server]:
    config = server_config(host="127.0.0.1", port=sock.getsockname()[1], workers=1,
                           log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_bind_socket_keeps_tcp_across_the_hand_over_to_workers() -> None:
    moved = _handed_over(bind_socket("127.0.0.1", 0))
    try:
        assert moved.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only then
    finally:
        moved.close()


@pytest.mark.parametrize("make_socket", [bind_socket, _stock_socket],
                         ids=["our-socket", "uvicorn-socket"])
def test_every_accepted_socket_has_tcp_nodelay(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
        make_socket: Callable[[str, int], socket.socket]) -> None:
    _, _, _, tokens, _ = seed(sqlite_url)
    monkeypatch.setenv(DATABASE_URL_ENV, sqlite_url)
    sock = _handed_over(make_socket("127.0.0.1", _free_port()))
    with _server(sock) as server:
        clients = [http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=30)
                   for _ in range(3)]
        try:
            for client in clients:  # keep-alive: the connections stay open while we look
                client.request("GET", "/api/v1/customer",
                               headers={"Authorization": f"Bearer {tokens['rep1']}"})
                response = client.getresponse()
                response.read()
                assert response.status == 200
            accepted = [c.transport.get_extra_info("socket")
                        for c in server.server_state.connections]
            assert len(accepted) == 3
            for s in accepted:
                assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            for client in clients:
                client.close()


def test_workers_default_to_the_cpu_count() -> None:
    assert default_workers() == len(os.sched_getaffinity(0))


def test_serve_refuses_a_bad_worker_count() -> None:
    done = subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--workers", "0"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 2
    assert "--workers: must be at least 1" in done.stderr


def _get(port: int, token: str) -> int:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # a new connection
    try:
        client.request("GET", "/api/v1/customer", headers={"Authorization": f"Bearer {token}"})
        response = client.getresponse()
        response.read()
        return response.status
    finally:
        client.close()


@pytest.mark.slow
def test_two_workers_serve_and_a_revoked_token_stops_in_every_worker(sqlite_url: str) -> None:
    engine, _, _, tokens, token_ids = seed(sqlite_url)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--db", sqlite_url,
                             "--workers", "2", "--port", str(port)], cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port, tokens["rep1"]) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the server did not start: {proc.communicate()[1]!r}")
            time.sleep(0.2)
        # New connections land on either worker: both cache the token.
        assert {_get(port, tokens["rep1"]) for _ in range(20)} == {200}
        with write_transaction(engine) as conn:
            revoke_token(conn, token_ids["rep1"])
        time.sleep(1.0)  # the bound the credential cache promises (stamp read every 0.5 s)
        assert {_get(port, tokens["rep1"]) for _ in range(20)} == {401}
        assert {_get(port, tokens["rep2"]) for _ in range(5)} == {200}
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # also closes the pipe
        engine.dispose()


def test_the_server_parses_http_in_c_on_uvloop() -> None:
    """httptools and uvloop are dependencies: uvicorn's pure-Python h11 parser and
    asyncio's own loop cost more CPU per request than a point read (issue 13)."""
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(NoDelayProtocol, HttpToolsProtocol)
    factory = server_config(host="127.0.0.1", port=0, workers=1).get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


class _Recorder:
    """A transport that records what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, ...]] = []
        self.closing = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append((data,))

    def writelines(self, chunks: tuple[bytes, ...]) -> None:
        self.sent.append(tuple(chunks))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_response_head_and_body_leave_in_one_write() -> None:
    """The head is held until the body joins it, a lone write until the loop's turn ends,
    and closing sends what is held first; a dropped connection gets nothing more."""
    import asyncio

    from ui.serve import CoalescingTransport

    async def scenario() -> list[list[tuple[bytes, ...]]]:
        pair, lone, closed, lost = _Recorder(), _Recorder(), _Recorder(), _Recorder()
        t = CoalescingTransport(pair)
        t.write(b"head")
        assert pair.sent == []  # held
        t.write(b"body")
        CoalescingTransport(lone).write(b"chunk")
        c = CoalescingTransport(closed)
        c.write(b"last")
        c.close()
        assert closed.closed and closed.sent == [(b"last",)]
        d = CoalescingTransport(lost)
        d.write(b"late")
        lost.closing = True
        assert d.get_extra_info("peername") == "info:peername"  # the rest is the transport's
        await asyncio.sleep(0)  # the loop's turn ends: held writes go out
        await asyncio.sleep(0)
        return [pair.sent, lone.sent, closed.sent, lost.sent]

    pair, lone, closed, lost = asyncio.run(scenario())
    assert pair == [(b"head", b"body")]
    assert lone == [(b"chunk",)]
    assert closed == [(b"last",)]
    assert lost == []
