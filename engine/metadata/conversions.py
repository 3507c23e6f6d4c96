"""Conversion metadata (schemas/conversion.schema.json) as immutable dataclasses.

A conversion turns one source record into records of one or more target
entities. The loader schema-checks and cross-checks the documents
(``_conversion_checks``); they ride in the registry's canonical document under
``conversions`` and this module turns them into values the engine's converter
(engine/records/conversion.py) and the screens read. Nothing here touches SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.metadata.model import LocalText


@dataclass(frozen=True)
class Mark:
    """How a converted source is marked: a select field's option, or a stage."""

    field: str | None = None
    value: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class Target:
    """One record a conversion makes (or attaches to)."""

    name: str
    entity: str
    label: LocalText = field(default_factory=LocalText)
    optional: bool = False
    selected: bool = True
    #: (target field, source field) pairs
    mapping: tuple[tuple[str, str], ...] = ()
    #: (target field, fixed value) pairs
    constants: tuple[tuple[str, Any], ...] = ()
    #: (target reference field, earlier target name) pairs
    links: tuple[tuple[str, str], ...] = ()
    back_reference: str | None = None
    attach_existing: bool = False

    @property
    def filled_by_engine(self) -> frozenset[str]:
        """Fields the engine sets itself (links, back-reference): not editable on review."""
        names = {f for f, _ in self.links}
        if self.back_reference:
            names.add(self.back_reference)
        return frozenset(names)


@dataclass(frozen=True)
class Conversion:
    """A declared conversion of ``source`` records into ``targets`` (first = main)."""

    name: str
    app: str
    label: LocalText
    source: str
    mark: Mark
    targets: tuple[Target, ...]
    record_field: str | None = None
    record_target: str | None = None

    @property
    def main(self) -> Target:
        return self.targets[0]

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)


def parse_conversion(doc: Mapping[str, Any], *, app: str = "") -> Conversion:
    """A schema-valid conversion document as a ``Conversion``."""
    mark = doc["mark"]
    record = doc.get("record_on_source") or {}
    targets = tuple(
        Target(name=t["name"], entity=t["entity"], label=LocalText.of(t.get("label")),
               optional=bool(t.get("optional", False)), selected=bool(t.get("selected", True)),
               mapping=tuple((t.get("mapping") or {}).items()),
               constants=tuple((t.get("constants") or {}).items()),
               links=tuple((t.get("links") or {}).items()),
               back_reference=t.get("back_reference"),
               attach_existing=bool(t.get("attach_existing", False)))
        for t in doc["targets"])
    return Conversion(name=doc["name"], app=app, label=LocalText.of(doc["label"]),
                      source=doc["source"],
                      mark=Mark(field=mark.get("field"), value=mark.get("value"),
                                stage=mark.get("stage")),
                      targets=targets, record_field=record.get("field"),
                      record_target=record.get("target"))


def conversions_of(document: Mapping[str, Any]) -> dict[str, Conversion]:
    """The conversions of a registry's canonical document (``Registry.document``), by name."""
    apps = document.get("report_apps") or {}
    return {n: parse_conversion(d, app=apps.get(f"conversion:{n}", ""))
            for n, d in (document.get("conversions") or {}).items()}
