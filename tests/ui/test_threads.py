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
