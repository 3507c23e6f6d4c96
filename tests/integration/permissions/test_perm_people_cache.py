"""The per-process people cache (engine/permissions/people_cache.py): names without a
statement once read, a profile edit or a new user seen by another process within the
stamp interval, and by this process at once."""

from __future__ import annotations

from sqlalchemy import Engine, update

from engine.permissions import _tables as t
from engine.permissions.identity import create_user, update_profile
from engine.permissions.people_cache import PeopleCache
from engine.storage.database import write_transaction


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _user(engine: Engine, login: str) -> int:
    with write_transaction(engine) as conn:
        return create_user(conn, login=login, display_name=login.title()).id


def test_names_are_read_once_then_follow_the_stamps(ident_engine: Engine) -> None:
    ann, bob = _user(ident_engine, "ann"), _user(ident_engine, "bob")
    clock = Clock()
    cache = PeopleCache(ident_engine, check_interval=0.5, monotonic=clock)
    found = cache.people([ann, bob, 999_999])
    assert {k: p.display_name for k, p in found.items()} == {ann: "Ann", bob: "Bob"}
    assert cache.people([ann, bob, 999_999]).keys() == {ann, bob}
    assert cache.misses == 1  # the unknown id is remembered too: no second statement

    # Another process renames Ann (bumping the credentials stamp): seen after the interval.
    with write_transaction(ident_engine) as conn:
        update_profile(conn, ann, display_name="Ann Renamed")
    # as if another process had made the change: this one has not bumped anything
    cache.watch.seen_local_bumps()
    assert cache.people([ann])[ann].display_name == "Ann"  # within the interval
    clock.now += 0.5
    assert cache.people([ann])[ann].display_name == "Ann Renamed"
    # A new user (org stamp) is found; an id unknown before is read again.
    carl = _user(ident_engine, "carl")
    assert cache.people([carl])[carl].display_name == "Carl"


def test_this_processs_own_changes_show_at_once(ident_engine: Engine) -> None:
    ann = _user(ident_engine, "dora")
    clock = Clock()
    cache = PeopleCache(ident_engine, check_interval=60, monotonic=clock)
    assert cache.people([ann])[ann].display_name == "Dora"
    with write_transaction(ident_engine) as conn:
        update_profile(conn, ann, display_name="Dora Two")
    assert cache.people([ann])[ann].display_name == "Dora Two"  # no time has passed


def test_an_edit_behind_the_engines_back_shows_after_the_ttl(ident_engine: Engine) -> None:
    eve = _user(ident_engine, "eve")
    clock = Clock()
    cache = PeopleCache(ident_engine, check_interval=0.5, ttl=10, monotonic=clock)
    assert cache.people([eve])[eve].display_name == "Eve"
    with write_transaction(ident_engine) as conn:  # no stamp moves
        conn.execute(update(t.user).where(t.user.c.id == eve).values(display_name="Eve SQL"))
    clock.now += 1
    assert cache.people([eve])[eve].display_name == "Eve"
    clock.now += 10
    assert cache.people([eve])[eve].display_name == "Eve SQL"
    no_cache = PeopleCache(ident_engine, ttl=0)
    assert no_cache.people([eve])[eve].display_name == "Eve SQL" and no_cache.misses == 1


def test_a_page_reads_only_its_own_people_however_many_users_there_are(
        ident_engine: Engine) -> None:
    """Many users (500 here; the same holds for 10^4): a page asking for three names
    reads those three, in one statement bound to them, and after a stamp moves again
    only the ids asked for -- never the whole user table."""
    from sqlalchemy import event

    with write_transaction(ident_engine) as conn:
        ids = [create_user(conn, login=f"many{n}", display_name=f"Many {n}").id
               for n in range(500)]
    bound: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "display_name" in statement:
            bound.append(len(parameters))

    event.listen(ident_engine, "before_cursor_execute", count)
    try:
        clock = Clock()
        cache = PeopleCache(ident_engine, check_interval=0.5, monotonic=clock)
        page = [ids[7], ids[300], ids[499]]
        assert {p.display_name for p in cache.people(page).values()} == \
            {"Many 7", "Many 300", "Many 499"}
        assert bound == [3] and cache.misses == 1
        assert len(cache.entries) == 3  # nothing else was loaded
        cache.people(page)
        assert bound == [3]  # cached per id
        # a new user moves the org stamp: the next page reads its own ids again, only them
        _user(ident_engine, "newcomer")
        cache.watch.seen_local_bumps()
        clock.now += 0.5
        bound.clear()  # (creating the user read one row)
        cache.people([ids[1], ids[2]])
        assert bound == [2] and len(cache.entries) == 2
    finally:
        event.remove(ident_engine, "before_cursor_execute", count)
