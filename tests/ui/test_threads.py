"""The request thread hop (ui/threads.py): off the event loop, with the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from ui.threads import in_thread

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _seen(extra: str, *, suffix: str) -> tuple[str, str]:
    return threading.current_thread().name, f"{_who.get()}{extra}{suffix}"


def test_runs_in_a_worker_thread_with_the_callers_context() -> None:
    async def call() -> tuple[str, str]:
        _who.set("rep")
        return await in_thread(_seen, "-", suffix="ok")

    thread, value = asyncio.run(call())
    assert thread.startswith("tidepool-request") and thread != threading.current_thread().name
    assert value == "rep-ok"


def test_an_error_reaches_the_caller() -> None:
    def fail() -> None:
        raise LookupError("gone")

    async def call() -> None:
        await in_thread(fail)

    with pytest.raises(LookupError, match="gone"):
        asyncio.run(call())
