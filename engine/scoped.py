"""A context variable set for the length of a ``with`` block.

The API's reads enter several such blocks per request (the statement budget, the
memory-only stamps, the kept connection, one stamp read per request). As
``@contextmanager`` generators each cost ~1.2 µs to enter and leave; this class
costs ~0.4 µs, and a list page is a few hundred µs of Python (issue 13).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Generic, TypeVar

T = TypeVar("T")


class ScopedValue(Generic[T]):
    """``with ScopedValue(var, value):`` — ``var`` holds ``value`` inside the block and
    what it held before after it, however the block ends. Not reentrant: one instance
    per block, as a ``@contextmanager`` call is."""

    __slots__ = ("_token", "_value", "_var")

    def __init__(self, var: ContextVar[T], value: T) -> None:
        self._var = var
        self._value = value

    def __enter__(self) -> None:
        self._token: Token[T] = self._var.set(self._value)

    def __exit__(self, *exc: object) -> None:
        self._var.reset(self._token)
