"""speed: per-landlord points totals kept by triggers, indexes the reads use, a lighter outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:30:00

`points_total` holds, per landlord, the sum of the counted deltas and of the counted
deductions (all time), and where the landlord is ranked (first tier-5 node, its tier-2 and
tier-1 ancestors, first registration). Database triggers keep it in step with `points_event`
and `membership` whoever writes them (services, imports, other processes, raw SQL), so the
weekly close and 积分 never re-aggregate the ledger.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Where a landlord is ranked: the same rules as the ranking query (first tier-5 node by id,
# first registration, the node's tier-2 ancestor and that one's parent).
_SQLITE_PLACE = """
UPDATE points_total SET
  node_id = (SELECT min(m.node_id) FROM membership m JOIN node n ON n.id = m.node_id
             WHERE m.person_id = {p} AND m.role = 'landlord' AND n.tier = 5),
  registered_at = (SELECT min(m.created_at) FROM membership m JOIN node n ON n.id = m.node_id
                   WHERE m.person_id = {p} AND m.role = 'landlord' AND n.tier = 5),
  scope2_id = (SELECT n2.id FROM node n5 JOIN node n4 ON n4.id = n5.parent_id
               JOIN node n3 ON n3.id = n4.parent_id JOIN node n2 ON n2.id = n3.parent_id
               WHERE n5.id = (SELECT min(m.node_id) FROM membership m
                              JOIN node n ON n.id = m.node_id
                              WHERE m.person_id = {p} AND m.role = 'landlord'
                              AND n.tier = 5)),
  scope1_id = (SELECT n2.parent_id FROM node n5 JOIN node n4 ON n4.id = n5.parent_id
               JOIN node n3 ON n3.id = n4.parent_id JOIN node n2 ON n2.id = n3.parent_id
               WHERE n5.id = (SELECT min(m.node_id) FROM membership m
                              JOIN node n ON n.id = m.node_id
                              WHERE m.person_id = {p} AND m.role = 'landlord'
                              AND n.tier = 5))
WHERE landlord_id = {p}{extra};
"""

_SQLITE_TRIGGERS = [
    f"""
CREATE TRIGGER points_total_event_insert AFTER INSERT ON points_event WHEN NEW.counts
BEGIN
  INSERT OR IGNORE INTO points_total (landlord_id, total, deducted)
    VALUES (NEW.landlord_id, 0, 0);
  UPDATE points_total SET total = total + NEW.delta,
    deducted = deducted + max(-NEW.delta, 0) WHERE landlord_id = NEW.landlord_id;
  {_SQLITE_PLACE.format(p='NEW.landlord_id', extra=' AND node_id IS NULL')}
END
""",
    f"""
CREATE TRIGGER points_total_event_update
AFTER UPDATE OF counts, delta, landlord_id ON points_event WHEN OLD.counts OR NEW.counts
BEGIN
  UPDATE points_total SET total = total - OLD.delta,
    deducted = deducted - max(-OLD.delta, 0)
    WHERE OLD.counts AND landlord_id = OLD.landlord_id;
  INSERT OR IGNORE INTO points_total (landlord_id, total, deducted)
    SELECT NEW.landlord_id, 0, 0 WHERE NEW.counts;
  UPDATE points_total SET total = total + NEW.delta,
    deducted = deducted + max(-NEW.delta, 0)
    WHERE NEW.counts AND landlord_id = NEW.landlord_id;
  {_SQLITE_PLACE.format(p='NEW.landlord_id', extra=' AND node_id IS NULL')}
END
""",
    """
CREATE TRIGGER points_total_event_delete AFTER DELETE ON points_event WHEN OLD.counts
BEGIN
  UPDATE points_total SET total = total - OLD.delta,
    deducted = deducted - max(-OLD.delta, 0) WHERE landlord_id = OLD.landlord_id;
END
""",
    f"""
