"""The create events of a bulk insert, built without the dataclass's per-field setattr,
are the very events ``WriteEvent(...)`` gives, frozen alike."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from engine.actor import Actor
from engine.records.events import CREATE, BatchEvent, WriteEvent, creations


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


def test_creations_set_every_field_the_constructor_would() -> None:
    """``creations`` fills each event's ``__dict__`` by hand: a field it leaves out (one
    with a default would even read as the class's default), slots or a ``__post_init__``
    would make bulk-created events differ from ``WriteEvent(...)`` silently."""
    (event,) = creations("customer", [7], [{"id": 7}], actor=Actor.system("bench"),
                         via=None, at=datetime(2026, 11, 30, tzinfo=UTC))
    assert set(vars(event)) == {f.name for f in dataclasses.fields(WriteEvent)}
    assert "__slots__" not in vars(WriteEvent)
    assert not hasattr(WriteEvent, "__post_init__")


def test_a_batch_tells_one_records_values_after_as_its_expanded_event_does() -> None:
    rows = [{"id": 5, "owner_id": 2, "pool_id": None, "version": 3},
            {"id": 9, "owner_id": 2, "pool_id": None, "version": 1}]
    converted: list[int] = []

    def to_values(row: dict[str, object]) -> dict[str, object]:
        converted.append(int(row["id"]))  # type: ignore[call-overload]
        return dict(row)

    batch = BatchEvent(entity="customer", kind="assign", record_ids=(5, 9),
                       actor=Actor.system("rule"), before={"owner_id": 2, "pool_id": None},
                       after={"owner_id": None, "pool_id": "customer_pool"}, via="rule",
                       at=datetime(2026, 11, 30, tzinfo=UTC), rows=rows, to_values=to_values)
    assert batch.after_of(9) == {"id": 9, "owner_id": None, "pool_id": "customer_pool",
                                 "version": 2}
    assert converted == [9]  # only the record asked for
    assert batch.after_of(4) is None
    assert [batch.after_of(e.record_id) for e in batch.events()] == \
        [e.after for e in batch.events()]
