"""Cyclic garbage collection paused while a bulk write builds its rows.

A 5,000-row batch allocates a few hundred thousand dicts, tuples and events. On
Python 3.11 every few hundred allocations start a collection, and the older
generations' collections walk every live object of the process (registry,
caches, the caller's payloads): 10-15 % of a bulk create's CPU in bench_bulk.
Reference counting still frees everything a batch drops; only cycles wait, and
the pause ends with the batch. The pause is process-wide (the collector is), so
overlapping pauses from several threads are counted and collection resumes when
the last one ends, and only if it was enabled before the first one began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.resume = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                self.resume = gc.isenabled()
                gc.disable()
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and self.resume:
                    gc.enable()


#: ``with paused_collection(): ...`` -- no cyclic collection inside (see the module doc).
paused_collection = _Pause()
