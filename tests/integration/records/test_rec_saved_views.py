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
