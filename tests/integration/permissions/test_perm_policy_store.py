"""Policies in casbin_rule on SQLite and PostgreSQL: sync from the registry,
bindings, the adapter round trip and the version stamp."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from engine.errors import NotFoundError, ValidationError
from engine.metadata.parse import registry_from_document
from engine.permissions import versions
from engine.permissions.identity import create_user
from engine.permissions.policy_store import (
    bind_role,
    bindings_of,
    load_rules,
    new_enforcer,
    role_rules,
    sync_roles,
    unbind_role,
)
from engine.storage.database import write_transaction

DOC = {
    "entities": {},
    "pools": {"p1": {"name": "p1", "entity": "thing", "label": {"en": "P"}}},
    "roles": {"viewer": {"name": "viewer", "label": {"en": "V"}, "grants": [
        {"entity": "thing", "actions": ["read", "export"], "scope": "own",
         "hidden_fields": ["cost"]}]}},
}


def test_sync_roles_writes_rules_once_and_bumps_the_stamp(ident_engine: Engine) -> None:
    registry = registry_from_document(DOC)
    assert role_rules(registry) == [
        ("p", "viewer", "*", "thing", "read", "own"),
        ("p", "viewer", "*", "thing", "export", "own"),
        ("p", "viewer", "*", "thing.cost", "hide", "field"),
    ]
    with write_transaction(ident_engine) as conn:
        assert sync_roles(conn, registry) is True
        stamp = versions.current(conn, versions.POLICY)
        assert sync_roles(conn, registry) is False  # unchanged: no reload anywhere
        assert versions.current(conn, versions.POLICY) == stamp
        changed = registry_from_document({**DOC, "roles": {}})
        assert sync_roles(conn, changed) is True
        assert versions.current(conn, versions.POLICY) == stamp + 1
        assert load_rules(conn) == []


def test_bindings_round_trip_through_casbin(ident_engine: Engine) -> None:
    registry = registry_from_document(DOC)
    with write_transaction(ident_engine) as conn:
        uid = create_user(conn, login="u", display_name="U").id
        sync_roles(conn, registry)
        assert bind_role(conn, user_id=uid, role="viewer", domain="pool:p1", registry=registry)
        assert not bind_role(conn, user_id=uid, role="viewer", domain="pool:p1")
        assert bindings_of(conn, uid) == [("viewer", "pool:p1")]
        enforcer = new_enforcer(conn)
        assert enforcer.enforce(f"u:{uid}", "pool:p1", "thing", "read")
        assert not enforcer.enforce(f"u:{uid}", "org", "thing", "read")
        assert not enforcer.enforce(f"u:{uid}", "pool:p1", "thing", "delete")
        unbind_role(conn, user_id=uid, role="viewer", domain="pool:p1")
        assert not new_enforcer(conn).enforce(f"u:{uid}", "pool:p1", "thing", "read")
        with pytest.raises(NotFoundError):
            unbind_role(conn, user_id=uid, role="viewer", domain="pool:p1")


def test_adapter_save_policy_replaces_the_stored_rules(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        enforcer = new_enforcer(conn)
        enforcer.add_policy("r", "*", "thing", "read", "all")  # auto-save via the adapter
        assert load_rules(conn) == [("p", "r", "*", "thing", "read", "all")]
        enforcer.add_named_grouping_policy("g", "u:1", "r", "org")
        enforcer.save_policy()
        assert sorted(load_rules(conn)) == [("g", "u:1", "r", "org"),
                                            ("p", "r", "*", "thing", "read", "all")]
        enforcer.remove_policy("r", "*", "thing", "read", "all")
        assert load_rules(conn) == [("g", "u:1", "r", "org")]


def test_bad_bindings_are_refused(ident_engine: Engine) -> None:
    registry = registry_from_document(DOC)
    with write_transaction(ident_engine) as conn:
        uid = create_user(conn, login="u", display_name="U").id
        cases = [("viewer", "pool:nope", "domain"), ("ghost", "org", "role"),
                 ("viewer", "dept:abc", "domain"), ("viewer", "everywhere", "domain"),
                 ("Bad Role", "org", "role")]
        for role, domain, field in cases:
            with pytest.raises(ValidationError) as err:
                bind_role(conn, user_id=uid, role=role, domain=domain, registry=registry)
            assert field in err.value.field_errors, (role, domain)
        with pytest.raises(ValidationError):
            bind_role(conn, user_id=uid, role="viewer", domain="dept:999")
        with pytest.raises(NotFoundError):
            bind_role(conn, user_id=999, role="viewer", domain="org")
