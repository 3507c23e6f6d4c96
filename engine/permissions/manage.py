"""Administration by name (logins, department codes) for the command line and scripts.

The admin UI will call the id-based functions of ``identity``, ``org`` and
``policy_store`` directly; these wrappers resolve the names people type and
otherwise add nothing, so both paths apply the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine

from engine.errors import NotFoundError, ValidationError
from engine.messages import M
from engine.metadata.model import ACTIONS, Registry
from engine.permissions._branch import Explanation
from engine.permissions.identity import User, create_user, find_user
from engine.permissions.org import create_department, find_department
from engine.permissions.policy_store import ORG_DOMAIN, bind_role, unbind_role
from engine.permissions.scopes import CasbinAccessPolicy
from engine.storage.tables import build_schema


def user_by_login(conn: Connection, login: str) -> User:
    found = find_user(conn, login)
    if found is None:
        raise NotFoundError("user", login)
    return found


def department_id(conn: Connection, code: str, *, field: str = "department") -> int:
    found = find_department(conn, code)
    if found is None:
        raise ValidationError("user", {field: M("no department %(code)s", code=repr(code))})
    return found.id


def resolve_domain(conn: Connection, domain: str) -> str:
    """``dept:<code>`` -> ``dept:<id>``; ``org`` and ``pool:<name>`` stay as they are."""
    if domain.startswith("dept:") and not domain[5:].isdigit():
        return f"dept:{department_id(conn, domain[5:], field='domain')}"
    return domain


def split_role(spec: str) -> tuple[str, str]:
    """``rep`` -> (rep, org); ``manager@dept:north`` -> (manager, dept:north)."""
    role, _, domain = spec.partition("@")
    return role, domain or ORG_DOMAIN


def add_department(conn: Connection, *, code: str, name: str, parent: str | None = None) -> int:
    parent_id = department_id(conn, parent, field="parent") if parent else None
    return create_department(conn, code=code, name=name, parent_id=parent_id).id


def add_user(conn: Connection, registry: Registry, *, login: str, display_name: str,
             password: str | None = None, department: str | None = None,
             level: str | None = None, email: str | None = None,
             roles: Sequence[str] = ()) -> User:
    """Create a user in a department (by code) holding ``roles`` (``role[@domain]``)."""
    dept = department_id(conn, department) if department else None
    user = create_user(conn, login=login, display_name=display_name, password=password,
                       department_id=dept, level=level, email=email)
    for spec in roles:
        role, domain = split_role(spec)
        bind_role(conn, user_id=user.id, role=role, domain=resolve_domain(conn, domain),
                  registry=registry)
    return user


def bind(conn: Connection, registry: Registry, *, login: str, role: str,
         domain: str = ORG_DOMAIN) -> bool:
    user = user_by_login(conn, login)
    return bind_role(conn, user_id=user.id, role=role, domain=resolve_domain(conn, domain),
                     registry=registry)


def unbind(conn: Connection, *, login: str, role: str, domain: str = ORG_DOMAIN) -> None:
    user = user_by_login(conn, login)
    unbind_role(conn, user_id=user.id, role=role, domain=resolve_domain(conn, domain))


def explain(engine: Engine, registry: Registry, *, login: str, entity: str, record_id: int,
            action: str) -> Explanation:
    """``why`` by login: the rule that lets the user ``action`` the record, or the reason not."""
    if entity not in registry.entities:
        raise NotFoundError("entity", entity)
    if action not in ACTIONS:
        raise ValidationError("why", {"action": M("one of %(value)s", value=', '.join(ACTIONS))})
    table = build_schema(registry).table(entity)
    policy = CasbinAccessPolicy(engine, registry, check_interval=0)
    with engine.connect() as conn:
        user = user_by_login(conn, login)
        if not user.active:
            return Explanation(allowed=False, entity=entity, record_id=record_id,
                               action=action, granted_by=(),
                               reason=f"{user.login} is deactivated and may do nothing")
        return policy.why(conn, user_id=user.id, entity=registry.entity(entity), table=table,
                          record_id=record_id, action=action)
