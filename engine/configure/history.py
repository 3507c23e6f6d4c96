"""Who changed what metadata, when: the applied versions, newest first.

Every applied version is one row of ``tp_metadata_version`` with its time, who
applied it and its plan; a change made in the admin area also keeps a note
(the change, its summary, the user and the customisations it stored). CLI
migrations show up too, so the list is the whole story of the metadata.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine

from engine.storage import plan as plan_module
from engine.storage.applied import metadata_history


@dataclass(frozen=True)
class HistoryEntry:
    """One applied metadata version, as a line of the admin's history list."""

    version: int
    at: dt.datetime
    by: str
    user_id: int | None
    summary: str
    steps: tuple[str, ...]
    customisations: tuple[str, ...]


def _step_classes() -> dict[str, type[plan_module.Step]]:
    found: dict[str, type[plan_module.Step]] = {}
    pending = list(plan_module.Step.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.kind] = cls
        pending += cls.__subclasses__()
    return found


def describe_step(data: Mapping[str, Any]) -> str:
    """A stored plan step (JSON) back in the words the plan used when it was shown."""
    cls = _step_classes().get(str(data.get("kind")))
    if cls is None:
        return str(data.get("kind", "step"))
    try:
        step = cls(**{f.name: _tuples(data[f.name]) for f in fields(cls)})
    except (KeyError, TypeError):
        return cls.kind.replace("_", " ")
    return step.describe()


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def config_history(engine: Engine, *, limit: int = 100) -> list[HistoryEntry]:
    """The last ``limit`` applied versions, newest first."""
    with engine.connect() as conn:
        versions = metadata_history(conn)
    entries = []
    for version in reversed(versions[-limit:] if limit else versions):
        plan = dict(version.plan or {})
        note = dict(plan.get("note") or {})
        steps = tuple(describe_step(s) for s in plan.get("steps") or ())
        summary = str(note.get("summary") or (f"{len(steps)} step(s) applied by "
                                              f"{version.applied_by or 'unknown'}"))
        entries.append(HistoryEntry(
            version=version.id, at=version.applied_at, by=version.applied_by or "",
            user_id=note.get("user_id"), summary=summary, steps=steps,
            customisations=tuple(note.get("customisations") or ())))
    return entries
