"""Row scopes compiled to SQLAlchemy clauses: the real ``AccessPolicy``.

Each grant a user holds for (entity, action) becomes one branch; branches are
OR-ed by the records service (a UNION of keyset queries when there are
several). Scopes:

- ``own``: ``owner_id = :uid``
- ``department``: ``owner_id`` among the users of the anchor department
- ``subtree``: ``owner_id`` among the users of departments whose path is in the
  anchor's range (both written per planner, sometimes as several UNION arms:
  ``_owners``)
- ``pool``: ``pool_id IN (:pools) AND owner_id IS NULL``
- ``shared``: ``id IN (shares of this entity to the user or one of their departments,
  unexpired; write access for anything but read/export)``
- ``all``: every row.

The *anchor* of department/subtree is the user's own department for bindings in
``org`` (or ``pool:*``), and department X for a binding in ``dept:X``. Pools for
``pool`` are the entity's pools the user is a member of (by user, role or
department subtree in the registry, or by a ``pool:<name>`` binding); a grant
held through a ``pool:<name>`` binding covers that pool only.

Grants add up: records shared with the user, and records matching a sharing
rule of one of their roles (``sharing_rules``), are added to whatever their
roles grant, as soon as they hold the action on the entity at all (the
``shared`` scope alone means "only what is shared with me"). A read share or
rule opens read and export, a write one also update; never delete, assign or
pool work, which only a grant gives (a grant with scope ``shared`` may give
them on records shared for writing). A share with a department reaches that
department and everything below it.

Compiled branches are memoised per (user, entity, table, action) for one
policy state and registry: building them costs about as much as the query
they filter. The share expiry compares with a bound parameter evaluated at
execution, so a memoised branch never freezes "now".

Entities without an owner (not ``owned``) only know ``all`` and ``shared``: an
``own``/``department``/``subtree`` grant on one yields no rows (the loader
refuses such grants anyway), and ``pool`` needs a pooled entity.

Field permissions also add up: a field is hidden if every role that grants
``read`` on the entity hides it (one role showing it is enough), and read-only
if every role that grants ``update`` or ``create`` marks it read-only or hides
it. With no such role every field is hidden (resp. read-only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    union_all,
)

from engine.access import RowScope
from engine.actor import Actor
from engine.errors import ForbiddenError
from engine.messages import M, Message
from engine.metadata.model import Entity, Registry
from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions._branch import Branch, Explanation
from engine.permissions._clock import utcnow
from engine.permissions._owners import known_members, owner_arms, owner_count, owner_walk
from engine.permissions.index import Grant, PolicyCache, PolicyState
from engine.permissions.org import Department, users_in_department, users_in_subtree
from engine.permissions.sharing_rules import SHARE_ACTIONS, rule_branches

__all__ = ["READ_ACTIONS", "SHARE_ACTIONS", "Branch", "CasbinAccessPolicy", "Explanation"]

#: Actions a read-only share allows; everything else needs a write share.
READ_ACTIONS = frozenset({"read", "export"})
WRITE_ACTIONS = frozenset({"update", "create"})
SHARED_GRANT = Grant(role="", domain="", scope="shared")  # the implicit share branch
#: Memoised branch lists kept per policy state before the memo starts over.
MEMO_LIMIT = 50_000
#: A scope of several arms runs as one walk of the list's sort index, its branches
#: OR-ed, when at least this share of the newest rows is visible: the walk then reads
#: at most page / share rows, less than a keyset query per arm plus their UNION
#: (bench/bench_permissions.py: 1.2x the unscoped page against 1.4-4x for the arms).
WALK_MIN_SHARE = 0.2
#: The newest rows sampled to measure that share, once per (user, entity, action) for
#: a policy state: a stale share costs speed, never rows (both forms are the same set).
WALK_SAMPLE = 256


class _Memo:
    """Compiled branches of one policy state and registry, never of any other."""

    __slots__ = ("entries", "registry", "scopes", "shares", "state")

    def __init__(self, state: PolicyState, registry: Registry,
                 shares: tuple[int, int]) -> None:
        self.state = state
        self.registry = registry
        self.shares = shares  # the share stamp: whether a "shared with me" arm is built
        self.entries: dict[tuple[object, ...], list[Branch]] = {}
        self.scopes: dict[tuple[object, ...], RowScope] = {}


class CasbinAccessPolicy:
    """``engine.access.AccessPolicy`` from Casbin policies, the org tree and shares."""

    def __init__(self, engine: Engine, registry: Registry, *, check_interval: float = 2.0,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.cache = PolicyCache(engine, check_interval=check_interval)
        self.registry = registry
        self._clock = clock
        self._dialect = engine.dialect.name
        self._memo: _Memo | None = None
        #: (share stamp, user id, entity) -> may the user have shares of it
        self._has_shares: dict[tuple[object, ...], bool] = {}

    def set_registry(self, registry: Registry) -> None:
        """Swap in a new registry after a metadata change (pools, fields, rules come from it)."""
        self.registry = registry

    def state(self) -> PolicyState:
        return self.cache.state()

    # --- the AccessPolicy protocol -------------------------------------------------------

    def check_action(self, actor: Actor, entity: Entity, action: str) -> None:
        refusal = self._refusal(actor, entity, action)
        if refusal is not None:
            raise ForbiddenError(entity.name, action, refusal)

    def allows(self, actor: Actor, entity: Entity, action: str) -> bool:
        """``check_action`` as a yes/no, building no exception: screens ask it per button."""
        return self._refusal(actor, entity, action) is None

    def _refusal(self, actor: Actor, entity: Entity, action: str) -> Message | None:
        """Why ``action`` is refused, or None when it is granted."""
        if actor.is_system:
            return None
        if actor.user_id is None:
            return M("not signed in")
        if actor.impersonator_id is not None and action not in READ_ACTIONS:
            # An admin viewing as someone sees what they see and changes nothing in their
            # name: every write would be recorded as the other user's.
            who = actor.login or f"user {actor.user_id}"
            return M("you are viewing as %(who)s, which is read-only", who=who)
        if not self.state().index.grants_for(actor.user_id, entity.name, action):
            return M("none of your roles grants it")
        return None

    def row_scope(self, actor: Actor, entity: Entity, table: Table, action: str) -> RowScope:
        if actor.is_system:
            return RowScope.everything()
        if actor.user_id is None or (actor.impersonator_id is not None
                                     and action not in READ_ACTIONS):
            return RowScope.nothing()
        memo = self._current_memo()
        key = (actor.user_id, entity.name, table, action)
        found = memo.scopes.get(key)
        if found is None:
            found = self._shape(table, self._memo_branches(memo, actor.user_id, entity,
                                                           table, action),
                                sample=action in READ_ACTIONS)
            if len(memo.scopes) >= MEMO_LIMIT:
                memo.scopes.clear()
            memo.scopes[key] = found
        return found

    def hidden_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        if actor.is_system:
            return frozenset()
        return self._field_rule(actor, entity, actions=frozenset({"read"}), readonly=False)

    def readonly_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        if actor.is_system:
            return frozenset()
        return self._field_rule(actor, entity, actions=WRITE_ACTIONS, readonly=True)

    # --- beyond the protocol ---------------------------------------------------------------

    def roles_of(self, user_id: int) -> tuple[str, ...]:
        return self.state().index.roles_of(user_id)

    def actor_for(self, user_id: int, *, login: str = "", locale: str = "en") -> Actor:
        """An Actor carrying the user's roles (for display; decisions read the index)."""
        return Actor(user_id=user_id, login=login, locale=locale, roles=self.roles_of(user_id))

    def enforce(self, user_id: int, domain: str, entity: str, action: str) -> bool:
        """Casbin's own answer for one domain (the index answers across all domains)."""
        return self.state().enforce(user_id, domain, entity, action)

    def member_pools(self, user_id: int, entity: str) -> frozenset[str]:
        """The entity's pools the user works, from the registry and pool bindings."""
        return self._member_pools(self.state(), self.registry, user_id, entity)

    def _member_pools(self, state: PolicyState, registry: Registry, user_id: int,
                      entity: str) -> frozenset[str]:
        roles = set(state.index.roles_of(user_id))
        bound = state.index.pool_domains_of(user_id)
        dept = state.org.department_of(user_id)
        login = state.org.user_login.get(user_id)
        ancestors = {d.code for d in state.org.ancestors_of(dept.id)} if dept else set()
        found = set()
        for pool in registry.pools.values():
            if pool.entity != entity:
                continue
            m = pool.members
            if (pool.name in bound or (login is not None and login in m.users)
                    or roles & set(m.roles) or ancestors & set(m.departments)):
                found.add(pool.name)
        return frozenset(found)

    def branches(self, user_id: int, entity: Entity, table: Table, action: str) -> list[Branch]:
        """The compiled branches for one (user, entity, action), redundant ones dropped.

        Build, then publish under what was read at build time: the state and
        registry are read once, the branches are built from those two and stored
        in the memo that belongs to those two. A thread that reloaded the policy
        meanwhile has published a new memo; what this thread built lands in the
        old one, which nobody reads again, so a memo never holds branches of
        another policy version (a revoked grant cannot outlive the change).
        """
        return list(self._memo_branches(self._current_memo(), user_id, entity, table, action))

    def _current_memo(self) -> _Memo:
        state = self.state()
        registry = self.registry
        shares = self._share_stamp()
        memo = self._memo
        if memo is None or memo.state is not state or memo.registry is not registry \
                or memo.shares != shares:
            memo = _Memo(state, registry, shares)
            self._memo = memo
        return memo

    def _memo_branches(self, memo: _Memo, user_id: int, entity: Entity, table: Table,
                       action: str) -> list[Branch]:
        key = (user_id, entity.name, table, action)
        found = memo.entries.get(key)
        if found is None:
            found = self._branches(memo.state, memo.registry, user_id, entity, table, action)
            if len(memo.entries) >= MEMO_LIMIT:
                memo.entries.clear()
            memo.entries[key] = found
        return found

    def _shape(self, table: Table, branches: list[Branch], *, sample: bool) -> RowScope:
        """The branches as UNION arms, or OR-ed into one walk when many rows are visible.

        Each arm is a keyset query that stops after a page, so arms win when what the
        user sees is rare; when much of the table is visible (a pool, a big subtree, a
        broad sharing rule) one walk of the sort index finds a page after reading
        a few pages' rows, with no UNION, sort or join back. The walk is only taken
        with an owner branch in it: its owner index is hidden (``Branch.walk``), so
        neither planner can turn the OR into index seeks and a sort of every row.
        Only lists sample (read, export): other actions check one row at a time, where
        either shape does.
        """
        arms = tuple(arm for b in branches for arm in b.runs_as)
        if len(branches) == 1 and branches[0].count is not None:
            return RowScope(arms, counting=(branches[0].count,))
        if not sample or len(arms) < 2 or "updated_at" not in table.c \
                or not any(b.walk is not None for b in branches):
            return RowScope(arms)
        # Owner tests last: the cheap column tests settle most rows first.
        ordered = sorted(branches, key=lambda b: b.walk is not None)
        walk = or_(*(b.clause if b.walk is None else b.walk for b in ordered))
        if self._visible_share(table, walk) < WALK_MIN_SHARE:
            return RowScope(arms)
        return RowScope((walk,))

    def _visible_share(self, table: Table, clause: ColumnElement[bool]) -> float:
        """The share of the newest ``WALK_SAMPLE`` rows that ``clause`` lets through."""
        newest = table.alias("newest")
        sample = select(newest.c.id).order_by(newest.c.updated_at.desc(),
                                              newest.c.id.desc()).limit(WALK_SAMPLE)
        with self.cache.engine.connect() as conn:
            seen, visible = conn.execute(
                select(func.count(), func.sum(case((clause, 1), else_=0)))
                .where(table.c.id.in_(sample))).one()
        return (visible or 0) / seen if seen else 0.0

    def _branches(self, state: PolicyState, registry: Registry, user_id: int, entity: Entity,
                  table: Table, action: str) -> list[Branch]:
        grants = state.index.grants_for(user_id, entity.name, action)
        if not grants:
            return []
        if any(g.scope == "all" for g in grants):
            every = [g for g in grants if g.scope == "all"]
            return [Branch(("all",), RowScope.everything().branches[0], tuple(every),
                           "every record")]
        compiled: dict[tuple[object, ...], Branch] = {}
        for grant in grants:
            branch = self._compile(state, registry, user_id, entity, table, action, grant)
            if branch is None:
                continue
            if branch.key in compiled:
                old = compiled[branch.key]
                branch = Branch(old.key, old.clause, old.grants + branch.grants, old.description,
                                old.arms, old.walk, old.count)
            compiled[branch.key] = branch
        if action in SHARE_ACTIONS["write"] and ("shared",) not in compiled \
                and self._may_have_shares(state, user_id, entity):
            compiled[("shared",)] = self._shared(state, user_id, entity, table, action,
                                                 SHARED_GRANT)
        for rule in rule_branches(registry, roles=state.index.roles_of(user_id),
                                  org=state.org, user_id=user_id, entity=entity, table=table,
                                  action=action):
            compiled.setdefault(rule.key, rule)
        return _drop_redundant(state, user_id, list(compiled.values()))

    def why(self, conn: Connection, *, user_id: int, entity: Entity, table: Table,
            record_id: int, action: str) -> Explanation:
        """Which grants let the user ``action`` this record, or why none does."""
        def explain(allowed: bool, granted: tuple[str, ...], reason: str) -> Explanation:
            return Explanation(allowed=allowed, entity=entity.name, record_id=record_id,
                               action=action, granted_by=granted, reason=reason)

        row = conn.execute(select(table).where(table.c.id == record_id)).first()
        if row is None:
            return explain(False, (), M("there is no %(entity)s %(id)s", entity=entity.name,
                                        id=record_id))
        state = self.state()
        roles = state.index.bindings.get(user_id, ())
        if not state.index.grants_for(user_id, entity.name, action):
            held = ", ".join(f"{r} ({d})" for r, d in roles) or "no roles"
            return explain(False, (), M("none of your roles grants %(action)s on %(entity)s "
                                        "(you hold %(held)s)", action=action,
                                        entity=entity.name, held=held))
        granted: list[str] = []
        for branch in self.branches(user_id, entity, table, action):
            hit = conn.execute(select(table.c.id)
                               .where(table.c.id == record_id, branch.clause)).first()
            if hit is not None:
                by = "; ".join(g.describe() for g in branch.grants if g.role)
                granted.append(branch.description + (f" (through {by})" if by else ""))
        if granted:
            return explain(True, tuple(granted), granted[0])
        scopes = sorted({g.scope for g in state.index.grants_for(user_id, entity.name, action)})
        facts = []
        if "owner_id" in table.c:
            owner = row._mapping["owner_id"]
            facts.append(f"it is owned by user {owner}" if owner is not None
                         else "it has no owner")
        if "pool_id" in table.c and row._mapping["pool_id"] is not None:
            facts.append(f"it is in pool {row._mapping['pool_id']}")
        if action in SHARE_ACTIONS["write"]:
            facts.append("it is not shared with you" + (" for writing"
                                                        if action not in READ_ACTIONS else ""))
        else:
            facts.append(f"a share never gives {action}")
        return explain(False, (), f"your roles grant {action} on {entity.name} only with scope "
                                  f"{', '.join(scopes)}, and " + ", ".join(facts))

    # --- compiling ----------------------------------------------------------------------

    def _compile(self, state: PolicyState, registry: Registry, user_id: int, entity: Entity,
                 table: Table, action: str, grant: Grant) -> Branch | None:
        owned = "owner_id" in table.c
        scope = grant.scope
        if scope == "own":
            if not owned:
                return None
            return Branch(("own",), table.c.owner_id == user_id, (grant,), "you own it",
                          walk=(table.c.owner_id + 0) == user_id)
        if scope in ("department", "subtree"):
            anchor = self._anchor(state, user_id, grant)
            if not owned or anchor is None:
                return None
            if scope == "department":
                members = users_in_department(anchor.id)
                owners = state.org.users_in(anchor.id)
                key: tuple[object, ...] = ("department", anchor.id)
                description = f"its owner is in department {anchor.code}"
            else:
                members = users_in_subtree(anchor.path)
                owners = state.org.users_under(anchor.id)
                key = ("subtree", anchor.path)
                description = f"its owner is in department {anchor.code} or below"
            arms = owner_arms(self._dialect, table, owners, members)
            if not arms:
                return None
            # PostgreSQL's walk tests the members as of the state's org snapshot while
            # its stamp holds: taken from the snapshot, so compiling reads nothing.
            known = known_members(state.org, anchor.path, owners) \
                if scope == "subtree" and self._dialect == "postgresql" else None
            return Branch(key, or_(*arms), (grant,), description,
                          arms=arms if len(arms) > 1 else (),
                          walk=owner_walk(self._dialect, table, members, known),
                          count=owner_count(self._dialect, table, owners, members))
        if scope == "pool":
            if not owned or "pool_id" not in table.c:
                return None
            pools = self._member_pools(state, registry, user_id, entity.name)
            if grant.domain.startswith("pool:"):
                pools = pools & {grant.domain[5:]}
            if not pools:
                return None
            names = tuple(sorted(pools))
            # One pool (the usual case) is an equality: an IN list is re-expanded into
            # the SQL on every execution of the cached statement.
            in_pool = table.c.pool_id == names[0] if len(names) == 1 \
                else table.c.pool_id.in_(names)
            return Branch(("pool", names), and_(in_pool, table.c.owner_id.is_(None)), (grant,),
                          f"it is unowned in pool {', '.join(names)} which you work")
        if scope == "shared":
            if not self._may_have_shares(state, user_id, entity):
                return None
            return self._shared(state, user_id, entity, table, action, grant)
        return None

    def _may_have_shares(self, state: PolicyState, user_id: int, entity: Entity) -> bool:
        """Whether any share of ``entity`` names the user or one of their departments.

        Without one, the "shared with me" arm is left out: a scope ``own`` then runs
        as one indexed keyset query instead of a two-arm UNION (issue 13). Checked
        once per user and entity until the share stamp moves (a new share anywhere:
        other processes see it at their next stamp read, this one at once); expired
        shares still count, and the arm's own SQL decides what they show.
        """
        key = (self._share_stamp(), user_id, entity.name)
        found = self._has_shares.get(key)
        if found is None:
            dept = state.org.department_of(user_id)
            named = [t.share.c.user_id == user_id]
            if dept is not None and dept.ancestor_ids:
                named.append(t.share.c.department_id.in_(dept.ancestor_ids))
            with self.cache.engine.connect() as conn:
                found = any(conn.execute(select(t.share.c.id).where(
                    t.share.c.entity == entity.name, grantee).limit(1)).first() is not None
                    for grantee in named)
            if len(self._has_shares) >= MEMO_LIMIT:
                self._has_shares = {}
            self._has_shares[key] = found
        return found

    def _share_stamp(self) -> tuple[int, int]:
        # Keyed by the stamp read before the query: an answer from before a new
        # share lands under the old stamp, which readers of the new one never see.
        return (self.cache.stamps.get(versions.SHARES, 0), versions.local_bumps(versions.SHARES))

    def _anchor(self, state: PolicyState, user_id: int, grant: Grant) -> Department | None:
        if grant.domain.startswith("dept:"):
            return state.org.departments.get(int(grant.domain[5:]))
        return state.org.department_of(user_id)

    def _shared(self, state: PolicyState, user_id: int, entity: Entity, table: Table,
                action: str, grant: Grant) -> Branch:
        dept = state.org.department_of(user_id)
        departments = dept.ancestor_ids if dept else ()
        # Evaluated at execution: the memoised branch must not keep the time it was built.
        now = bindparam("share_now", callable_=self._clock, type_=t.share.c.expires_at.type,
                        unique=True)
        conditions = [t.share.c.entity == entity.name,
                      or_(t.share.c.expires_at.is_(None), t.share.c.expires_at > now)]
        if action not in READ_ACTIONS:
            conditions.append(t.share.c.access == "write")
        # One SELECT per kind of grantee: each seeks its own index (user_id, entity,
        # record_id) or (department_id, ...); an OR of the two scans the share table.
        to_user = select(t.share.c.record_id).where(t.share.c.user_id == user_id, *conditions)
        shared_ids: Any = to_user if not departments else union_all(
            to_user, select(t.share.c.record_id).where(
                t.share.c.department_id.in_(departments), *conditions))
        return Branch(("shared",), table.c.id.in_(shared_ids), (grant,), "it is shared with you")

    def _field_rule(self, actor: Actor, entity: Entity, *, actions: frozenset[str],
                    readonly: bool) -> frozenset[str]:
        every = frozenset(f.name for f in entity.fields)
        if actor.user_id is None:
            return every
        index = self.state().index
        roles = {r for r in index.roles_of(actor.user_id)
                 if index.role_actions.get((r, entity.name), frozenset()) & actions}
        if not roles:
            return every
        result = every
        for role in roles:
            closed = index.role_hidden.get((role, entity.name), frozenset())
            if readonly:
                closed = closed | index.role_readonly.get((role, entity.name), frozenset())
            result = result & closed
        if readonly:
            result = result | self._field_rule(actor, entity, actions=frozenset({"read"}),
                                               readonly=False)
        return result


def _drop_redundant(state: PolicyState, user_id: int, branches: list[Branch]) -> list[Branch]:
    """Drop branches another one already covers (fewer UNION arms, same rows).

    A subtree covers the departments inside it; a department or subtree holding the
    user covers ``own``.
    """
    subtrees = [b.key[1] for b in branches if b.key[0] == "subtree"]
    dept_ids = {b.key[1] for b in branches if b.key[0] == "department"}
    mine = state.org.department_of(user_id)
    kept = []
    for b in branches:
        if b.key[0] == "department":
            path = state.org.departments[b.key[1]].path  # type: ignore[index]
            if any(path.startswith(p) for p in subtrees):  # type: ignore[arg-type]
                continue
        if b.key[0] == "own" and mine is not None and (
                mine.id in dept_ids
                or any(mine.path.startswith(p) for p in subtrees)):  # type: ignore[arg-type]
            continue
        kept.append(b)
    return kept
