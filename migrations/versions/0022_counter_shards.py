"""counter shards: the trigger-kept counters split by connection on PostgreSQL

Revision ID: 0022_counter_shards
Revises: 0021_figure_locks
Create Date: 2026-12-01 04:10:00

`notice_progress` (进度), `subtree_figure` (统计) and `points_scope_count` (积分's rank) are
kept by triggers with `x = x + EXCLUDED.x` upserts. Every transaction that acknowledges a
notice, registers a return or moves a landlord's total updates a few shared rows (a notice's
tier, the city's figures, a scope's total), and holds their locks until it commits: two
transactions at once queued behind each other there, or deadlocked (bench/LANES.md, F2), so
batches side by side gained nothing.

Now each row has a `shard`: on PostgreSQL its default is the connection's setting
`tierbot.shard` (bot.store gives each connection of a process its own, so two transactions
of one process never share a counter row), and the key includes it. A figure is the sum of
its key's rows (at most SHARDS of them); readers sum. The trigger functions are the live
ones with `shard` added to their ON CONFLICT targets (each replacement checked: a function
that does not read as expected stops the migration).

SQLite has one writer at a time: its tables get the column (always 0) so the models are the
same, and keep their keys and triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022_counter_shards'
down_revision = '0021_figure_locks'
branch_labels = None
depends_on = None

# The connection's shard (bot.store.SHARD_SETTING); 0 where it is not set (psql, a job of
# another program).
SHARD_DEFAULT = "coalesce(nullif(current_setting('tierbot.shard', true), '')::smallint, 0)"

# Table: its key before the shard, the trigger functions that upsert into it.
_TABLES = {
    "notice_progress": (("notice_id", "tier"),
                        ("notice_progress_insert", "notice_progress_update",
                         "notice_progress_delete")),
    "subtree_figure": (("node_id", "key"),
                       tuple(f"subtree_figure_{t}_{e}" for t in ("membership", "tenant_stay")
                             for e in ("insert", "delete", "update"))),
    "points_scope_count": (("tier", "scope_id", "total"),
                           ("points_scope_count_insert", "points_scope_count_update",
                            "points_scope_count_delete")),
}


def _target(key: tuple[str, ...]) -> str:
    return f"ON CONFLICT ({', '.join(key)})"


def _rewrite(function: str, old: str, new: str) -> None:
    """Function `function` again with its one ON CONFLICT target `old` made `new`."""
    source = op.get_bind().execute(sa.text(
        "SELECT pg_get_functiondef(to_regproc(:f))"), {"f": function}).scalar_one()
    if source is None or source.count(old) != 1:
        raise RuntimeError(f"{function}: expected one {old!r}")
    op.execute(source.replace(old, new))


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (key, functions) in _TABLES.items():
        if not postgresql:
            op.add_column(table, sa.Column("shard", sa.SmallInteger(), nullable=False,
                                           server_default="0"))
            continue
        op.add_column(table, sa.Column("shard", sa.SmallInteger(), nullable=False,
                                       server_default=sa.text(SHARD_DEFAULT)))
        op.execute(f"UPDATE {table} SET shard = 0")
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, [*key, "shard"])
        for function in functions:
            _rewrite(function, _target(key), _target((*key, "shard")))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (key, functions) in _TABLES.items():
        if postgresql:
            for function in functions:
                _rewrite(function, _target((*key, "shard")), _target(key))
            # One row per key again: the shards summed.
            columns = ", ".join(key)
            values = ("total, sent, failed, acked, first_id" if table == "notice_progress"
                      else "value" if table == "subtree_figure" else "landlords")
            sums = ", ".join(f"min({v}) AS {v}" if v == "first_id" else f"sum({v}) AS {v}"
                             for v in values.split(", "))
            op.execute(f"CREATE TEMPORARY TABLE summed ON COMMIT DROP AS SELECT {columns}, "
                       f"{sums} FROM {table} GROUP BY {columns}")
            op.execute(f"DELETE FROM {table}")
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            op.drop_column(table, "shard")
            op.execute(f"INSERT INTO {table} ({columns}, {values}) SELECT * FROM summed")
            op.execute("DROP TABLE summed")
            op.create_primary_key(f"pk_{table}", table, list(key))
        else:
            # Not a batch (a copy of the table on SQLite would lose the triggers on it).
            op.drop_column(table, "shard")
