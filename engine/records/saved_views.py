"""Saved list views: named list states, personal or shared.

A view stores the list screen's query parameters (``{"param": ["value", ...]}``),
not rows; opening one runs the list through the records service as whoever
opens it, so a shared view never shows anyone more than their permissions do.
Only the owner may change or delete a view; a shared view is visible to every
user who may read the entity.

Every list page shows the views it may open: ``visible`` answers from a
per-process cache that any change empties through the ``views`` stamp (read at
most every half second, at once after a change in this process), so the list
page spends no statement on them (issue 13).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update

from engine.errors import DuplicateError, ForbiddenError, NotFoundError, ValidationError
from engine.messages import M
from engine.permissions import versions
from engine.permissions.stamp_watch import StampedEntries, StampWatch
from engine.storage.database import write_transaction
from engine.storage.tables import StorageSchema
from engine.storage.view_tables import SAVED_VIEW_TABLE

MAX_NAME = 100
MAX_PARAMS = 100
#: Seconds between reads of the ``views`` stamp (a view saved in another worker
#: appears in this one's lists within this time).
CHECK_INTERVAL = 0.5
#: How long cached views are trusted even if the stamp never moves.
TTL = 60.0
#: (user, entity) pairs kept before the cache starts over.
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class SavedView:
    id: int
    owner_id: int
    entity: str
    name: str
    shared: bool
    state: dict[str, list[str]]


def _view(row: Any) -> SavedView:
    return SavedView(id=int(row.id), owner_id=int(row.owner_id), entity=row.entity,
                     name=row.name, shared=bool(row.shared),
                     state={str(k): [str(v) for v in vs] for k, vs in (row.state or {}).items()})


def _check(name: str, state: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, list[str]]]:
    clean = name.strip() if isinstance(name, str) else ""
    errors = {}
    if not clean or len(clean) > MAX_NAME:
        errors["name"] = M("required, at most %(max_name)s characters", max_name=MAX_NAME)
    values = {str(k): [str(v) for v in vs] for k, vs in state.items()}
    if sum(len(vs) for vs in values.values()) > MAX_PARAMS:
        errors["state"] = M("at most %(max_params)s parameters", max_params=MAX_PARAMS)
    if errors:
        raise ValidationError("saved_view", errors)
    return clean, values


class SavedViews:
    """The saved views of one database."""

    def __init__(self, engine: Engine, schema: StorageSchema) -> None:
        self.engine = engine
        self.table = schema.system[SAVED_VIEW_TABLE]

    def visible(self, user_id: int, entity: str) -> list[SavedView]:
        """The user's own views of the entity, then those others share, by name
        (from the process's cache; a copy of the list)."""
        return list(_cache_of(self.engine).visible(self, user_id, entity))

    def read_visible(self, user_id: int, entity: str) -> list[SavedView]:
        """``visible`` read from the database."""
        t = self.table
        stmt = select(t).where(t.c.entity == entity,
                               or_(t.c.owner_id == user_id, t.c.shared.is_(True))) \
            .order_by((t.c.owner_id != user_id), t.c.name, t.c.id)
        with self.engine.connect() as conn:
            return [_view(r) for r in conn.execute(stmt)]

    def get(self, user_id: int, view_id: int) -> SavedView:
        """A view the user owns or that is shared; ``NotFoundError`` otherwise."""
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(
                t.c.id == view_id, or_(t.c.owner_id == user_id, t.c.shared.is_(True)))).first()
        if row is None:
            raise NotFoundError("saved_view", view_id)
        return _view(row)

    def save(self, user_id: int, entity: str, name: str, state: Mapping[str, Sequence[str]],
             *, shared: bool = False) -> SavedView:
        """Create the user's view ``name`` of the entity, or replace it if it exists."""
        clean, values = _check(name, state)
        t = self.table
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            existing = conn.execute(select(t.c.id).where(
                t.c.owner_id == user_id, t.c.entity == entity, t.c.name == clean)).scalar()
            if existing is None:
                view_id = conn.execute(insert(t).values(
                    owner_id=user_id, entity=entity, name=clean, shared=shared, state=values,
                    created_at=now, updated_at=now).returning(t.c.id)).scalar_one()
            else:
                view_id = existing
                conn.execute(update(t).where(t.c.id == existing).values(
                    shared=shared, state=values, updated_at=now))
            _changed(conn)
            return _view(conn.execute(select(t).where(t.c.id == view_id)).one())

    def rename(self, user_id: int, view_id: int, name: str) -> SavedView:
        view = self._own(user_id, view_id)
        clean, _ = _check(name, {})
        t = self.table
        with write_transaction(self.engine) as conn:
            taken = conn.execute(select(t.c.id).where(
                t.c.owner_id == user_id, t.c.entity == view.entity, t.c.name == clean,
                t.c.id != view_id)).scalar()
            if taken is not None:
                raise DuplicateError("saved_view", key="name", fields=("name",),
                                     values={"name": clean}, existing_id=taken)
            conn.execute(update(t).where(t.c.id == view_id).values(
                name=clean, updated_at=datetime.now(UTC)))
            _changed(conn)
        return self.get(user_id, view_id)

    def delete(self, user_id: int, view_id: int) -> None:
        self._own(user_id, view_id)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(self.table).where(self.table.c.id == view_id))
            _changed(conn)

    def _own(self, user_id: int, view_id: int) -> SavedView:
        view = self.get(user_id, view_id)
        if view.owner_id != user_id:
            raise ForbiddenError("saved_view", "change", M("only its owner may change a view"))
        return view


def _changed(conn: Connection) -> None:
    """Every process's cached views start over (in the change's own transaction)."""
    versions.bump(conn, versions.VIEWS)


class _VisibleCache:
    """``visible`` by (user, entity), per engine, valid while the ``views`` stamp holds."""

    def __init__(self, engine: Engine) -> None:
        self.entries: StampedEntries[tuple[int, str], list[SavedView]] = StampedEntries(
            StampWatch(engine, (versions.VIEWS,), check_interval=CHECK_INTERVAL),
            ttl=TTL, max_entries=MAX_ENTRIES)

    @property
    def watch(self) -> StampWatch:
        return self.entries.watch

    def visible(self, views: SavedViews, user_id: int, entity: str) -> list[SavedView]:
        key = (user_id, entity)
        found, _, since = self.entries.lookup((key,))
        if key in found:
            return found[key]
        read = views.read_visible(user_id, entity)
        self.entries.store({key: read}, since=since)
        return read


_caches: weakref.WeakKeyDictionary[Engine, _VisibleCache] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _cache_of(engine: Engine) -> _VisibleCache:
    cache = _caches.get(engine)
    if cache is None:
        with _lock:
            cache = _caches.setdefault(engine, _VisibleCache(engine))
    return cache
