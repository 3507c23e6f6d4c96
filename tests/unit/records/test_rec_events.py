"""The create events of a bulk insert, built without the dataclass's per-field setattr,
are the very events ``WriteEvent(...)`` gives, frozen alike."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from engine.actor import Actor
from engine.records.events import CREATE, WriteEvent, creations


def test_creations_equal_the_events_the_constructor_builds() -> None:
    actor = Actor.system("bench")
    at = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    afters = [{"id": 7, "name": "a", "owner_id": None}, {"id": 8, "name": "b", "owner_id": 3}]
    built = creations("customer", [7, 8], afters, actor=actor, via="import:1", at=at)
    expected = [WriteEvent(entity="customer", record_id=i, kind=CREATE, actor=actor,
                           before=None, after=a, via="import:1", at=at)
                for i, a in zip([7, 8], afters)]
    assert built == expected
    assert [dataclasses.asdict(e) for e in built] == [dataclasses.asdict(e) for e in expected]
    assert built[1].changed("owner_id") and not built[0].changed("owner_id")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].kind = "update"  # type: ignore[misc]
