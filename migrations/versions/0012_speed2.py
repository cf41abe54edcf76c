"""speed2: landlords per (scope, total) kept by triggers; the sender's retry look-up indexed

Revision ID: 0012_speed2
Revises: 0008
Create Date: 2026-11-29 20:30:00

`points_scope_count` holds, per ranking scope (tier 1: subdistrict, tier 2: community) and
per all-time total, how many landlords of `points_total` are placed there with that total.
Triggers on `points_total` keep it, so 积分's rank reads a few hundred count rows (how many
have a higher total) instead of counting the scope's landlords in an index.

`ix_outbox_message_retry`: the sender's "when is the next retry due", over the pending rows
that have a retry time only (a fan-out's inserts add no entry); with every row of a large
fan-out sent, SQLite's planner otherwise walked the whole table after each send (8 ms at
100,000 rows, on the event loop).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_speed2'
down_revision = '0009'
branch_labels = None
depends_on = None

# Pending rows with a retry time: a fan-out's new rows (no retry time yet) add no entry.
_RETRY_WHERE = "status = 'pending' AND next_attempt_at IS NOT NULL"

# One row per (tier, scope, total) with its count, from points_total (also the rebuild after
# a bulk load made with the triggers off: bot.services.points.REBUILD_SCOPE_COUNTS).
_BACKFILL = """
INSERT INTO points_scope_count (tier, scope_id, total, landlords)
SELECT 1, scope1_id, total, count(*) FROM points_total WHERE scope1_id IS NOT NULL
GROUP BY scope1_id, total
UNION ALL
SELECT 2, scope2_id, total, count(*) FROM points_total WHERE scope2_id IS NOT NULL
GROUP BY scope2_id, total
"""


def _sqlite_add(row: str, sign: str) -> str:
    return "\n".join(
        f"  INSERT INTO points_scope_count (tier, scope_id, total, landlords)\n"
        f"    SELECT {tier}, {row}.scope{tier}_id, {row}.total, {sign}1\n"
        f"    WHERE {row}.scope{tier}_id IS NOT NULL\n"
        f"    ON CONFLICT (tier, scope_id, total) DO UPDATE SET landlords = landlords {sign} 1;"
        for tier in (1, 2))


_SQLITE_TRIGGERS = [
    f"""
CREATE TRIGGER points_scope_count_insert AFTER INSERT ON points_total
BEGIN
{_sqlite_add('NEW', '+')}
END
""",
    f"""
CREATE TRIGGER points_scope_count_update AFTER UPDATE OF total, scope1_id, scope2_id
ON points_total
WHEN OLD.total IS NOT NEW.total OR OLD.scope1_id IS NOT NEW.scope1_id
  OR OLD.scope2_id IS NOT NEW.scope2_id
BEGIN
{_sqlite_add('OLD', '-')}
{_sqlite_add('NEW', '+')}
END
""",
    f"""
CREATE TRIGGER points_scope_count_delete AFTER DELETE ON points_total
BEGIN
{_sqlite_add('OLD', '-')}
END
""",
]


def _pg_rows(table: str, sign: str) -> str:
    return " UNION ALL ".join(
        f"SELECT {tier} AS tier, scope{tier}_id AS scope_id, total, {sign}1 AS d "
        f"FROM {table} WHERE scope{tier}_id IS NOT NULL" for tier in (1, 2))


_PG_BODY = """
  INSERT INTO points_scope_count AS c (tier, scope_id, total, landlords)
  SELECT tier, scope_id, total, sum(d) FROM ({rows}) x
  GROUP BY tier, scope_id, total HAVING sum(d) <> 0 ORDER BY tier, scope_id, total
  ON CONFLICT (tier, scope_id, total) DO UPDATE SET landlords = c.landlords + EXCLUDED.landlords;
"""


def _pg_trigger(name: str, event: str, refs: str, rows: str) -> list[str]:
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{_PG_BODY.format(rows=rows)}\n  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {name} AFTER {event} ON points_total REFERENCING {refs} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


_PG_TRIGGERS = [
    *_pg_trigger("points_scope_count_insert", "INSERT", "NEW TABLE AS new_rows",
                 _pg_rows("new_rows", "+")),
    *_pg_trigger("points_scope_count_update", "UPDATE",
                 "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                 f"{_pg_rows('new_rows', '+')} UNION ALL {_pg_rows('old_rows', '-')}"),
    *_pg_trigger("points_scope_count_delete", "DELETE", "OLD TABLE AS old_rows",
                 _pg_rows("old_rows", "-")),
]

_TRIGGER_NAMES = ["points_scope_count_insert", "points_scope_count_update",
                  "points_scope_count_delete"]


def upgrade() -> None:
    op.create_table(
        'points_scope_count',
        sa.Column('tier', sa.Integer(), nullable=False),
        sa.Column('scope_id', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('landlords', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tier', 'scope_id', 'total', name=op.f('pk_points_scope_count')),
    )
    op.create_index('ix_outbox_message_retry', 'outbox_message', ['account', 'next_attempt_at'],
                    sqlite_where=sa.text(_RETRY_WHERE), postgresql_where=sa.text(_RETRY_WHERE))
    op.execute(_BACKFILL)
    pg = op.get_bind().dialect.name == "postgresql"
    for statement in _PG_TRIGGERS if pg else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON points_total" if pg else ""))
        if pg:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index('ix_outbox_message_retry', table_name='outbox_message')
    op.drop_table('points_scope_count')
