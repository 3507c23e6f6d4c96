"""The one thread hop of a request: blocking handlers (database work) off the event loop.

Starlette's ``run_in_threadpool`` goes through anyio's worker threads and capacity
limiter; for a request whose whole work is ~1 ms that hand-off cost about 0.3 ms
of CPU per request more than asyncio's own executor (issue 13, measured in one
process, same requests, alternating). This runs the callable in a
``ThreadPoolExecutor`` of the same size as Starlette's default limiter, with the
caller's context variables, as ``run_in_threadpool`` does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

#: Requests one process runs at once (Starlette's default thread limit).
MAX_THREADS = 40

_P = ParamSpec("_P")
_T = TypeVar("_T")
_lock = threading.Lock()
_executor: tuple[int, ThreadPoolExecutor] | None = None


def _pool() -> ThreadPoolExecutor:
    """This process's executor (made at first use: each worker process has its own)."""
    global _executor
    found = _executor
    if found is None or found[0] != os.getpid():
        with _lock:
            found = _executor
            if found is None or found[0] != os.getpid():
                found = _executor = (os.getpid(), ThreadPoolExecutor(
                    MAX_THREADS, thread_name_prefix="tidepool-request"))
    return found[1]


async def in_thread(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``func(*args, **kwargs)`` in a worker thread, awaited without blocking the loop."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)
