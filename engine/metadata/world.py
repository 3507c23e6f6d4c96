"""The merged metadata the cross-checks judge: every document by kind and name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.metadata.located import LocatedDoc
from engine.metadata.model import FieldType


@dataclass
class World:
    """Every merged document by kind, plus what is needed to judge references."""

    entities: dict[str, LocatedDoc] = field(default_factory=dict)
    pipelines: dict[str, LocatedDoc] = field(default_factory=dict)
    pools: dict[str, LocatedDoc] = field(default_factory=dict)
    roles: dict[str, LocatedDoc] = field(default_factory=dict)
    reports: dict[str, LocatedDoc] = field(default_factory=dict)
    dashboards: dict[str, LocatedDoc] = field(default_factory=dict)
    leaderboards: dict[str, LocatedDoc] = field(default_factory=dict)
    conversions: dict[str, LocatedDoc] = field(default_factory=dict)
    #: (kind, name) of documents that exist but failed their schema
    broken: set[tuple[str, str]] = field(default_factory=set)
    #: app -> the apps it depends on, transitively
    ancestors: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def exists(self, kind: str, name: str) -> bool:
        table = {"entity": self.entities, "pipeline": self.pipelines, "pool": self.pools,
                 "role": self.roles, "report": self.reports, "dashboard": self.dashboards,
                 "leaderboard": self.leaderboards, "conversion": self.conversions}[kind]
        return name in table or (kind, name) in self.broken

    def sees(self, app: str, other_app: str) -> bool:
        """Whether ``app`` may name documents of ``other_app`` (itself or a dependency)."""
        return app == other_app or other_app in self.ancestors.get(app, frozenset())

    def entity_problem(self, app: str, name: str) -> str | None:
        """Why a document of ``app`` cannot name entity ``name`` (None: it can; "" when
        the entity is broken, which its own file already reports)."""
        target = self.entities.get(name)
        if target is None:
            return "" if self.exists("entity", name) else missing("entity", name, self.entities)
        if not self.sees(app, target.app):
            return (f"entity {name!r} belongs to app {target.app!r}, which app {app!r} does "
                    "not depend on (add it to depends_on)")
        return None


def missing(kind: str, name: str, known: Iterable[str]) -> str:
    """"no entity 'x'" plus a close match when there is one."""
    message = f"no {kind} {name!r}"
    close = difflib.get_close_matches(name, list(known), n=1)
    return message + (f"; did you mean {close[0]!r}?" if close else "")


def field_types(entity: LocatedDoc) -> dict[str, FieldType]:
    """Field name -> type of a merged entity document."""
    return {f["name"]: FieldType(f["type"]) for f in entity.body["fields"]}
