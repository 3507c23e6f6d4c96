"""Whether some version stamps moved: what a per-process cache checks before trusting itself.

A cache keyed by stamps (the people cache, the saved views) must not read them
on every call, or it costs the statement it saves. ``StampWatch`` reads them at
most every ``check_interval`` seconds, through ``versions.stamps`` (the one
statement a request shares with the other caches), and at once when this
process has bumped one of them since (``versions.local_bumps``), so a user
sees their own change on the next page and other processes within the interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import Engine

from engine.permissions import versions


class StampWatch:
    """The current values of ``names`` (a tuple), read as the module docstring says."""

    def __init__(self, engine: Engine, names: Sequence[str], *, check_interval: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.names = tuple(names)
        self.check_interval = check_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] = ()
        self._bumps: tuple[int, ...] = ()
        self._checked_at = float("-inf")

    def current(self) -> tuple[int, ...]:
        bumps = tuple(versions.local_bumps(name) for name in self.names)
        if bumps == self._bumps and self._monotonic() - self._checked_at < self.check_interval:
            return self._stamp
        with self._lock:
            found = versions.stamps(self.engine, fresh=bumps != self._bumps)
            self._stamp = tuple(found.get(name, 0) for name in self.names)
            self._bumps, self._checked_at = bumps, self._monotonic()
            return self._stamp

    def seen_local_bumps(self) -> None:
        """Take this process's bumps so far as made elsewhere (tests of other processes)."""
        self._bumps = tuple(versions.local_bumps(name) for name in self.names)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class StampedEntries(Generic[K, V]):
    """Values by key that a per-process cache trusts while ``watch``'s stamps hold and
    for at most ``ttl`` seconds (a safety net for changes made in SQL by hand).

    When a stamp moves every entry goes; at ``max_entries`` it starts over (a bound on
    memory, not an LRU). The people cache and the saved views share this shape.
    """

    def __init__(self, watch: StampWatch, *, ttl: float, max_entries: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.watch = watch
        self.ttl = ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._stamp: tuple[int, ...] = ()
        self._entries: dict[K, tuple[V, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K], Generation[K, V]]:
        """The trusted values among ``keys``, the keys to read again (unknown or too
        old), and the generation to pass to ``store`` with what was read for them."""
        stamp = self.watch.current()
        if stamp != self._stamp:
            self._entries, self._stamp = {}, stamp
        now = self._monotonic()
        entries = self._entries
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in keys:
            entry = entries.get(key)
            if entry is None or now - entry[1] >= self.ttl:
                missing.append(key)
            else:
                found[key] = entry[0]
        return found, missing, Generation(entries, now)

    def store(self, values: Mapping[K, V], *, since: Generation[K, V]) -> None:
        """Remember ``values``, read after the ``lookup`` that returned ``since``.

        They go into that lookup's generation: if a stamp moved meanwhile (another
        thread started over), the values read under the old stamp are dropped with it.
        """
        entries = since.entries
        if len(entries) + len(values) > self.max_entries:
            entries.clear()
        for key, value in values.items():
            entries[key] = (value, since.at)


class Generation(NamedTuple, Generic[K, V]):
    """The entries a ``StampedEntries.lookup`` read from, and when."""

    entries: dict[K, tuple[V, float]]
    at: float
