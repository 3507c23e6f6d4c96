"""One keyset page over several row-scope branches: a UNION of per-branch keyset queries.

An OR across branch columns sends both planners into full sorts at 1M rows
(shared/notes/casbin-rowfilter.md, section 5), so each branch is its own
``ORDER BY sort, id LIMIT n`` query. The arms select only the sort key and the
id: they read little (often the index alone), a UNION of them drops a row that
two branches share, and the outer query keeps the first ``n`` keys. Only those
``n`` ids are joined back to the table for whole rows, so the database never
carries a full row it will throw away, and Python never sees a duplicate.
Building a statement with two columns per arm is also several times cheaper
than one with every column (bench/bench_permissions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select, union
from sqlalchemy.sql.elements import True_

from engine.records._plan import EntityPlan


def union_page(plan: EntityPlan, sort: Any, where: Sequence[ColumnElement[bool]],
               branches: Sequence[ColumnElement[bool]], wanted: int) -> Select[Any]:
    """Whole rows of the first ``wanted`` keys over every branch, in ``sort`` order."""
    table = plan.table
    order = sort.order_by(table.c)
    key = (table.c[sort.name], table.c.id) if sort.name != "id" else (table.c.id,)
    arms = [select(*key).where(*where, *([] if isinstance(b, True_) else [b]))
            .order_by(*order).limit(wanted).subquery() for b in branches]
    keys = union(*(select(arm) for arm in arms)).subquery("scoped_keys")
    page = select(keys.c.id).order_by(*sort.order_by(keys.c)).limit(wanted).subquery("page")
    return plan.select_all.join(page, page.c.id == table.c.id).order_by(*order)
