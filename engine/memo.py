"""Values built once per metadata generation, for hot paths that compile from metadata.

A registry or storage schema is replaced whole when the metadata changes, so what was
compiled from the old one (a statement, a row drawer) is dropped with it: the memo
keeps the values of the newest owner object seen, compared by identity (frozen
metadata dataclasses hash by their fields, which is costly or impossible).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GenerationMemo(Generic[K, V]):
    """``get(owner, key, build)``: ``build()`` once per key while ``owner`` is the newest.

    Reads take no lock; starting a new generation does, so two threads meeting a new
    owner at once agree on one dict. ``limit`` bounds the keys kept per generation
    (past it the memo starts over: keys such as column sets come from users).
    """

    def __init__(self, *, limit: int | None = None) -> None:
        self.limit = limit
        self._state: tuple[object | None, dict[K, V]] = (None, {})
        self._lock = threading.Lock()

    def get(self, owner: object, key: K, build: Callable[[], V]) -> V:
        current, values = self._state
        if current is not owner:
            with self._lock:
                if self._state[0] is not owner:
                    self._state = (owner, {})
                current, values = self._state
        found = values.get(key)
        if found is None:
            if self.limit is not None and len(values) >= self.limit:
                values.clear()
            found = values[key] = build()
        return found
