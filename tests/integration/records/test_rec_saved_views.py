"""Saved list views: personal or shared, only the owner changes them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from engine.errors import DuplicateError, ForbiddenError, NotFoundError, ValidationError
from engine.permissions.identity import create_user
from engine.records.saved_views import SavedViews
from engine.storage.database import write_transaction
from engine.storage.tables import StorageSchema


@pytest.fixture
def views(db_engine: Engine, schema: StorageSchema) -> SavedViews:
    return SavedViews(db_engine, schema)


def _users(engine: Engine) -> tuple[int, int]:
    with write_transaction(engine) as conn:
        return (create_user(conn, login="ann", display_name="Ann").id,
                create_user(conn, login="bob", display_name="Bob").id)


def test_personal_and_shared_views(db_engine: Engine, views: SavedViews) -> None:
    ann, bob = _users(db_engine)
    mine = views.save(ann, "thing", " Big ones ", {"f.size.gte": ["10"], "sort": ["-size"]})
    shared = views.save(ann, "thing", "Team", {"q": ["x"]}, shared=True)
    assert mine.name == "Big ones" and mine.state == {"f.size.gte": ["10"], "sort": ["-size"]}
    assert [v.name for v in views.visible(ann, "thing")] == ["Big ones", "Team"]
    assert [v.name for v in views.visible(bob, "thing")] == ["Team"]
    assert views.visible(bob, "other") == []
    with pytest.raises(NotFoundError):
        views.get(bob, mine.id)
    assert views.get(bob, shared.id).state == {"q": ["x"]}
    with pytest.raises(ForbiddenError):
        views.delete(bob, shared.id)
    again = views.save(ann, "thing", "Big ones", {"q": ["y"]})
    assert again.id == mine.id and again.state == {"q": ["y"]}  # same name replaces
    with pytest.raises(DuplicateError):
        views.rename(ann, mine.id, "Team")
    views.delete(ann, mine.id)
    assert [v.name for v in views.visible(ann, "thing")] == ["Team"]


def test_view_needs_a_name(db_engine: Engine, views: SavedViews) -> None:
    ann, _ = _users(db_engine)
    with pytest.raises(ValidationError) as exc:
        views.save(ann, "thing", "  ", {})
    assert "name" in exc.value.field_errors


def test_visible_views_are_cached_per_process_until_the_stamp_moves(
        db_url: str, db_engine: Engine, views: SavedViews, schema: StorageSchema) -> None:
    """A list page reads its views from the process's cache; a change made by another
    process (another engine here) shows within the stamp interval, one made by this
    process at once."""
    from engine.records import saved_views
    from engine.storage.database import make_engine

    ann, _ = _users(db_engine)
    other_engine = make_engine(db_url)
    try:
        other = SavedViews(other_engine, schema)
        now = [100.0]
        watch = saved_views._cache_of(other_engine).watch
        watch._monotonic = lambda: now[0]
        assert other.visible(ann, "thing") == []
        views.save(ann, "thing", "Fresh", {"q": ["x"]})
        watch.seen_local_bumps()  # as if the save had been made in another process
        assert other.visible(ann, "thing") == []  # within the interval: the cached list
        now[0] += saved_views.CHECK_INTERVAL
        assert [v.name for v in other.visible(ann, "thing")] == ["Fresh"]
        mine = other.visible(ann, "thing")[0]
        other.rename(ann, mine.id, "Renamed")  # this process's own change: at once
        assert [v.name for v in other.visible(ann, "thing")] == ["Renamed"]
    finally:
        other_engine.dispose()
