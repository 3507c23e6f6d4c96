"""The identity tables, defined once on a private ``MetaData`` for building statements.

Statements only need table and column names and types, which are the same in
every ``MetaData`` the engine builds (``add_system_tables`` defines the same
tables), so the permission services do not need a ``StorageSchema`` passed in.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table

from engine.storage.identity_tables import (
    API_TOKEN_TABLE,
    CASBIN_RULE_TABLE,
    DEPARTMENT_TABLE,
    LOGIN_ATTEMPT_TABLE,
    POLICY_VERSION_TABLE,
    ROLE_BINDING_TABLE,
    SHARE_TABLE,
    SIGNIN_FAILURE_TABLE,
    add_identity_tables,
)
from engine.storage.system_tables import NAMING_CONVENTION, USER_TABLE, add_system_tables

_tables = add_identity_tables(MetaData(naming_convention=NAMING_CONVENTION))
#: The activity log, where "view as" is recorded (the system tables include identity's).
activity: Table = add_system_tables(MetaData(naming_convention=NAMING_CONVENTION))["tp_activity"]

user: Table = _tables[USER_TABLE]
department: Table = _tables[DEPARTMENT_TABLE]
api_token: Table = _tables[API_TOKEN_TABLE]
login_attempt: Table = _tables[LOGIN_ATTEMPT_TABLE]
signin_failure: Table = _tables[SIGNIN_FAILURE_TABLE]
role_binding: Table = _tables[ROLE_BINDING_TABLE]
casbin_rule: Table = _tables[CASBIN_RULE_TABLE]
policy_version: Table = _tables[POLICY_VERSION_TABLE]
share: Table = _tables[SHARE_TABLE]
