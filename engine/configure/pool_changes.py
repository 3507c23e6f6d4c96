"""The admin's pool editor as a typed change: members, limits, rules and distribution.

Like every other change it edits the merged pool document in a ``Workspace``;
whether the result is valid (members that exist, limits in range, rule
conditions over real fields, distribution targets that are departments or
users) is left to the pool schema and cross-checks that every package passes,
so the editor can never store a pool the loader would refuse.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.configure.workspace import Workspace

#: The parts of a pool the editor sets; the rest (name, entity, label, touch) stays.
EDITED_PARTS = ("members", "limits", "rules", "distribution")


@dataclass(frozen=True)
class SetPool:
    """Replace a pool's members, limits, rules and distribution (None/empty: remove the part)."""

    name: str
    members: Mapping[str, Any]
    limits: Mapping[str, Any] | None
    rules: Sequence[Mapping[str, Any]]
    distribution: Mapping[str, Any] | None

    @property
    def subject(self) -> str:
        return f"pool {self.name}"

    focus = None

    def summary(self) -> str:
        return (f"set pool {self.name}: members, limits, {len(self.rules)} rule(s), "
                f"distribution {'on' if self.distribution else 'off'}")

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("pool", self.name, subject=self.subject)
        parts: dict[str, Any] = {"members": self.members, "limits": self.limits,
                                 "rules": list(self.rules), "distribution": self.distribution}
        for key, value in parts.items():
            if value:
                doc[key] = copy.deepcopy(value if not isinstance(value, Mapping)
                                         else dict(value))
            elif key != "members":
                doc.pop(key, None)
            else:
                doc[key] = {}
