"""Who a user may give records to: the owner picker's list.

The records service decides on the written row (engine/records/_scope_checks.py);
this mirrors its rule from the policy state so that a screen offers only owners
the write will accept: yourself for ``own``, the anchor department's people for
``department``, everyone at or below it for ``subtree``, anyone for ``all``.
``pool`` and ``shared`` grants name no owner (a pool grant lets a record go back
to nobody).
"""

from __future__ import annotations

from engine.actor import Actor
from engine.permissions.scopes import CasbinAccessPolicy


def assignable_owners(policy: CasbinAccessPolicy, actor: Actor,
                      entity: str) -> frozenset[int] | None:
    """User ids the actor may give ``entity`` records to; None means anyone."""
    if actor.is_system:
        return None
    if actor.user_id is None:
        return frozenset()
    state = policy.state()
    found: set[int] = set()
    for grant in state.index.grants_for(actor.user_id, entity, "assign"):
        if grant.scope == "all":
            return None
        if grant.scope == "own":
            found.add(actor.user_id)
        elif grant.scope in ("department", "subtree"):
            anchor = (state.org.departments.get(int(grant.domain[5:]))
                      if grant.domain.startswith("dept:")
                      else state.org.department_of(actor.user_id))
            if anchor is not None:
                found |= (state.org.users_in(anchor.id) if grant.scope == "department"
                          else state.org.users_under(anchor.id))
    return frozenset(found)
