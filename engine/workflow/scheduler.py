"""The rule scheduler inside ``tidepool serve``: run every pool rule on an interval.

A daemon thread wakes every ``interval`` seconds and calls
``engine.workflow.rule_runner.run_rules`` on the current records service
(taken fresh each time, so a metadata change made while serving is picked
up). Several server processes may each run one: the job leases make sure a
rule runs in one process at a time and each record moves once. ``stop()``
wakes the thread and waits for it, so the scheduler ends with the server.
An error in one run is logged and the next run goes ahead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from engine.records.service import RecordService
from engine.workflow.rule_runner import Clock, RunReport, run_rules, utcnow

log = logging.getLogger(__name__)

#: Seconds between runs unless configured (TIDEPOOL_RULES_INTERVAL / --rules-interval).
DEFAULT_INTERVAL = 300.0


class RuleScheduler:
    """Runs the pool rules every ``interval`` seconds in a background thread."""

    def __init__(self, services: Callable[[], RecordService], *,
                 interval: float = DEFAULT_INTERVAL, clock: Clock = utcnow) -> None:
        if interval <= 0:
            raise ValueError("the rule interval must be positive")
        self._services = services
        self.interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0                    # observable in tests and logs
        self.last: RunReport | None = None

    def run_once(self) -> RunReport | None:
        """One run now (what the thread does each interval); errors are logged."""
        try:
            report = run_rules(self._services(), now=self._clock(), clock=self._clock)
        except Exception:
            log.exception("pool rule run failed")
            return None
        self.runs += 1
        self.last = report
        if report.moved:
            log.info("pool rules moved %d record(s)", report.moved)
        return report

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tidepool-rules", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