CREATE TRIGGER points_total_membership_insert AFTER INSERT ON membership
WHEN NEW.role = 'landlord'
BEGIN
  INSERT OR IGNORE INTO points_total (landlord_id, total, deducted)
    VALUES (NEW.person_id, 0, 0);
  {_SQLITE_PLACE.format(p='NEW.person_id', extra='')}
END
""",
    f"""
CREATE TRIGGER points_total_membership_update AFTER UPDATE ON membership
WHEN OLD.role = 'landlord' OR NEW.role = 'landlord'
BEGIN
  INSERT OR IGNORE INTO points_total (landlord_id, total, deducted)
    VALUES (NEW.person_id, 0, 0);
  {_SQLITE_PLACE.format(p='OLD.person_id', extra='')}
  {_SQLITE_PLACE.format(p='NEW.person_id', extra='')}
END
""",
    f"""
CREATE TRIGGER points_total_membership_delete AFTER DELETE ON membership
WHEN OLD.role = 'landlord'
BEGIN
  {_SQLITE_PLACE.format(p='OLD.person_id', extra='')}
END
""",
]

_PG_FUNCTIONS = [
    """
CREATE FUNCTION points_total_place(ids integer[]) RETURNS void LANGUAGE sql AS $$
UPDATE points_total t SET node_id = p.node_id, registered_at = p.registered_at,
  scope2_id = p.scope2_id, scope1_id = p.scope1_id
FROM (
  SELECT x.id AS landlord_id, a.node_id, a.registered_at, n2.id AS scope2_id,
         n2.parent_id AS scope1_id
  FROM (SELECT DISTINCT unnest(ids) AS id) x
  CROSS JOIN LATERAL (
    SELECT min(m.node_id) AS node_id, min(m.created_at) AS registered_at
    FROM membership m JOIN node n ON n.id = m.node_id
    WHERE m.person_id = x.id AND m.role = 'landlord' AND n.tier = 5) a
  LEFT JOIN node n5 ON n5.id = a.node_id
  LEFT JOIN node n4 ON n4.id = n5.parent_id
  LEFT JOIN node n3 ON n3.id = n4.parent_id
  LEFT JOIN node n2 ON n2.id = n3.parent_id) p
WHERE t.landlord_id = p.landlord_id
$$
""",
]

_PG_EVENT_BODY = """
  INSERT INTO points_total AS t (landlord_id, total, deducted)
  SELECT landlord_id, sum(d), sum(dd) FROM ({rows}) x
  GROUP BY landlord_id ORDER BY landlord_id
  ON CONFLICT (landlord_id) DO UPDATE
    SET total = t.total + EXCLUDED.total, deducted = t.deducted + EXCLUDED.deducted;
  PERFORM points_total_place(ARRAY(
    SELECT t.landlord_id FROM points_total t
    WHERE t.node_id IS NULL AND t.landlord_id IN (SELECT landlord_id FROM ({rows}) y)));
"""
_PG_ADDED = "SELECT landlord_id, delta AS d, greatest(-delta, 0) AS dd FROM new_rows WHERE counts"
_PG_REMOVED = ("SELECT landlord_id, -delta AS d, -greatest(-delta, 0) AS dd FROM old_rows "
               "WHERE counts")
_PG_MEMBERS_NEW = """
  INSERT INTO points_total (landlord_id, total, deducted)
  SELECT DISTINCT person_id, 0, 0 FROM new_rows WHERE role = 'landlord' ORDER BY person_id
  ON CONFLICT (landlord_id) DO NOTHING;
