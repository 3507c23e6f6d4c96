"""Criteria-based sharing rules (declared in roles metadata) as scope branches.

A rule of role R on entity E shares every record of E matching its conditions
with the holders of R (in any domain), or only those whose department is at
or below one of the rule's departments. Like a share, a rule adds rows for
actions the holder already has on E: ``read`` rules for read and export,
``write`` rules for update too (``SHARE_ACTIONS``). Each rule is its own branch
(a UNION arm of its own), so the planner can use an index on the condition's
column instead of an OR across columns.
"""

from __future__ import annotations

from sqlalchemy import Table

from engine.metadata.model import Entity, Registry, SharingRule
from engine.permissions._branch import Branch
from engine.permissions.conditions import conditions_clause
from engine.permissions.org import OrgSnapshot

#: Actions a share or a sharing rule of each access level opens, if the user holds them.
SHARE_ACTIONS = {"read": frozenset({"read", "export"}),
                 "write": frozenset({"read", "export", "update"})}


def rule_applies(rule: SharingRule, *, action: str, org: OrgSnapshot, user_id: int) -> bool:
    """Whether ``rule`` reaches this user for ``action`` (the role is checked by the caller)."""
    if action not in SHARE_ACTIONS[rule.access]:
        return False
    if not rule.departments:
        return True
    dept = org.department_of(user_id)
    if dept is None:
        return False
    codes = {d.code for d in org.ancestors_of(dept.id)}
    return bool(codes & set(rule.departments))


def rule_branches(registry: Registry, *, roles: tuple[str, ...], org: OrgSnapshot,
                  user_id: int, entity: Entity, table: Table, action: str) -> list[Branch]:
    """One branch per sharing rule that shares rows of ``entity`` with this user."""
    found = []
    for role_name in roles:
        role = registry.roles.get(role_name)
        if role is None:
            continue
        for rule in role.sharing_rules:
            if rule.entity != entity.name or not rule_applies(rule, action=action, org=org,
                                                               user_id=user_id):
                continue
            conditions = ", ".join(f"{c.field} {c.op}" + ("" if c.value is None
                                                          else f" {c.value!r}")
                                   for c in rule.where)
            found.append(Branch(
                key=("rule", role.name, rule.name),
                clause=conditions_clause(entity, table.c, rule.where),
                grants=(),
                description=f"it matches sharing rule {rule.name} of role {role.name} "
                            f"({conditions}; {rule.access})"))
    return found
