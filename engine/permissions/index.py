"""An in-process index of the policy, rebuilt once per policy version.

pycasbin answers one ``enforce`` in 0.1-7 ms and its query APIs scan every rule
in Python, far too slow to ask per row or per list. The index answers "which
(role, domain, scope) grants does user U hold for (entity, action)" in a dict
lookup; it is built from the enforcer's own rule lists, so it cannot disagree
with ``enforce`` (a test checks that across a whole matrix).

``PolicyCache`` holds one ``PolicyState`` (enforcer, index, org snapshot) per
process and rebuilds it when the ``policy`` or ``org`` stamp moves, checking
the stamps at most every ``check_interval`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import casbin
from sqlalchemy import Connection, Engine, select

from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions.org import OrgCache, OrgSnapshot
from engine.permissions.policy_store import (
    FIELD_SCOPE,
    HIDE,
    READONLY,
    new_enforcer,
    subject,
    user_of,
)


@dataclass(frozen=True)
class Grant:
    """One way a user holds an action on an entity: through ``role`` bound in ``domain``."""

    role: str
    domain: str
    scope: str

    def describe(self) -> str:
        return f"role {self.role} ({self.domain}) with scope {self.scope}"


@dataclass(frozen=True)
class PolicyIndex:
    """Lookups built from the rule lists of one policy version.

    Role templates are indexed by (role, entity, action) and users' bindings by
    user; a user's grants for one (entity, action) are resolved from the two on
    first use and kept. Building is linear in the number of rules (a few ms for
    a thousand users), not in users x grants: materialising every user's grants
    up front cost 150 ms per policy change at 1,000 users (bench_permissions).
    """

    templates: dict[tuple[str, str, str], tuple[tuple[str, str], ...]] = field(
        default_factory=dict)   # (role, entity, action) -> ((domain pattern, scope), ...)
    bindings: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    role_actions: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    role_hidden: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    role_readonly: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    _resolved: dict[tuple[int, str, str], tuple[Grant, ...]] = field(
        default_factory=dict, repr=False, compare=False)

    def grants_for(self, user_id: int, entity: str, action: str) -> tuple[Grant, ...]:
        key = (user_id, entity, action)
        found = self._resolved.get(key)
        if found is None:
            grants: dict[Grant, None] = {}
            for role, domain in self.bindings.get(user_id, ()):
                for pattern, scope in self.templates.get((role, entity, action), ()):
                    if pattern in ("*", domain):
                        grants[Grant(role=role, domain=domain, scope=scope)] = None
            found = self._resolved[key] = tuple(grants)
        return found

    def roles_of(self, user_id: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys(role for role, _ in self.bindings.get(user_id, ())))

    def pool_domains_of(self, user_id: int) -> frozenset[str]:
        return frozenset(d[5:] for _, d in self.bindings.get(user_id, ()) if d.startswith("pool:"))


def build_index(p_rules: list[list[str]], g_rules: list[list[str]], *,
                inactive: frozenset[int] = frozenset()) -> PolicyIndex:
    """Index p rules (role templates) by role, and g rules (bindings) by user.

    Only literal domains are supported in bindings and ``*`` or literal ones in
    role templates, which is all this engine writes. Inactive users hold nothing.
    """
    templates: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    actions: dict[tuple[str, str], set[str]] = defaultdict(set)
    hidden: dict[tuple[str, str], set[str]] = defaultdict(set)
    readonly: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in p_rules:
        role, dom, obj, act, scope = (list(rule) + [""] * 5)[:5]
        if scope == FIELD_SCOPE:
            entity, _, field_name = obj.partition(".")
            (hidden if act == HIDE else readonly if act == READONLY else {})[
                (role, entity)].add(field_name)
            continue
        if (dom, scope) not in templates[(role, obj, act)]:
            templates[(role, obj, act)].append((dom, scope))
        actions[(role, obj)].add(act)
    bindings: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for rule in g_rules:
        user_id = user_of(rule[0])
        if user_id is None or user_id in inactive or len(rule) < 3:
            continue
        bindings[user_id].append((rule[1], rule[2]))
    return PolicyIndex(
        templates={k: tuple(v) for k, v in templates.items()},
        bindings={u: tuple(v) for u, v in bindings.items()},
        role_actions={k: frozenset(v) for k, v in actions.items()},
        role_hidden={k: frozenset(v) for k, v in hidden.items()},
        role_readonly={k: frozenset(v) for k, v in readonly.items()},
    )


@dataclass(frozen=True)
class PolicyState:
    """Everything a permission decision reads, consistent with one pair of stamps."""

    policy_version: int
    org_version: int
    enforcer: casbin.Enforcer
    index: PolicyIndex
    org: OrgSnapshot

    def enforce(self, user_id: int, domain: str, entity: str, action: str) -> bool:
        """Casbin's own answer: may the user do ``action`` on ``entity`` within ``domain``."""
        return bool(self.enforcer.enforce(subject(user_id), domain, entity, action))


def load_state(conn: Connection, *, org_cache: OrgCache | None = None,
               stamps: dict[str, int] | None = None) -> PolicyState:
    """The state at ``stamps`` (read now if not given)."""
    stamps = versions.current_all(conn) if stamps is None else stamps
    enforcer = new_enforcer(conn)
    inactive = frozenset(int(i) for i in conn.execute(
        select(t.user.c.id).where(t.user.c.active.is_(False))).scalars())
    index = build_index(enforcer.get_policy(), enforcer.get_grouping_policy(), inactive=inactive)
    org_version = stamps.get(versions.ORG, 0)
    org = (org_cache or OrgCache()).get(conn, version=org_version)
    return PolicyState(policy_version=stamps.get(versions.POLICY, 0), org_version=org_version,
                       enforcer=enforcer, index=index, org=org)


class PolicyCache:
    """One ``PolicyState`` per process, reloaded when another process changes the policy.

    The stamps are read at most every ``check_interval`` seconds (0: on every
    call); ``refresh()`` forces a check, e.g. right after a local change.
    """

    def __init__(self, engine: Engine, *, check_interval: float = 2.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.check_interval = check_interval
        self._monotonic = monotonic
        self._state: PolicyState | None = None
        self._checked_at = float("-inf")
        self._org_cache = OrgCache()
        self._lock = threading.Lock()
        self.reloads = 0  # how many times the state was rebuilt (observable in tests)
        self.stamps: dict[str, int] = {}  # as last read (the share stamp is read from here)

    def state(self) -> PolicyState:
        now = self._monotonic()
        state = self._state
        if state is not None and now - self._checked_at < self.check_interval:
            return state
        return self._check(fresh=False)

    def refresh(self) -> PolicyState:
        """Read the stamps now and rebuild if either moved."""
        return self._check(fresh=True)

    def _check(self, *, fresh: bool) -> PolicyState:
        with self._lock:
            # One statement, shared within a request unless ``fresh``.
            stamps = versions.stamps(self.engine, fresh=fresh)
            self.stamps = stamps
            state = self._state
            if (state is None or state.policy_version != stamps.get(versions.POLICY, 0)
                    or state.org_version != stamps.get(versions.ORG, 0)):
                with self.engine.connect() as conn:
                    stamps = versions.current_all(conn)  # read with the state it loads
                    state = load_state(conn, org_cache=self._org_cache, stamps=stamps)
                self._state = state
                self.reloads += 1
            self._checked_at = self._monotonic()
            return state
