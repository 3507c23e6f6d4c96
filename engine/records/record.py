"""What the records service returns: a read-only mapping of one row's values."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any


class Record(Mapping[str, Any]):
    """One record: field values keyed by field name, plus system values.

    Values have the Python shapes described in ``coerce`` (money as
    ``{"amount", "currency"}``, geo points as ``{"lat", "lng"}``...). System
    values present depend on the entity's features: ``id``, ``version``,
    ``created_at``, ``updated_at``, ``created_by`` always; ``owner_id``,
    ``pool_id``, ``stage``, ``deleted_at`` when the entity has them. Fields the
    actor may not see are absent.
    """

    __slots__ = ("_entity", "_values")

    def __init__(self, entity: str, values: dict[str, Any]) -> None:
        self._entity = entity
        self._values = values

    @property
    def entity(self) -> str:
        return self._entity

    @property
    def id(self) -> int:
        return int(self._values["id"])

    @property
    def version(self) -> int:
        return int(self._values["version"])

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # Mapping's mixins would go through __getitem__ per key; serialisers and
    # templates iterate whole pages of records, so delegate to the dict.
    def items(self) -> ItemsView[str, Any]:
        return self._values.items()

    def keys(self) -> KeysView[str]:
        return self._values.keys()

    def values(self) -> ValuesView[Any]:
        return self._values.values()

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        return f"Record({self._entity!r}, {self._values!r})"

    def mapping(self) -> Mapping[str, Any]:
        """The values themselves, read-only by contract: a serialiser writing a page
        reads each value once, and a method call per value cost more than the value."""
        return self._values

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the values, e.g. to build an update payload."""
        return dict(self._values)
