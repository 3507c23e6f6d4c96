"""The admin's sharing-rule editor as typed changes: set (add or replace) and remove a rule.

A sharing rule lives in its role's document (``sharing_rules``, see
schemas/role.schema.json). Like every role edit, the change stores the whole
role; whether the rule is valid (a known entity, fields of it, operators and
values the field's type accepts, a grant of read or update on the entity,
departments that exist) is left to the role schema and the cross-checks every
package passes (engine/metadata/_sharing_checks.py), so the editor can never
store a rule the loader would refuse.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.configure.workspace import ChangeRefused, Workspace
from engine.messages import M

RULES = "sharing_rules"


def _rules(ws: Workspace, role: str, subject: str) -> tuple[dict[str, Any], list[Any]]:
    doc = ws.get("role", role, subject=subject)
    return doc, list(doc.get(RULES) or [])


def _index(rules: list[Any], name: str) -> int | None:
    return next((i for i, r in enumerate(rules)
                 if isinstance(r, Mapping) and r.get("name") == name), None)


@dataclass(frozen=True)
class SetSharingRule:
    """Add a sharing rule to a role, or replace the rule called ``replaces``.

    ``rule`` is the rule's document as the role file holds it (name, description,
    entity, where, access, departments).
    """

    role: str
    rule: Mapping[str, Any]
    replaces: str | None = None

    @property
    def subject(self) -> str:
        return f"role {self.role}"

    @property
    def focus(self) -> str | None:
        name = self.rule.get("name")
        return name if isinstance(name, str) else None

    def summary(self) -> str:
        return M("set sharing rule %(rule)s of role %(role)s", rule=self.rule.get("name"),
                 role=self.role)

    def apply(self, ws: Workspace) -> None:
        doc, rules = _rules(ws, self.role, self.subject)
        name = self.rule.get("name")
        taken = _index(rules, name) if isinstance(name, str) else None
        rule = copy.deepcopy(dict(self.rule))
        if self.replaces is None:
            if taken is not None:
                raise ChangeRefused(self.subject, {"name": M(
                    "role %(role)s already has a sharing rule %(rule)s",
                    role=self.role, rule=name)})
            rules.append(rule)
        else:
            at = _index(rules, self.replaces)
            if at is None:
                raise ChangeRefused(self.subject, {"": M(
                    "role %(role)s has no sharing rule %(rule)s", role=self.role,
                    rule=self.replaces)})
            if taken is not None and taken != at:
                raise ChangeRefused(self.subject, {"name": M(
                    "role %(role)s already has a sharing rule %(rule)s",
                    role=self.role, rule=name)})
            rules[at] = rule
        doc[RULES] = rules


@dataclass(frozen=True)
class RemoveSharingRule:
    """Remove one sharing rule of a role (its holders stop seeing what it shared)."""

    role: str
    name: str

    @property
    def subject(self) -> str:
        return f"role {self.role}"

    focus = None

    def summary(self) -> str:
        return M("remove sharing rule %(rule)s of role %(role)s", rule=self.name, role=self.role)

    def apply(self, ws: Workspace) -> None:
        doc, rules = _rules(ws, self.role, self.subject)
        at = _index(rules, self.name)
        if at is None:
            raise ChangeRefused(self.subject, {"": M(
                "role %(role)s has no sharing rule %(rule)s", role=self.role, rule=self.name)})
        del rules[at]
        if rules:
            doc[RULES] = rules
        else:
            doc.pop(RULES, None)
