"""Cross-checks of a role's sharing rules against the entities and grants they rely on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.conditions import condition_problem
from engine.metadata.located import LocatedDoc
from engine.metadata.model import FieldType
from engine.metadata.world import World, missing

#: The action a rule's access needs the role itself to hold on the entity.
_NEEDED_ACTION = {"read": "read", "write": "update"}


def sharing_rule_issues(role: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    """Duplicate names, unknown entities and fields, bad conditions, missing grants."""
    names: dict[str, int] = {}
    actions: dict[str, set[str]] = {}
    for grant in role.body.get("grants") or ():
        actions.setdefault(grant["entity"], set()).update(grant["actions"])
    for i, rule in enumerate(role.body.get("sharing_rules") or ()):
        if rule["name"] in names:
            yield role.issue(("sharing_rules", i, "name"),
                             f"duplicate sharing rule name {rule['name']!r} "
                             f"(/sharing_rules/{names[rule['name']]})")
        names.setdefault(rule["name"], i)
        name = rule["entity"]
        entity = world.entities.get(name)
        if entity is None:
            if not world.exists("entity", name):
                yield role.issue(("sharing_rules", i, "entity"),
                                 missing("entity", name, world.entities))
            continue
        if not world.sees(role.app, entity.app):
            yield role.issue(("sharing_rules", i, "entity"),
                             f"entity {name!r} belongs to app {entity.app!r}, which app "
                             f"{role.app!r} does not depend on (add it to depends_on)")
            continue
        needed = _NEEDED_ACTION[rule["access"]]
        if needed not in actions.get(name, set()):
            yield role.issue(("sharing_rules", i, "access"),
                             f"{rule['access']} access needs the role to grant {needed!r} on "
                             f"{name!r} (a rule shares rows, it does not give actions; add a "
                             f"grant, e.g. with scope 'shared')")
        yield from _condition_issues(role, i, rule, entity.body["fields"])


def _condition_issues(role: LocatedDoc, i: int, rule: dict[str, Any],
                      fields: list[dict[str, Any]]) -> Iterator[MetadataIssue]:
    by_name = {f["name"]: f for f in fields}
    for k, cond in enumerate(rule["where"]):
        f = by_name.get(cond["field"])
        if f is None:
            yield role.issue(("sharing_rules", i, "where", k, "field"),
                             missing("field", cond["field"], by_name))
            continue
        options = [o["value"] for o in f.get("options") or ()]
        problem = condition_problem(FieldType(f["type"]), cond["op"], cond.get("value"),
                                    options=options)
        if problem:
            at = "op" if problem.startswith("operator") else "value"
            yield role.issue(("sharing_rules", i, "where", k, at),
                             f"{cond['field']}: {problem}")