"""


def _pg_trigger(name: str, table: str, event: str, refs: str, body: str) -> list[str]:
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}\n  RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {refs} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


_PG_TRIGGERS = [
    *_pg_trigger("points_total_event_insert", "points_event", "INSERT",
                 "NEW TABLE AS new_rows", _PG_EVENT_BODY.format(rows=_PG_ADDED)),
    *_pg_trigger("points_total_event_update", "points_event", "UPDATE",
                 "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                 _PG_EVENT_BODY.format(rows=f"{_PG_ADDED} UNION ALL {_PG_REMOVED}")),
    *_pg_trigger("points_total_event_delete", "points_event", "DELETE",
                 "OLD TABLE AS old_rows", _PG_EVENT_BODY.format(rows=_PG_REMOVED)),
    *_pg_trigger("points_total_membership_insert", "membership", "INSERT",
                 "NEW TABLE AS new_rows", _PG_MEMBERS_NEW + """
  PERFORM points_total_place(ARRAY(
    SELECT person_id FROM new_rows WHERE role = 'landlord'));"""),
    *_pg_trigger("points_total_membership_update", "membership", "UPDATE",
                 "OLD TABLE AS old_rows NEW TABLE AS new_rows", _PG_MEMBERS_NEW + """
  PERFORM points_total_place(ARRAY(
    SELECT person_id FROM new_rows WHERE role = 'landlord'
    UNION SELECT person_id FROM old_rows WHERE role = 'landlord'));"""),
    *_pg_trigger("points_total_membership_delete", "membership", "DELETE",
                 "OLD TABLE AS old_rows", """
  PERFORM points_total_place(ARRAY(
    SELECT person_id FROM old_rows WHERE role = 'landlord'));"""),
]

# The same figures, set-based, for rows that exist before the triggers do.
_BACKFILL = """
INSERT INTO points_total (landlord_id, total, deducted, node_id, registered_at, scope2_id,
                          scope1_id)
SELECT p.id, COALESCE(e.total, 0), COALESCE(e.deducted, 0), l.node_id, l.registered_at,
       n2.id, n2.parent_id
FROM (SELECT landlord_id AS id FROM points_event WHERE counts
      UNION SELECT person_id FROM membership WHERE role = 'landlord') p
LEFT JOIN (SELECT landlord_id, sum(delta) AS total,
                  sum(CASE WHEN delta < 0 THEN -delta ELSE 0 END) AS deducted
           FROM points_event WHERE counts GROUP BY landlord_id) e ON e.landlord_id = p.id
LEFT JOIN (SELECT m.person_id, min(m.node_id) AS node_id, min(m.created_at) AS registered_at
           FROM membership m JOIN node n ON n.id = m.node_id
           WHERE m.role = 'landlord' AND n.tier = 5 GROUP BY m.person_id) l
  ON l.person_id = p.id
