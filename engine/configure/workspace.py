"""The documents a change edits, and the customisations that store the result.

A change edits the *merged* documents (packages plus what admins changed so
far), as the admin sees them. ``writes()`` then decides how each edited
document is stored: an admin-made entity, pipeline or role as the whole
document; a package's entity or pipeline as one overlay regenerated from the
difference to the package (see ``_overlay_diff``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.configure._overlay_diff import (
    entity_overlay,
    entity_overlay_name,
    pipeline_overlay,
    pipeline_overlay_name,
)
from engine.errors import ValidationError
from engine.messages import M
from engine.metadata.customisation import Customisation
from engine.metadata.model import Registry

_TABLES = {"entity": "entities", "pipeline": "pipelines", "role": "roles", "pool": "pools",
           "dashboard": "dashboards", "report": "reports"}


class ChangeRefused(ValidationError):
    """A configuration change that cannot be made, with a message per form key.

    ``issues`` keeps the loader's issues (customisation file, JSON pointer,
    message) when the change failed the schemas or the cross-checks.
    """

    def __init__(self, subject: str, field_errors: Mapping[str, str], *,
                 issues: Sequence[Any] = ()) -> None:
        super().__init__(subject, field_errors)
        self.issues = tuple(issues)


@dataclass
class Workspace:
    """``base``: the packages alone; ``current``: packages plus ``stored`` customisations."""

    base: Registry
    current: Registry
    stored: Sequence[Customisation]
    edited: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    created: set[tuple[str, str]] = field(default_factory=set)

    def get(self, kind: str, name: str, *, subject: str = "") -> dict[str, Any]:
        """The merged document ``kind``/``name`` to edit in place (ChangeRefused if none)."""
        key = (kind, name)
        if key not in self.edited:
            found = self.current.document.get(_TABLES[kind], {}).get(name)
            if found is None:
                raise ChangeRefused(subject or kind, {"": M("there is no %(kind)s %(name)s",
                                                            kind=kind, name=repr(name))})
            self.edited[key] = _plain(found)
        return self.edited[key]

    def exists(self, kind: str, name: str) -> bool:
        return (kind, name) in self.edited or \
            name in self.current.document.get(_TABLES[kind], {})

    def create(self, kind: str, document: Mapping[str, Any]) -> dict[str, Any]:
        name = document["name"]
        if self.exists(kind, name):
            raise ChangeRefused(kind, {"name": M("%(kind)s %(name)s already exists",
                                                 kind=kind, name=repr(name))})
        key = (kind, name)
        self.edited[key] = _plain(document)
        self.created.add(key)
        return self.edited[key]

    def app_of(self, kind: str, name: str) -> str:
        if kind == "entity":
            return self.base.entities[name].app
        return self.base.pipelines[name].app

    def is_package_owned(self, kind: str, name: str) -> bool:
        """True when a package declares it (stored as an overlay; roles are replaced whole)."""
        if kind not in ("entity", "pipeline") or (kind, name) in self.created:
            return False
        return name in self.base.document.get(_TABLES[kind], {})

    def writes(self, *, subject: str) -> list[Customisation]:
        """The customisations to store, or ChangeRefused naming what cannot be stored."""
        stored = {(c.kind, c.name): c.document for c in self.stored}
        out: list[Customisation] = []
        refusals: dict[str, str] = {}
        for (kind, name), desired in self.edited.items():
            if (kind, name) not in self.created and \
                    desired == _plain(self.current.document[_TABLES[kind]][name]):
                continue
            if self.is_package_owned(kind, name):
                base = self.base.document[_TABLES[kind]][name]
                diff = entity_overlay if kind == "entity" else pipeline_overlay
                naming = entity_overlay_name if kind == "entity" else pipeline_overlay_name
                overlay, refused = diff(_plain(base), desired, app=self.app_of(kind, name))
                refusals.update(refused)
                custom = Customisation("overlay", naming(name), overlay)
            else:
                custom = Customisation(kind, name, desired)
            if stored.get((custom.kind, custom.name)) != custom.document:
                out.append(custom)
        if refusals:
            raise ChangeRefused(subject, refusals)
        if not out:
            raise ChangeRefused(subject, {"": M("this changes nothing")})
        return out


def merged(stored: Sequence[Customisation], writes: Sequence[Customisation]) -> list[Customisation]:
    """``stored`` with ``writes`` in place of the ones of the same kind and name (new ones last),
    which is the order the database will hand them back in."""
    replacing = {(w.kind, w.name): w for w in writes}
    out = [replacing.pop((c.kind, c.name), c) for c in stored]
    return out + list(replacing.values())


def _plain(document: Any) -> Any:
    """A deep, mutable copy (registry documents are read-only mapping proxies)."""
    if isinstance(document, Mapping):
        return {k: _plain(v) for k, v in document.items()}
    if isinstance(document, (list, tuple)):
        return [_plain(v) for v in document]
    return copy.copy(document)
