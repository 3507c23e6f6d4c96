"""Casbin policies in the database: the model, a Core adapter, roles and bindings.

The model is RBAC with domains and the row scope as a fifth policy field
(shared/notes/casbin-rowfilter.md, section 4)::

    p, <role>, *, <entity>, <action>, <scope>          role templates from the registry
    p, <role>, *, <entity>.<field>, hide|readonly, field   field permissions
    g, u:<user id>, <role>, <domain>                    bindings: org | dept:<id> | pool:<name>

``g()`` comes last in the matcher: the cheap string comparisons reject most rows
before the role lookup (2.8x faster measured). The model text lives here rather
than in a ``model.conf`` so it ships inside the package with no data-file setup.

Every write here bumps the ``policy`` version stamp in the caller's transaction;
``PolicyCache`` (index.py) reloads in each process when it sees the stamp move.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import casbin
from casbin.model import Model
from casbin.persist import Adapter
from sqlalchemy import Connection, and_, delete, insert, select

from engine.errors import NotFoundError, ValidationError
from engine.messages import M
from engine.metadata.model import Registry
from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions._clock import utcnow
from engine.permissions.identity import get_user

MODEL_TEXT = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act, scope

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj == p.obj && r.act == p.act && (p.dom == "*" || p.dom == r.dom) && g(r.sub, p.sub, r.dom)
"""

ORG_DOMAIN = "org"
FIELD_SCOPE = "field"
HIDE = "hide"
READONLY = "readonly"

