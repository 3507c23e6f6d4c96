"""Tables of identity, the org tree and permissions (owned by engine/permissions).

Kept apart from ``system_tables`` so the permissions layer can grow its schema
without touching the tables every other layer relies on. ``add_system_tables``
calls ``add_identity_tables`` so every ``MetaData`` the engine builds has them.

Department paths are compared as byte strings (``path >= :p AND path < :p_succ``
is "this department and everything below it"), so on PostgreSQL the column uses
the C collation: a linguistic collation would ignore the ``/`` separators and
mis-order the ranges. SQLite compares BINARY by default.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from engine.storage.system_tables import USER_TABLE, IdType

DEPARTMENT_TABLE = "tp_department"
API_TOKEN_TABLE = "tp_api_token"
LOGIN_ATTEMPT_TABLE = "tp_login_attempt"
SIGNIN_FAILURE_TABLE = "tp_signin_failure"
ROLE_BINDING_TABLE = "tp_role_binding"
CASBIN_RULE_TABLE = "casbin_rule"
POLICY_VERSION_TABLE = "tp_policy_version"
SHARE_TABLE = "tp_share"

#: A department path such as "/0001/0004/": byte-ordered on both databases.
PathType = String(1024).with_variant(String(1024, collation="C"), "postgresql")


def add_identity_tables(metadata: MetaData) -> dict[str, Table]:
    """Define users, departments, tokens, bindings, Casbin rules and shares on ``metadata``."""
    user = Table(
        USER_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("login", String(150), nullable=False, unique=True),
        Column("display_name", String(200), nullable=False),
        Column("email", String(254)),
        Column("active", Boolean, nullable=False, default=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("password_hash", String(255)),
        Column("phone", String(32)),
        Column("locale", String(16), nullable=False, default="en"),
        Column("department_id", IdType,
               ForeignKey(f"{DEPARTMENT_TABLE}.id", ondelete="SET NULL")),
        Column("level", String(32)),  # e.g. manager | supervisor | rep (from the app)
        # Every session carries the epoch it was issued under; bumping it (password
        # change, deactivation, "log out everywhere") ends all older sessions at once.
        Column("session_epoch", Integer, nullable=False, default=0),
        # No longer read: sign-in throttling counts tp_signin_failure (per login and
        # client). Kept, and reset on success, so older databases need no change.
        Column("failed_logins", Integer, nullable=False, default=0),
        Column("locked_until", DateTime(timezone=True)),
        Column("last_login_at", DateTime(timezone=True)),
        # IANA name; NULL follows the company's zone (engine/storage/settings.py)
        Column("time_zone", String(64)),
        Index("ix_tp_user_department", "department_id"),
    )
    department = Table(
        DEPARTMENT_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("code", String(63), nullable=False, unique=True),  # named by pool members
        Column("name", String(200), nullable=False),
        Column("parent_id", IdType, ForeignKey(f"{DEPARTMENT_TABLE}.id", ondelete="RESTRICT")),
        Column("path", PathType, nullable=False),
        # use_alter: users and departments point at each other; the constraint is
        # added after both tables exist (and dropped first).
        Column("leader_id", IdType,
               ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL", use_alter=True,
                          name="fk_tp_department_leader_id_tp_user")),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index("ix_tp_department_path", "path"),
        Index("ix_tp_department_parent", "parent_id"),
    )
    api_token = Table(
        API_TOKEN_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("user_id", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
               nullable=False),
        Column("name", String(100), nullable=False),
        Column("prefix", String(16), nullable=False),  # shown in lists to tell tokens apart
        Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True)),
        Column("last_used_at", DateTime(timezone=True)),
        Column("revoked_at", DateTime(timezone=True)),
        Index("ix_tp_api_token_user", "user_id"),
    )
    login_attempt = Table(
        LOGIN_ATTEMPT_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("login", String(150), nullable=False),
        Column("user_id", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE")),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("succeeded", Boolean, nullable=False),
        Column("reason", String(32), nullable=False),  # ok | bad_password | unknown | locked | ...
        Index("ix_tp_login_attempt_login", "login", "at"),
    )
    # Recent failed sign-ins, what the throttle counts (engine/permissions/throttle.py):
    # per login, per client and per (login, client). A success clears its login's rows;
    # rows past the window are pruned. tp_login_attempt stays the full audit trail.
    signin_failure = Table(
        SIGNIN_FAILURE_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("login", String(150), nullable=False),
        Column("client", String(64), nullable=False),  # the client's address, "" if unknown
        Column("at", DateTime(timezone=True), nullable=False),
        Index("ix_tp_signin_failure_login", "login", "client", "at"),
        Index("ix_tp_signin_failure_client", "client", "at"),
    )
    role_binding = Table(
        ROLE_BINDING_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("user_id", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
               nullable=False),
        Column("role", String(63), nullable=False),
        Column("domain", String(127), nullable=False),  # org | dept:<id> | pool:<name>
        Column("created_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("user_id", "role", "domain"),
    )
    casbin_rule = Table(
        CASBIN_RULE_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("ptype", String(8), nullable=False),
        *(Column(f"v{i}", String(255)) for i in range(6)),
        Index("ix_casbin_rule_ptype_v0", "ptype", "v0"),
    )
    policy_version = Table(
        POLICY_VERSION_TABLE, metadata,
        Column("name", String(32), primary_key=True),  # "policy" | "org"
        Column("version", BigInteger, nullable=False),
        Column("changed_at", DateTime(timezone=True), nullable=False),
    )
    share = Table(
        SHARE_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        Column("user_id", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE")),
        Column("department_id", IdType,
               ForeignKey(f"{DEPARTMENT_TABLE}.id", ondelete="CASCADE")),
        Column("access", String(8), nullable=False),  # read | write
        Column("expires_at", DateTime(timezone=True)),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("created_by", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        CheckConstraint("(user_id IS NULL) <> (department_id IS NULL)", name="one_grantee"),
        CheckConstraint("access IN ('read', 'write')", name="access"),
        Index("ix_tp_share_user", "user_id", "entity", "record_id"),
        Index("ix_tp_share_department", "department_id", "entity", "record_id"),
        Index("ix_tp_share_record", "entity", "record_id"),
    )
    tables = (user, department, api_token, login_attempt, signin_failure, role_binding,
              casbin_rule, policy_version, share)
    return {t.name: t for t in tables}
