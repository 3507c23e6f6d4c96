"""The one thread hop of a request: blocking handlers (database work) off the event loop.

Starlette's ``run_in_threadpool`` goes through anyio's worker threads and capacity
limiter; for a request whose whole work is ~1 ms that hand-off cost about 0.3 ms
of CPU per request more than asyncio's own executor (issue 13, measured in one
process, same requests, alternating), and asyncio's executor path in turn cost more
than the leaner hand-off here (``_Workers``). The callable runs on one of as many
threads as Starlette's default limiter allows, with the caller's context
variables, as ``run_in_threadpool`` does.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

#: The environment variable that sets how many requests one worker process runs at once.
THREADS_ENV = "TIDEPOOL_REQUEST_THREADS"
#: Its default. Few on purpose: the request threads of one process share its GIL, and
#: every handoff between them costs CPU. SQLite's driver releases the GIL at every row
#: it steps, so a 50-row list page handed the GIL back and forth ~50 times against
#: the other threads: with 8 keep-alive clients on one worker, 40 threads (Starlette's
#: default) cost 2.6 ms of CPU per API list page against 1.3 ms with 2 threads and
#: 0.9 ms with 1; on PostgreSQL 1.30 against 0.88 ms with 2 (issue 13, bench_http,
#: bench/RESULTS.md "Request threads per worker"). Two rather than one so that one
#: slow request (an export, a long report) does not stop its worker; other requests
#: wait in the event loop, not in the kernel's accept queue. Raise it where requests
#: mostly wait on something slow outside the process.
DEFAULT_THREADS = 2


def configured_threads(environ: Mapping[str, str] = os.environ) -> int:
    """The request threads per worker process: ``TIDEPOOL_REQUEST_THREADS`` or the default.

    A value that is not a whole number from 1 to 1000 is refused with the variable's
    name, at start-up, rather than read as something else.
    """
    raw = environ.get(THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_THREADS
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ValueError(f"{THREADS_ENV} must be a whole number from 1 to 1000, not {raw!r}")
    return int(raw)


#: Requests one process runs at once.
MAX_THREADS = configured_threads()

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _Workers:
    """Threads taking calls from one ``SimpleQueue``, started as calls find none idle.

    ``loop.run_in_executor`` wraps every call in a ``concurrent.futures.Future`` (a
    lock and a condition), chains it to an asyncio future through two callbacks, and
    ``ThreadPoolExecutor.submit`` takes a lock and a semaphore: for a ~0.1 ms point
    read that bookkeeping cost as much CPU as the read (issue 13, measured in process).
    Here a call is one queue item and its result one ``call_soon_threadsafe``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.started = 0
        self.idle = 0

    def submit(self, call: Callable[[], None]) -> None:
        with self.lock:
            if self.idle:
                self.idle -= 1
            elif self.started < self.size:
                self.started += 1
                threading.Thread(target=self._work, daemon=True,
                                 name=f"tidepool-request_{self.started}").start()
            # else: every thread is busy; the call waits in the queue for the first free one
        self.calls.put(call)

    def _work(self) -> None:
        calls = self.calls
        while True:
            calls.get()()
            with self.lock:
                self.idle += 1


_lock = threading.Lock()
_workers: tuple[int, _Workers] | None = None


def _pool() -> _Workers:
    """This process's worker threads (made at first use: each worker process has its own)."""
    global _workers
    found = _workers
    if found is None or found[0] != os.getpid():
        with _lock:
            found = _workers
            if found is None or found[0] != os.getpid():
                found = _workers = (os.getpid(), _Workers(MAX_THREADS))
    return found[1]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the request went away while its handler ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


async def in_thread(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``func(*args, **kwargs)`` in a worker thread, awaited without blocking the loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    context = contextvars.copy_context()

    def call() -> None:
        try:
            value = context.run(func, *args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - re-raised in the awaiting request
            loop.call_soon_threadsafe(_settle, future, None, error)
        else:
            loop.call_soon_threadsafe(_settle, future, value, None)

    _pool().submit(call)
    return await future
