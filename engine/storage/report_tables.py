"""Tables of the reporting layer (owned by engine/reports): daily rollups and targets.

``tp_rollup_daily`` holds, per leaderboard measure, owner and company-local day,
how many records count and their total; the records service's write events
keep it in step in the same transaction (engine/reports/rollups.py), and
``tidepool reports rebuild`` recomputes it from the base tables. ``tp_target``
holds sales targets (销售目标) per measure, period and user or department.
``add_system_tables`` calls ``add_report_tables`` so every ``MetaData`` has them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from engine.storage.system_tables import USER_TABLE, IdType

ROLLUP_TABLE = "tp_rollup_daily"
TARGET_TABLE = "tp_target"


def add_report_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the rollup and target tables on ``metadata`` and return them by name."""
    rollup = Table(
        ROLLUP_TABLE, metadata,
        Column("measure", String(63), nullable=False),
        Column("day", Date, nullable=False),
        Column("owner_id", BigInteger, nullable=False),
        Column("count", BigInteger, nullable=False, default=0),
        Column("total", Numeric(24, 4), nullable=False, default=0),
        # A leaderboard reads one measure over a range of days for every owner.
        PrimaryKeyConstraint("measure", "day", "owner_id"),
    )
    target = Table(
        TARGET_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("measure", String(63), nullable=False),
        Column("first_day", Date, nullable=False),
        Column("end_day", Date, nullable=False),   # exclusive
        # "user:<id>" or "dept:<id>": one target per assignee, measure and period
        Column("assignee", String(40), nullable=False),
        Column("value", Numeric(24, 4), nullable=False),
        Column("set_by", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        Column("set_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("measure", "first_day", "end_day", "assignee",
                         name="uq_tp_target_assignment"),
        Index("ix_tp_target_period", "first_day", "end_day"),
    )
    return {rollup.name: rollup, target.name: target}