LEFT JOIN node n5 ON n5.id = l.node_id
LEFT JOIN node n4 ON n4.id = n5.parent_id
LEFT JOIN node n3 ON n3.id = n4.parent_id
LEFT JOIN node n2 ON n2.id = n3.parent_id
"""

_TRIGGER_NAMES = [
    ("points_total_event_insert", "points_event"), ("points_total_event_update", "points_event"),
    ("points_total_event_delete", "points_event"),
    ("points_total_membership_insert", "membership"),
    ("points_total_membership_update", "membership"),
    ("points_total_membership_delete", "membership"),
]


def upgrade() -> None:
    op.create_table('points_total',
    sa.Column('landlord_id', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('deducted', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('registered_at', sa.DateTime(), nullable=True),
    sa.Column('scope1_id', sa.Integer(), nullable=True),
    sa.Column('scope2_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('landlord_id', name=op.f('pk_points_total'))
    )
    op.create_index('ix_points_total_scope1', 'points_total',
                    ['scope1_id', 'total', 'deducted', 'registered_at'])
    op.create_index('ix_points_total_scope2', 'points_total',
                    ['scope2_id', 'total', 'deducted', 'registered_at'])
    with op.batch_alter_table('points_event', schema=None) as batch_op:
        # The ranking no longer groups the ledger by landlord; it reads ranges of time.
        batch_op.drop_index('ix_points_event_rank')
        batch_op.drop_index('ix_points_event_landlord_id')
        batch_op.create_index('ix_points_event_occurred',
                              ['counts', 'occurred_at', 'landlord_id', 'delta'])
        batch_op.create_index('ix_points_event_decided',
                              ['counts', 'decided_at', 'landlord_id', 'delta', 'occurred_at'])
        batch_op.create_index('ix_points_event_landlord',
                              ['landlord_id', 'occurred_at', 'counts', 'delta'])
    op.create_index('ix_membership_created_at', 'membership', ['created_at'])
    # Standings are derived rows written by one statement: no per-row foreign-key checks,
    # and the unique (week_id, landlord_id) serves look-ups by week.
    with op.batch_alter_table('points_standing', schema=None) as batch_op:
        batch_op.drop_index('ix_points_standing_week_id')
        batch_op.drop_constraint('fk_points_standing_landlord_id_person', type_='foreignkey')
        batch_op.drop_constraint('fk_points_standing_node_id_node', type_='foreignkey')
        batch_op.drop_constraint('fk_points_standing_week_id_points_week', type_='foreignkey')
    # The outbox: the unique (notice_id, group_id) already serves look-ups by notice.
    # and only sent rows are in the pacing index; no per-row foreign-key checks for the notice
    # (written just before in the same transaction) and the acknowledger.
    # No batch (table copy) on SQLite: the outbox has expression and partial indexes, and
    # SQLite's foreign keys cost little; they are dropped on PostgreSQL only.
    op.drop_index('ix_outbox_message_notice_id', table_name='outbox_message')
    op.drop_index('ix_outbox_message_account_sent_at', table_name='outbox_message')
    op.create_index('ix_outbox_message_account_sent_at', 'outbox_message', ['account', 'sent_at'],
                    sqlite_where=sa.text('sent_at IS NOT NULL'),
                    postgresql_where=sa.text('sent_at IS NOT NULL'))
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('fk_outbox_message_notice_id_notice', 'outbox_message',
                           type_='foreignkey')
        op.drop_constraint('fk_outbox_message_acked_by_id_person', 'outbox_message',
                           type_='foreignkey')
    bind = op.get_bind()
    statements = _PG_FUNCTIONS + _PG_TRIGGERS if bind.dialect.name == "postgresql" \
        else _SQLITE_TRIGGERS
    op.execute(_BACKFILL)
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for name, table in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}"
                   + (f" ON {table}" if bind.dialect.name == "postgresql" else ""))
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS points_total_place(integer[])")
    if bind.dialect.name == "postgresql":
        op.create_foreign_key('fk_outbox_message_acked_by_id_person', 'outbox_message',
                              'person', ['acked_by_id'], ['id'])
        op.create_foreign_key('fk_outbox_message_notice_id_notice', 'outbox_message',
                              'notice', ['notice_id'], ['id'])
    op.drop_index('ix_outbox_message_account_sent_at', table_name='outbox_message')
    op.create_index('ix_outbox_message_account_sent_at', 'outbox_message', ['account', 'sent_at'])
    op.create_index('ix_outbox_message_notice_id', 'outbox_message', ['notice_id'])
    with op.batch_alter_table('points_standing', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_points_standing_week_id_points_week', 'points_week',
                                    ['week_id'], ['id'])
        batch_op.create_foreign_key('fk_points_standing_node_id_node', 'node', ['node_id'], ['id'])
        batch_op.create_foreign_key('fk_points_standing_landlord_id_person', 'person',
                                    ['landlord_id'], ['id'])
        batch_op.create_index('ix_points_standing_week_id', ['week_id'], unique=False)
    with op.batch_alter_table('points_event', schema=None) as batch_op:
        batch_op.drop_index('ix_points_event_landlord')
        batch_op.drop_index('ix_points_event_decided')
        batch_op.drop_index('ix_points_event_occurred')
        batch_op.create_index('ix_points_event_landlord_id', ['landlord_id'], unique=False)
        batch_op.create_index('ix_points_event_rank',
                              ['counts', 'landlord_id', 'occurred_at', 'delta', 'decided_at'])
    op.drop_index('ix_membership_created_at', table_name='membership')
    op.drop_index('ix_points_total_scope2', table_name='points_total')
    op.drop_index('ix_points_total_scope1', table_name='points_total')
    op.drop_table('points_total')
