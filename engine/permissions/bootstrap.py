"""The first administrator, and keeping the stored policy in step with the metadata.

``tidepool init`` creates the first administrator: a password comes from the
command line, the environment or a prompt, never from a default. Everything
here writes in the caller's transaction, so a refused admin leaves no half
org behind. ``sync_policies`` runs after every ``init`` and ``migrate``: the
roles in ``casbin_rule`` are those of the metadata last applied.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, select

from engine.errors import ValidationError
from engine.messages import M
from engine.metadata.model import Registry
from engine.permissions import _tables as t
from engine.permissions.identity import User, create_user, find_user
from engine.permissions.org import create_department
from engine.permissions.passwords import check_password_rules
from engine.permissions.policy_store import ORG_DOMAIN, bind_role, sync_roles
from engine.permissions.view_as import ADMIN_ROLE
from engine.storage.database import write_transaction

#: The department created when the tree is empty: everyone starts under it.
ROOT_DEPARTMENT_CODE = "root"
ROOT_DEPARTMENT_NAME = "Organisation"


def existing_admin(conn: Connection) -> str | None:
    """The login of an administrator already there (None, also before the tables exist)."""
    if not inspect(conn).has_table(t.role_binding.name):
        return None
    return conn.execute(
        select(t.user.c.login)
        .join(t.role_binding, t.role_binding.c.user_id == t.user.c.id)
        .where(t.role_binding.c.role == ADMIN_ROLE, t.role_binding.c.domain == ORG_DOMAIN,
               t.user.c.active.is_(True))
        .order_by(t.user.c.id).limit(1)
    ).scalar()


def check_first_admin(registry: Registry, *, login: str, password: str) -> None:
    """Refuse, before anything is written, what ``create_first_admin`` would refuse."""
    errors: dict[str, str] = {}
    if ADMIN_ROLE not in registry.roles:
        errors["role"] = (M("the app packages declare no role %(role)s; add "
                            "roles/%(file)s.json granting what administrators may do",
                            role=repr(ADMIN_ROLE), file=ADMIN_ROLE))
    try:
        check_password_rules(password)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    if not isinstance(login, str) or not login.strip():
        errors["login"] = M("required")
    if errors:
        raise ValidationError("user", errors)


def create_first_admin(conn: Connection, registry: Registry, *, login: str, password: str,
                       display_name: str | None = None) -> User:
    """Create the first administrator: a root department if none, the roles, the user.

    Refused when an administrator exists already (later ones are added by an
    administrator) or the login is taken.
    """
    check_first_admin(registry, login=login, password=password)
    current = existing_admin(conn)
    if current is not None:
        raise ValidationError("user", {"login": M("there is already an administrator "
                                                  "(%(current)s); add users as them",
                                                  current=current)})
    if find_user(conn, login) is not None:
        raise ValidationError("user", {"login": M("%(login)s is already taken",
                                                  login=login.strip().lower())})
    root = conn.execute(select(t.department.c.id).where(t.department.c.parent_id.is_(None))
                        .order_by(t.department.c.id).limit(1)).scalar()
    if root is None:
        root = create_department(conn, code=ROOT_DEPARTMENT_CODE, name=ROOT_DEPARTMENT_NAME).id
    user = create_user(conn, login=login, display_name=display_name or login.strip(),
                       password=password, department_id=int(root))
    sync_roles(conn, registry)
    bind_role(conn, user_id=user.id, role=ADMIN_ROLE, domain=ORG_DOMAIN, registry=registry)
    return user


def sync_policies(engine: Engine, registry: Registry) -> bool:
    """Store the roles of ``registry`` as Casbin policies; True if they changed."""
    with write_transaction(engine) as conn:
        return sync_roles(conn, registry)
