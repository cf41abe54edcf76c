"""pgreads: 进度's counters per (notice, tier) kept by triggers; 待核查's community on each event

Revision ID: 0017_pgreads
Revises: 0016_console_extra
Create Date: 2026-11-30 02:10:00

`notice_progress` holds, per notice and tier of the target groups, how many rows the notice
has, how many are sent, failed and acknowledged, and a lower bound of its rows' ids (where
进度's walk for the first silent groups starts). Triggers on `outbox_message` keep it
(insert, any change of status, acknowledgement, notice or group, delete), whoever writes
the rows (the fan-out, the sender marking one row or many in one UPDATE, 收到, a relay, the
watchdog's moves, the retention purge), so 进度 reads a handful of rows instead of
aggregating 100,000. PostgreSQL: statement-level triggers over the transition tables, one
upsert per statement in key order; SQLite: row triggers.

`points_event.scope2_id`: the tier-2 ancestor (the community whose secretary verifies) of the
event's node, set by a trigger on insert (and on a change of node) and backfilled here, with
an index for 待核查's count and list (a range of one community's pending events instead of
the nested walk of its 100,000-node subtree).

PostgreSQL: outbox_message's foreign key to chat_group becomes statement-level trigger checks
(see _PG_GROUP_CHECK); SQLite keeps its key (checked cheaply per row there).

`ix_node_tier`: 进度's first silent groups of a small tier start from that tier's nodes
(without it, PostgreSQL scanned all 100,000 nodes per tier line).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017_pgreads'
down_revision = '0016_console_extra'
branch_labels = None
depends_on = None

# The aggregate the counters stand for (also bot.services.notice.REBUILD_PROGRESS, the
# rebuild after a bulk load made with the triggers off, and the tests' recount).
_BACKFILL = """
INSERT INTO notice_progress (notice_id, tier, total, sent, failed, acked, first_id)
SELECT o.notice_id, n.tier, count(*),
       sum(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END),
       sum(CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END), count(o.acked_at), min(o.id)
FROM outbox_message o JOIN chat_group g ON g.id = o.group_id JOIN node n ON n.id = g.node_id
WHERE o.notice_id IS NOT NULL
GROUP BY o.notice_id, n.tier
"""

# What one row contributes (sign +1 or -1), for the tier of its group.
_SQLITE_ADD = """
  INSERT INTO notice_progress (notice_id, tier, total, sent, failed, acked, first_id)
    SELECT {r}.notice_id, n.tier, {s}1, {s}({r}.status = 'sent'), {s}({r}.status = 'failed'),
           {s}({r}.acked_at IS NOT NULL), {first}
    FROM chat_group g JOIN node n ON n.id = g.node_id
    WHERE g.id = {r}.group_id AND {r}.notice_id IS NOT NULL
    ON CONFLICT (notice_id, tier) DO UPDATE SET total = total + excluded.total,
      sent = sent + excluded.sent, failed = failed + excluded.failed,
      acked = acked + excluded.acked,
      first_id = coalesce(min(first_id, excluded.first_id), first_id, excluded.first_id);"""

# A change that moves a counter (a claim, pending -> sending, moves none: it fires nothing).
_CHANGED = """(({o}.status = 'sent') IS NOT ({n}.status = 'sent')
  OR ({o}.status = 'failed') IS NOT ({n}.status = 'failed')
  OR ({o}.acked_at IS NULL) IS NOT ({n}.acked_at IS NULL)
  OR {o}.notice_id IS NOT {n}.notice_id OR {o}.group_id IS NOT {n}.group_id)"""

_SQLITE_PROGRESS = [
    f"""
CREATE TRIGGER notice_progress_insert AFTER INSERT ON outbox_message
WHEN NEW.notice_id IS NOT NULL
BEGIN{_SQLITE_ADD.format(r='NEW', s='+', first='NEW.id')}
END
""",
    f"""
CREATE TRIGGER notice_progress_update
AFTER UPDATE OF status, acked_at, notice_id, group_id ON outbox_message
WHEN (OLD.notice_id IS NOT NULL OR NEW.notice_id IS NOT NULL)
  AND {_CHANGED.format(o='OLD', n='NEW')}
BEGIN{_SQLITE_ADD.format(r='OLD', s='-', first='NULL')}
{_SQLITE_ADD.format(r='NEW', s='+', first='NEW.id')}
END
""",
    f"""
