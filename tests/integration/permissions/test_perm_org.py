"""The org tree on SQLite and PostgreSQL: paths, moves, and the subtree predicate."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, select

from engine.errors import NotFoundError, ValidationError
from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions.identity import create_user
from engine.permissions.org import (
    OrgCache,
    create_department,
    delete_department,
    get_department,
    move_department,
    move_user,
    set_leader,
    users_in_department,
    users_in_subtree,
)
from engine.storage.database import write_transaction


def _ids(conn: Connection, stmt: object) -> set[int]:
    return {int(i) for i in conn.execute(stmt).scalars()}  # type: ignore[call-overload]


def _seed(conn: Connection) -> dict[str, int]:
    """hq > (east > east_a, west); one user per department."""
    ids: dict[str, int] = {}
    hq = create_department(conn, code="hq", name="HQ")
    east = create_department(conn, code="east", name="East", parent_id=hq.id)
    west = create_department(conn, code="west", name="West", parent_id=hq.id)
    east_a = create_department(conn, code="east_a", name="East A", parent_id=east.id)
    for dept in (hq, east, west, east_a):
        ids[dept.code] = dept.id
        ids["u_" + dept.code] = create_user(conn, login="u_" + dept.code,
                                            display_name=dept.name, department_id=dept.id).id
    return ids


def test_paths_and_subtree_predicate(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        ids = _seed(conn)
        east = get_department(conn, ids["east"])
        assert east.path == f"/{ids['hq']:04d}/{ids['east']:04d}/"
        assert east.depth == 2 and east.ancestor_ids == (ids["hq"], ids["east"])
        hq_path = get_department(conn, ids["hq"]).path
        assert _ids(conn, users_in_subtree(hq_path)) == {
            ids["u_hq"], ids["u_east"], ids["u_west"], ids["u_east_a"]}
        assert _ids(conn, users_in_subtree(east.path)) == {ids["u_east"], ids["u_east_a"]}
        assert _ids(conn, users_in_department(ids["east"])) == {ids["u_east"]}


def test_moving_a_department_rewrites_its_subtree(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        ids = _seed(conn)
        before = versions.current(conn, versions.ORG)
        moved = move_department(conn, ids["east"], new_parent_id=ids["west"])
        assert versions.current(conn, versions.ORG) > before
        west = get_department(conn, ids["west"])
        assert moved.path == west.path + f"{ids['east']:04d}/" and moved.parent_id == west.id
        assert get_department(conn, ids["east_a"]).path == moved.path + f"{ids['east_a']:04d}/"
        assert _ids(conn, users_in_subtree(west.path)) == {
            ids["u_west"], ids["u_east"], ids["u_east_a"]}
        assert _ids(conn, users_in_subtree(moved.path)) == {ids["u_east"], ids["u_east_a"]}
        # To the top level and back: paths stay consistent.
        top = move_department(conn, ids["east"], new_parent_id=None)
        assert top.path == f"/{ids['east']:04d}/" and top.parent_id is None
        hq_path = get_department(conn, ids["hq"]).path
        assert _ids(conn, users_in_subtree(hq_path)) == {ids["u_hq"], ids["u_west"]}
        paths = conn.execute(select(t.department.c.code, t.department.c.path)).all()
        assert {code: path.count("/") - 1 for code, path in paths} == {
            "hq": 1, "west": 2, "east": 1, "east_a": 2}


def test_a_department_cannot_move_under_itself(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        ids = _seed(conn)
        for target in (ids["east"], ids["east_a"]):
            with pytest.raises(ValidationError) as err:
                move_department(conn, ids["east"], new_parent_id=target)
            assert "parent_id" in err.value.field_errors
        with pytest.raises(ValidationError):
            move_department(conn, ids["east"], new_parent_id=9999)
        with pytest.raises(NotFoundError):
            move_department(conn, 9999, new_parent_id=None)


def test_moving_a_user_changes_which_subtrees_hold_them(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        ids = _seed(conn)
        east_path = get_department(conn, ids["east"]).path
        move_user(conn, ids["u_west"], department_id=ids["east_a"], level="rep")
        assert ids["u_west"] in _ids(conn, users_in_subtree(east_path))
        move_user(conn, ids["u_west"], department_id=None)
        assert ids["u_west"] not in _ids(conn, users_in_subtree(east_path))
        with pytest.raises(ValidationError):
            move_user(conn, ids["u_west"], department_id=4242)
        with pytest.raises(ValidationError):
            move_user(conn, ids["u_west"], department_id=ids["hq"], level="Not A Level")


def test_bad_departments_are_refused(ident_engine: Engine) -> None:
    with write_transaction(ident_engine) as conn:
        ids = _seed(conn)
        with pytest.raises(ValidationError) as err:
            create_department(conn, code="hq", name="")
        assert set(err.value.field_errors) == {"code", "name"}
        with pytest.raises(ValidationError):
            create_department(conn, code="Bad Code", name="x")
        with pytest.raises(ValidationError):
            create_department(conn, code="orphan", name="x", parent_id=4242)
        with pytest.raises(ValidationError):
            set_leader(conn, ids["hq"], 4242)
        with pytest.raises(ValidationError):
            delete_department(conn, ids["east"])  # not empty
        move_user(conn, ids["u_east_a"], department_id=ids["east"])
        delete_department(conn, ids["east_a"])
        with pytest.raises(NotFoundError):
            get_department(conn, ids["east_a"])


def test_snapshot_reloads_when_the_org_version_moves(ident_engine: Engine) -> None:
    cache = OrgCache()
    with write_transaction(ident_engine) as conn:
        ids = _seed(conn)
        set_leader(conn, ids["east"], ids["u_east"])
    with ident_engine.connect() as conn:
        snap = cache.get(conn)
        assert cache.get(conn) is snap  # same stamp, same object
        assert snap.users_under(ids["east"]) == {ids["u_east"], ids["u_east_a"]}
        assert snap.departments[ids["east"]].leader_id == ids["u_east"]
        assert [d.code for d in snap.ancestors_of(ids["east_a"])] == ["hq", "east", "east_a"]
        assert snap.department_of(ids["u_west"]).code == "west"  # type: ignore[union-attr]
    with write_transaction(ident_engine) as conn:
        move_user(conn, ids["u_west"], department_id=ids["east_a"])
    with ident_engine.connect() as conn:
        fresh = cache.get(conn)
        assert fresh is not snap
        assert fresh.users_under(ids["east"]) == {ids["u_east"], ids["u_east_a"], ids["u_west"]}
