"""StampedEntries: what a per-process cache trusts, and when it starts over."""

from __future__ import annotations

from typing import Any, cast

from engine.permissions.stamp_watch import StampedEntries, StampWatch


class FakeWatch:
    """A watch whose stamp the test moves."""

    def __init__(self) -> None:
        self.stamp = (1,)

    def current(self) -> tuple[int, ...]:
        return self.stamp


def entries(watch: FakeWatch, clock: list[float], **kw: Any) -> StampedEntries[int, str]:
    return StampedEntries(cast(StampWatch, watch), monotonic=lambda: clock[0],
                          **{"ttl": 60.0, "max_entries": 3, **kw})


def test_a_value_read_under_an_old_stamp_is_not_trusted_under_the_new_one() -> None:
    watch, clock = FakeWatch(), [0.0]
    cache = entries(watch, clock)
    _, missing, since = cache.lookup([7])  # thread A starts reading user 7
    assert missing == [7]
    watch.stamp = (2,)  # meanwhile 7 is renamed; thread B looks up and starts over
    cache.lookup([8])
    cache.store({7: "old name"}, since=since)  # A's late answer
    found, missing, _ = cache.lookup([7])
    assert found == {} and missing == [7]


def test_entries_expire_and_the_size_bound_starts_over() -> None:
    watch, clock = FakeWatch(), [0.0]
    cache = entries(watch, clock, ttl=10.0)
    _, _, since = cache.lookup([1, 2])
    cache.store({1: "a", 2: "b"}, since=since)
    clock[0] = 9.0
    assert cache.lookup([1, 2])[0] == {1: "a", 2: "b"}
    clock[0] = 10.0
    assert cache.lookup([1])[1] == [1]  # as old as the TTL: read again
    _, _, since = cache.lookup([3, 4])
    cache.store({3: "c", 4: "d"}, since=since)  # 2 + 2 > 3: starts over, keeps the new
    assert len(cache) == 2 and cache.lookup([3, 4])[0] == {3: "c", 4: "d"}