CREATE TRIGGER notice_progress_delete AFTER DELETE ON outbox_message
WHEN OLD.notice_id IS NOT NULL
BEGIN{_SQLITE_ADD.format(r='OLD', s='-', first='NULL')}
END
""",
]


def _pg_rows(table: str, sign: str, where: str = "") -> str:
    return (f"SELECT r.notice_id, n.tier, {sign}1 AS t, {sign}(r.status = 'sent')::int AS s, "
            f"{sign}(r.status = 'failed')::int AS f, {sign}(r.acked_at IS NOT NULL)::int AS a, "
            f"{'r.id' if sign == '+' else 'NULL::int'} AS i "
            f"FROM {table} r JOIN chat_group g ON g.id = r.group_id "
            f"JOIN node n ON n.id = g.node_id WHERE r.notice_id IS NOT NULL{where}")


# One upsert per statement, in key order (concurrent statements lock counters in one order).
_PG_BODY = """
  INSERT INTO notice_progress AS c (notice_id, tier, total, sent, failed, acked, first_id)
  SELECT notice_id, tier, sum(t), sum(s), sum(f), sum(a), min(i) FROM ({rows}) x
  GROUP BY notice_id, tier
  HAVING sum(t) <> 0 OR sum(s) <> 0 OR sum(f) <> 0 OR sum(a) <> 0 OR min(i) IS NOT NULL
  ORDER BY notice_id, tier
  ON CONFLICT (notice_id, tier) DO UPDATE SET total = c.total + EXCLUDED.total,
    sent = c.sent + EXCLUDED.sent, failed = c.failed + EXCLUDED.failed,
    acked = c.acked + EXCLUDED.acked, first_id = LEAST(c.first_id, EXCLUDED.first_id);
"""

# An UPDATE: only the rows whose change moves a counter (every claim runs this on no rows).
_PG_CHANGED = (" AND r.id IN (SELECT o.id FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE "
               + _CHANGED.format(o='o', n='w').replace(" IS NOT ", " IS DISTINCT FROM ") + ")")


def _pg_trigger(name: str, event: str, refs: str, rows: str) -> list[str]:
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{_PG_BODY.format(rows=rows)}\n  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {name} AFTER {event} ON outbox_message REFERENCING {refs} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


# An INSERT: the counters and the group check (see _PG_GROUP_CHECK) in one pass over the new
# rows, one join with the groups (a fan-out's rows are looked up once, not twice).
_PG_INSERT = """CREATE FUNCTION notice_progress_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orphans bigint;
BEGIN
  WITH x AS MATERIALIZED (
    SELECT r.id, r.notice_id, n.tier, g.id AS known_group, r.status, r.acked_at
    FROM new_rows r LEFT JOIN chat_group g ON g.id = r.group_id
    LEFT JOIN node n ON n.id = g.node_id WHERE r.group_id IS NOT NULL
  ), counted AS (
    INSERT INTO notice_progress AS c (notice_id, tier, total, sent, failed, acked, first_id)
    SELECT notice_id, tier, count(*), count(*) FILTER (WHERE status = 'sent'),
           count(*) FILTER (WHERE status = 'failed'), count(acked_at), min(id)
    FROM x WHERE notice_id IS NOT NULL AND known_group IS NOT NULL
    GROUP BY notice_id, tier ORDER BY notice_id, tier
    ON CONFLICT (notice_id, tier) DO UPDATE SET total = c.total + EXCLUDED.total,
      sent = c.sent + EXCLUDED.sent, failed = c.failed + EXCLUDED.failed,
      acked = c.acked + EXCLUDED.acked, first_id = LEAST(c.first_id, EXCLUDED.first_id)
    RETURNING 1
  )
  SELECT count(*) FILTER (WHERE known_group IS NULL) INTO orphans FROM x;
  IF orphans > 0 THEN
    RAISE EXCEPTION 'outbox_message.group_id names no chat_group'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$"""

_PG_PROGRESS = [
    _PG_INSERT,
    "CREATE TRIGGER notice_progress_insert AFTER INSERT ON outbox_message "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION notice_progress_insert()",
    *_pg_trigger("notice_progress_update", "UPDATE",
                 "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                 f"{_pg_rows('new_rows', '+', _PG_CHANGED)} UNION ALL "
                 f"{_pg_rows('old_rows', '-', _PG_CHANGED)}"),
    *_pg_trigger("notice_progress_delete", "DELETE", "OLD TABLE AS old_rows",
                 _pg_rows("old_rows", "-")),
]

# The tier-2 ancestor of a node (a child is always one tier below its parent).
_SCOPE2 = """(SELECT CASE n.tier WHEN 2 THEN n.id WHEN 3 THEN n.parent_id
  WHEN 4 THEN p1.parent_id WHEN 5 THEN p2.parent_id END
  FROM node n LEFT JOIN node p1 ON p1.id = n.parent_id LEFT JOIN node p2 ON p2.id = p1.parent_id
  WHERE n.id = {node})"""

_SQLITE_SCOPE = [
    f"""
CREATE TRIGGER points_event_scope_insert AFTER INSERT ON points_event
BEGIN
  UPDATE points_event SET scope2_id = {_SCOPE2.format(node='NEW.node_id')} WHERE id = NEW.id;
END
""",
    f"""
CREATE TRIGGER points_event_scope_update AFTER UPDATE OF node_id ON points_event
WHEN OLD.node_id IS NOT NEW.node_id
BEGIN
  UPDATE points_event SET scope2_id = {_SCOPE2.format(node='NEW.node_id')} WHERE id = NEW.id;
