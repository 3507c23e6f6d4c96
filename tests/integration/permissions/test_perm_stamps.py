"""``versions.stamps``: every version stamp in one statement on the direct path.

Each process's caches read the stamps every half second or so, from inside requests.
Through a ``Connection`` that read was a transaction ended by a ROLLBACK, and at a
ROLLBACK psycopg drops every statement it prepared on the connection: a list page lost
its prepared statement and its generic plan (engine/storage/direct.py) to each read.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, bindparam, func, select, text

from engine.permissions import versions
from engine.storage.database import make_engine, write_transaction
from engine.storage.direct import direct_rows, through_connection
from engine.storage.tables import StorageSchema
from tests.support.statements import statements_sent


def test_a_stamp_read_is_one_statement_outside_any_transaction(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        versions.bump(conn, versions.POLICY)
        versions.bump(conn, versions.POLICY)
        versions.bump(conn, versions.ORG)
    with statements_sent(ident_engine) as seen:
        found = versions.stamps(ident_engine)
    assert found == {versions.POLICY: 2, versions.ORG: 1, versions.METADATA: 0}
    assert len(seen) == 1 and "tp_policy_version" in seen[0][0], seen  # no BEGIN around it
    with through_connection():
        assert versions.stamps(ident_engine) == found


@pytest.mark.postgres
def test_a_stamp_read_keeps_the_statements_prepared_on_its_connection(
        pg_url: str, empty_schema: StorageSchema) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        empty_schema.metadata.create_all(engine)
        users = empty_schema.system["tp_user"]
        read = select(users.c.login).where(users.c.id == bindparam("id"))
        prepared = select(func.count()).select_from(text("pg_prepared_statements"))
        for _ in range(8):  # psycopg prepares a statement at its sixth run
            assert direct_rows(engine, read, {"id": 1}) == []
        before = direct_rows(engine, prepared, {})[0][0]
        assert before >= 1
        versions.stamps(engine)
        assert direct_rows(engine, prepared, {})[0][0] >= before
    finally:
        engine.dispose()
