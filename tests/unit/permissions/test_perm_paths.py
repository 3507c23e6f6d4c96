"""The subtree range on department paths, as pure string logic."""

from __future__ import annotations

import pytest

from engine.permissions.org import Department, path_successor


def _inside(path: str, root: str) -> bool:
    return root <= path < path_successor(root)


@pytest.mark.parametrize("path,root,expected", [
    ("/0001/", "/0001/", True),
    ("/0001/0004/", "/0001/", True),
    ("/0001/0004/0012/", "/0001/0004/", True),
    ("/0001/00045/", "/0001/0004/", False),   # a longer sibling id with the same digits
    ("/0001/0005/", "/0001/0004/", False),
    ("/0001/", "/0001/0004/", False),          # the parent is not below its child
    ("/10000/", "/1000/", False),              # ids past the padding width
    ("/1000/10000/", "/1000/", True),
    ("/0002/", "/0001/", False),
])
def test_subtree_range(path: str, root: str, expected: bool) -> None:
    assert _inside(path, root) is expected


def test_successor_refuses_a_non_path() -> None:
    with pytest.raises(ValueError):
        path_successor("/0001")


def test_department_depth_and_ancestors() -> None:
    d = Department(id=12, code="x", name="X", parent_id=4, path="/0001/0004/0012/",
                   leader_id=None)
    assert d.depth == 3 and d.ancestor_ids == (1, 4, 12)