END
""",
]

_PG_SCOPE = [
    "CREATE FUNCTION points_event_scope() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    f"BEGIN\n  NEW.scope2_id := {_SCOPE2.format(node='NEW.node_id')};\n  RETURN NEW;\nEND\n$$",
    "CREATE TRIGGER points_event_scope BEFORE INSERT OR UPDATE OF node_id ON points_event "
    "FOR EACH ROW EXECUTE FUNCTION points_event_scope()",
]

# Set-based (one join of the events with every node's community), not a look-up per event.
_SCOPE_BACKFILL = """
UPDATE points_event SET scope2_id = s.scope2_id
FROM (SELECT n.id, CASE n.tier WHEN 2 THEN n.id WHEN 3 THEN n.parent_id
        WHEN 4 THEN p1.parent_id WHEN 5 THEN p2.parent_id END AS scope2_id
      FROM node n LEFT JOIN node p1 ON p1.id = n.parent_id
      LEFT JOIN node p2 ON p2.id = p1.parent_id) s
WHERE s.id = points_event.node_id AND s.scope2_id IS NOT NULL
"""

# PostgreSQL: the outbox's foreign key to chat_group checked per statement instead of per row
# (the per-row check was a third of a 10,000-group fan-out): an insert naming a group that
# does not exist fails as the key did (SQLSTATE 23503), so does moving a row to one, and a
# group still named by outbox rows cannot be deleted or renumbered. What the per-row key had
# besides: a share lock on each group, against a delete committed between the check and the
# insert's commit; the application never deletes groups (unbinding keeps the row).
# (The insert's check is in notice_progress_insert, _PG_INSERT.)
_PG_GROUP_CHECK = [
    """CREATE FUNCTION outbox_message_group_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM chat_group g WHERE g.id = NEW.group_id) THEN
    RAISE EXCEPTION 'outbox_message.group_id names no chat_group'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$""",
    "CREATE TRIGGER outbox_message_group_moved AFTER UPDATE OF group_id ON outbox_message "
    "FOR EACH ROW WHEN (NEW.group_id IS DISTINCT FROM OLD.group_id AND NEW.group_id IS NOT NULL) "
    "EXECUTE FUNCTION outbox_message_group_moved()",
    """CREATE FUNCTION chat_group_outbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
    RETURN NEW;
  END IF;
  IF EXISTS (SELECT 1 FROM outbox_message o WHERE o.group_id = OLD.id) THEN
    RAISE EXCEPTION 'chat_group % is still named by outbox_message', OLD.id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$""",
    "CREATE TRIGGER chat_group_outbox_guard BEFORE DELETE OR UPDATE OF id ON chat_group "
    "FOR EACH ROW EXECUTE FUNCTION chat_group_outbox_guard()",
]

_SQLITE_NAMES = ["notice_progress_insert", "notice_progress_update", "notice_progress_delete",
                 "points_event_scope_insert", "points_event_scope_update"]
_PG_NAMES = [("notice_progress_insert", "outbox_message"),
             ("notice_progress_update", "outbox_message"),
             ("notice_progress_delete", "outbox_message"),
             ("points_event_scope", "points_event"),
             ("outbox_message_group_moved", "outbox_message"),
             ("chat_group_outbox_guard", "chat_group")]


def upgrade() -> None:
    op.create_table(
        'notice_progress',
        sa.Column('notice_id', sa.Integer(), nullable=False),
        sa.Column('tier', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('acked', sa.Integer(), nullable=False),
        sa.Column('first_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('notice_id', 'tier', name=op.f('pk_notice_progress')),
    )
    op.add_column('points_event', sa.Column('scope2_id', sa.Integer(), nullable=True))
    op.execute(_BACKFILL)
    op.execute(_SCOPE_BACKFILL)
    op.create_index('ix_points_event_scope2', 'points_event', ['scope2_id', 'status', 'id'])
    op.create_index(op.f('ix_node_tier'), 'node', ['tier'])
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.drop_constraint('fk_outbox_message_group_id_chat_group', 'outbox_message',
                           type_='foreignkey')
    for statement in ((_PG_PROGRESS + _PG_SCOPE + _PG_GROUP_CHECK) if pg
                      else (_SQLITE_PROGRESS + _SQLITE_SCOPE)):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in _PG_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        op.create_foreign_key('fk_outbox_message_group_id_chat_group', 'outbox_message',
                              'chat_group', ['group_id'], ['id'])
    else:
        for name in _SQLITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index(op.f('ix_node_tier'), table_name='node')
    op.drop_index('ix_points_event_scope2', table_name='points_event')
    # Not a batch (a copy of the table on SQLite would lose its points_total triggers).
    op.execute("ALTER TABLE points_event DROP COLUMN scope2_id")
    op.drop_table('notice_progress')
