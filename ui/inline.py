"""Hot reads on SQLite run on the event loop, bounded; anything more goes to a thread.

A rep's list page or point read on SQLite is one statement of a fraction of a
millisecond plus the Python that shapes its rows. Handed to a request thread
(``ui/threads.py``), it paid more for the hop than for the work: the wake-ups,
and above all the GIL passed back and forth between the thread and the event
loop at every row SQLite steps (its driver releases the GIL per step). Measured
with wrk, 8 keep-alive clients, one worker, 100,000 customers (bench/RESULTS.md,
"API reads on the event loop"): 1.07-1.28 ms of server CPU per list page through
the thread, 0.73 ms on the loop; a point read 0.39-0.40 against 0.23 ms.

A read runs on the loop only while it cannot block it for long:

- the database is SQLite with a statement timeout (``budget_applies``), and every
  statement in the block is cut at ``INLINE_BUDGET`` (``statement_budget``, by the
  same progress handler that enforces the timeout);
- the token answers from the process's cache with no database work and no
  last-use write (``CredentialCache.answers_from_memory``): a write may wait for
  SQLite's write lock;
- no cache is due to read its version stamp (``versions.stamps_from_memory``): a
  changed stamp can bring a reload of the registry or the policy, which is long.

When any of these does not hold, the read raises (``StatementTimeoutError`` from
the budget, ``WorkDeferred`` from a stamp) before it has changed anything, and the
same call runs again in a request thread under the full statement timeout. The
Python work after the statement is bounded by the page size (``MAX_LIMIT``).
PostgreSQL reads always take the thread: their statement waits on the network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine

from engine.errors import StatementTimeoutError, WorkDeferred
from engine.permissions.versions import stamps_from_memory
from engine.storage.database import budget_applies, statement_budget
from engine.storage.direct import kept_connection
from ui.threads import in_thread

#: Seconds a statement may run on the event loop before it is stopped and the read
#: moves to a thread: ~100x a 50-row page's statement at 100,000 rows (0.2 ms), so a
#: rep's list never hits it, while a scan (a broad search) costs the loop at most this.
INLINE_BUDGET = 0.02

_P = ParamSpec("_P")
_T = TypeVar("_T")


class InlineReads:
    """Runs reads of one engine on the event loop when that is safe (see the module).

    ``retries`` counts reads that started on the loop and finished in a thread
    (observable in tests and benchmarks).
    """

    def __init__(self, engine: Engine, *, budget: float | None = None) -> None:
        self.budget = INLINE_BUDGET if budget is None else budget
        self.enabled = self.budget > 0 and budget_applies(engine)
        self.retries = 0

    async def run(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``func(*args, **kwargs)`` on the loop, bounded; in a thread if it was refused.

        The caller checks ``enabled`` first (it also decides whether the request may
        be read inline at all), so this expects an enabled reader.
        """
        try:
            with statement_budget(self.budget), stamps_from_memory(), kept_connection():
                return func(*args, **kwargs)
        except (StatementTimeoutError, WorkDeferred):
            self.retries += 1
        return await in_thread(func, *args, **kwargs)
