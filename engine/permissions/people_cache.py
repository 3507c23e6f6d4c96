"""Who a user id is (login, display name), cached per process and invalidated by stamps.

Every list page names the owners of its rows; reading them was one statement
per page though the names almost never change (issue 13: a list page is its
query plus at most one more). ``PeopleCache`` keeps the people it has read and
trusts them while

- neither the ``org`` stamp (a new user) nor the ``credentials`` stamp (a
  profile edit: ``identity.update_profile``; deactivation, reactivation) has
  moved: the stamps are read at most every ``check_interval`` seconds, in the
  statement a request shares with the other caches (``versions.stamps``), and
  at once after this process bumped either of them;
- the entry is younger than ``ttl`` (a safety net for edits made in SQL by hand).

Ids it has not seen are read in one statement (``directory.people_by_id``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from engine.permissions import versions
from engine.permissions.directory import Person, people_by_id
from engine.permissions.stamp_watch import StampedEntries, StampWatch

#: Seconds between reads of the stamps (as the credential cache: a renamed user's new
#: name shows in every worker within this time).
CHECK_INTERVAL = 0.5
#: How long an entry is trusted even if no stamp moves.
TTL = 60.0
#: People kept before the cache starts over (a bound on memory, not an LRU).
MAX_PEOPLE = 50_000


class PeopleCache:
    """Per-process people by id (see the module docstring).

    Parameters:
        engine: the database holding the users and the stamps.
        check_interval: seconds between reads of the stamps (0: every call).
        ttl: seconds an entry is trusted at most (0: no caching, every call reads).
        monotonic: an injectable clock for tests.
    """

    def __init__(self, engine: Engine, *, check_interval: float = CHECK_INTERVAL,
                 ttl: float = TTL, max_people: int = MAX_PEOPLE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.ttl = ttl
        self.entries: StampedEntries[int, Person | None] = StampedEntries(
            StampWatch(engine, (versions.ORG, versions.CREDENTIALS),
                       check_interval=check_interval, monotonic=monotonic),
            ttl=ttl, max_entries=max_people, monotonic=monotonic)
        self.misses = 0  # statements run (observable in tests)

    @property
    def watch(self) -> StampWatch:
        return self.entries.watch

    def people(self, ids: Iterable[int]) -> dict[int, Person]:
        """The people among ``ids`` (unknown ids are left out)."""
        wanted = {int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)}
        if self.ttl <= 0:
            self.misses += 1 if wanted else 0
            return people_by_id(self.engine, wanted)
        known, missing, since = self.entries.lookup(wanted)
        found = {user_id: person for user_id, person in known.items() if person is not None}
        if missing:
            self.misses += 1
            read = people_by_id(self.engine, missing)
            # an unknown id is remembered as unknown too
            self.entries.store({user_id: read.get(user_id) for user_id in missing},
                               since=since)
            found.update(read)
        return found


_caches: weakref.WeakKeyDictionary[Engine, PeopleCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cached_people(engine: Engine, ids: Iterable[int]) -> dict[int, Person]:
    """``people_by_id`` through the process's cache of ``engine``'s people."""
    cache = _caches.get(engine)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(engine, PeopleCache(engine))
    return cache.people(ids)