_DOMAIN = re.compile(r"^(org|dept:[1-9][0-9]*|pool:[a-z][a-z0-9_]{0,62})$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

Rule = tuple[str, ...]  # (ptype, v0, v1, ...)


def subject(user_id: int) -> str:
    """The Casbin subject of a user (prefixed so no role name can collide with it)."""
    return f"u:{user_id}"


def user_of(subject_: str) -> int | None:
    return int(subject_[2:]) if subject_.startswith("u:") and subject_[2:].isdigit() else None


def new_model() -> Model:
    model = Model()
    model.load_model_from_text(MODEL_TEXT)
    return model


def new_enforcer(conn: Connection) -> casbin.Enforcer:
    """An enforcer holding the policy as stored now (read through ``conn``)."""
    return casbin.Enforcer(new_model(), CoreAdapter(conn))


class CoreAdapter(Adapter):  # type: ignore[misc]
    """casbin_rule through SQLAlchemy Core on the caller's connection.

    Unlike sqlalchemy-adapter (its own ORM session) this writes in the caller's
    transaction, so a role change commits together with whatever caused it.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def load_policy(self, model: Model) -> None:
        # Appended directly, as Casbin's own file adapter does: ``model.add_policy``
        # checks each rule against a list (quadratic: 20 ms at 1,000 users, growing).
        for rule in dict.fromkeys(load_rules(self.conn)):
            ptype = rule[0]
            sec = model.model.get(ptype[0], {})
            if ptype in sec:
                sec[ptype].policy.append(list(rule[1:]))

    def save_policy(self, model: Model) -> bool:
        rules: list[Rule] = []
        for sec in ("p", "g"):
            for ptype, assertion in model.model.get(sec, {}).items():
                rules.extend((ptype, *r) for r in assertion.policy)
        self.conn.execute(delete(t.casbin_rule))
        _insert_rules(self.conn, rules)
        versions.bump(self.conn, versions.POLICY)
        return True

    def add_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> None:
        _insert_rules(self.conn, [(ptype, *rule)])
        versions.bump(self.conn, versions.POLICY)

    def remove_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        cols = [t.casbin_rule.c[f"v{i}"] == v for i, v in enumerate(rule)]
        done = self.conn.execute(delete(t.casbin_rule)
                                 .where(t.casbin_rule.c.ptype == ptype, *cols))
        versions.bump(self.conn, versions.POLICY)
        return bool(done.rowcount)

    def remove_filtered_policy(self, sec: str, ptype: str, field_index: int,
                               *field_values: str) -> bool:
        cols = [t.casbin_rule.c[f"v{field_index + i}"] == v
                for i, v in enumerate(field_values) if v]
        done = self.conn.execute(delete(t.casbin_rule)
                                 .where(t.casbin_rule.c.ptype == ptype, *cols))
        versions.bump(self.conn, versions.POLICY)
        return bool(done.rowcount)


def load_rules(conn: Connection) -> list[Rule]:
    """Every stored rule in insertion order, trailing empty fields dropped."""
    vs = [t.casbin_rule.c[f"v{i}"] for i in range(6)]
    rules: list[Rule] = []
    for row in conn.execute(select(t.casbin_rule.c.ptype, *vs).order_by(t.casbin_rule.c.id)):
        values = [v for v in row[1:]]
        while values and values[-1] in (None, ""):
            values.pop()
        rules.append((row[0], *(v or "" for v in values)))
    return rules


def _insert_rules(conn: Connection, rules: Iterable[Rule]) -> None:
    rows = []
    for rule in rules:
        if len(rule) > 7:
            raise ValueError(f"a Casbin rule has at most 6 fields: {rule}")
        row: dict[str, Any] = {"ptype": rule[0]}
        row.update({f"v{i}": None for i in range(6)})
        row.update({f"v{i}": v for i, v in enumerate(rule[1:])})
        rows.append(row)
    if rows:
        conn.execute(insert(t.casbin_rule), rows)


def role_rules(registry: Registry) -> list[Rule]:
    """The p rules the registry's roles declare (actions with scopes, field permissions)."""
    rules: list[Rule] = []
    for role in sorted(registry.roles.values(), key=lambda r: r.name):
        for grant in role.grants:
            for action in grant.actions:
                rules.append(("p", role.name, "*", grant.entity, action, grant.scope.value))
            for name in grant.hidden_fields:
                rules.append(("p", role.name, "*", f"{grant.entity}.{name}", HIDE, FIELD_SCOPE))
            for name in grant.readonly_fields:
                rules.append(("p", role.name, "*", f"{grant.entity}.{name}", READONLY,
                              FIELD_SCOPE))
    return rules


def sync_roles(conn: Connection, registry: Registry) -> bool:
    """Make the stored p rules those of ``registry``; True (and a new stamp) if they changed.

    Called at start and after every metadata change; an unchanged registry leaves
    the stamp alone so no process reloads for nothing.
    """
    wanted = role_rules(registry)
    stored = [r for r in load_rules(conn) if r[0] == "p"]
    if sorted(stored) == sorted(wanted):
        return False
    conn.execute(delete(t.casbin_rule).where(t.casbin_rule.c.ptype == "p"))
    _insert_rules(conn, wanted)
    versions.bump(conn, versions.POLICY)
    return True


def check_binding(*, role: str, domain: str, registry: Registry | None = None) -> None:
    errors: dict[str, str] = {}
    if not isinstance(role, str) or not _ROLE.match(role):
        errors["role"] = M("a role name (lower-case identifier)")
    elif registry is not None and role not in registry.roles:
        errors["role"] = M("no role %(role)s", role=repr(role))
    if not isinstance(domain, str) or not _DOMAIN.match(domain):
        errors["domain"] = M("org, dept:<department id> or pool:<pool name>")
    elif registry is not None and domain.startswith("pool:") and domain[5:] not in registry.pools:
        errors["domain"] = M("no pool %(value)s", value=repr(domain[5:]))
    if errors:
        raise ValidationError("role_binding", errors)


def bind_role(conn: Connection, *, user_id: int, role: str, domain: str = ORG_DOMAIN,
              registry: Registry | None = None) -> bool:
    """Give a user a role in a domain; False if they already had it there."""
    check_binding(role=role, domain=domain, registry=registry)
    get_user(conn, user_id)
    if domain.startswith("dept:"):
        found = conn.execute(select(t.department.c.id)
                             .where(t.department.c.id == int(domain[5:]))).scalar()
        if found is None:
            raise ValidationError("role_binding", {"domain": M("no department %(value)s",
                                                               value=domain[5:])})
    exists = conn.execute(select(t.role_binding.c.id).where(
        t.role_binding.c.user_id == user_id, t.role_binding.c.role == role,
        t.role_binding.c.domain == domain)).scalar()
    if exists is not None:
        return False
    conn.execute(insert(t.role_binding).values(user_id=user_id, role=role, domain=domain,
                                               created_at=utcnow()))
    _insert_rules(conn, [("g", subject(user_id), role, domain)])
    versions.bump(conn, versions.POLICY)
    return True


def unbind_role(conn: Connection, *, user_id: int, role: str, domain: str = ORG_DOMAIN) -> None:
    """Take a role away from a user in a domain (NotFoundError if they did not hold it)."""
    done = conn.execute(delete(t.role_binding).where(
        t.role_binding.c.user_id == user_id, t.role_binding.c.role == role,
        t.role_binding.c.domain == domain))
    if not done.rowcount:
        raise NotFoundError("role_binding", f"{user_id}/{role}/{domain}")
    conn.execute(delete(t.casbin_rule).where(and_(
        t.casbin_rule.c.ptype == "g", t.casbin_rule.c.v0 == subject(user_id),
        t.casbin_rule.c.v1 == role, t.casbin_rule.c.v2 == domain)))
    versions.bump(conn, versions.POLICY)


def bindings_of(conn: Connection, user_id: int) -> list[tuple[str, str]]:
    """(role, domain) pairs the user holds, in the order they were given."""
    rows = conn.execute(select(t.role_binding.c.role, t.role_binding.c.domain)
                        .where(t.role_binding.c.user_id == user_id)
                        .order_by(t.role_binding.c.id))
    return [(r.role, r.domain) for r in rows]
