"""Plain timers over many runs: median, p95 and rates, measured in-process."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    name: str
    runs: int
    median_ms: float
    p95_ms: float
    #: the fastest call: what the work costs when a loaded machine lets it run
    best_ms: float = 0.0

    @property
    def per_second(self) -> float:
        return 1000.0 / self.median_ms if self.median_ms else float("inf")


def time_calls(name: str, call: Callable[[], object], *, runs: int = 200,
               warmup: int = 20, budget_s: float = 10.0) -> Timing:
    """Time ``call`` ``runs`` times (after a warm-up), stopping early at ``budget_s``."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
        if time.perf_counter() > deadline and len(samples) >= 10:
            break
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return Timing(name=name, runs=len(samples), median_ms=statistics.median(samples), p95_ms=p95,
                  best_ms=samples[0])


def ratio(engine_timing: Timing, baseline: Timing) -> float:
    return engine_timing.median_ms / baseline.median_ms if baseline.median_ms else float("inf")
