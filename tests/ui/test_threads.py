"""The request thread hop (ui/threads.py): off the event loop, with the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from ui.threads import in_thread

T = TypeVar("T")

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _seen(extra: str, *, suffix: str) -> tuple[str, str]:
    return threading.current_thread().name, f"{_who.get()}{extra}{suffix}"


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: a session fixture (Playwright's sync API)
    may already run an event loop on the test's thread."""
    with ThreadPoolExecutor(1, thread_name_prefix="test-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_runs_in_a_worker_thread_with_the_callers_context() -> None:
    async def call() -> tuple[str, str]:
        _who.set("rep")
        return await in_thread(_seen, "-", suffix="ok")

    thread, value = _run(call())
    assert thread.startswith("tidepool-request") and thread != threading.current_thread().name
    assert value == "rep-ok"


def test_an_error_reaches_the_caller() -> None:
    def fail() -> None:
        raise LookupError("gone")

    async def call() -> None:
        await in_thread(fail)

    with pytest.raises(LookupError, match="gone"):
        _run(call())


def test_a_cancelled_call_leaves_the_threads_usable() -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 1

    async def call() -> int:
        task = asyncio.ensure_future(in_thread(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()  # the client went away while its handler ran
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.sleep(0.05)  # the result arrives for a cancelled future: dropped
        return await in_thread(int, "2")

    assert _run(call()) == 2


def test_more_calls_than_threads_all_finish() -> None:
    from ui import threads

    def held(i: int) -> tuple[int, str]:
        threading.Event().wait(0.01)
        return i, threading.current_thread().name

    async def call() -> list[tuple[int, str]]:
        return await asyncio.gather(*(in_thread(held, i) for i in range(threads.MAX_THREADS + 20)))

    found = _run(call())
    assert [i for i, _ in found] == list(range(threads.MAX_THREADS + 20))
    assert len({name for _, name in found}) <= threads.MAX_THREADS


def test_request_threads_come_from_the_environment_or_a_small_default() -> None:
    from ui.threads import DEFAULT_THREADS, THREADS_ENV, configured_threads

    assert configured_threads({}) == DEFAULT_THREADS == 2
    assert configured_threads({THREADS_ENV: " 8 "}) == 8
    for bad in ("0", "-1", "two", "1.5", "1001"):
        with pytest.raises(ValueError, match=THREADS_ENV):
            configured_threads({THREADS_ENV: bad})
