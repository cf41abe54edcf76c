"""place: points_total_place in PL/pgSQL, returning at once for no landlords

Revision ID: 0018_place
Revises: 0017_inbound
Create Date: 2026-11-30 09:40:00

PostgreSQL only. The statement triggers on `membership` and `points_event` (0007_speed) call
points_total_place with the landlords their rows touch: none for a tenant's registration or
most points events. As a LANGUAGE sql function it was planned again on every call, a
five-way join, about 0.7 ms: most of what a tenant's return cost PostgreSQL (a membership
insert took 0.84 ms against 0.13 ms without the trigger; bench/inbound.py). In PL/pgSQL its
plan is kept per connection and an empty list returns before any planning: 0.15 ms. SQLite's
row triggers already fire for landlords only (WHEN NEW.role = 'landlord').
"""

from __future__ import annotations

from alembic import op

revision = '0018_place'
down_revision = '0017_inbound'
branch_labels = None
depends_on = None

# The UPDATE of 0007_speed, unchanged.
_PLACE = """
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
WHERE t.landlord_id = p.landlord_id"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION points_total_place(ids integer[]) RETURNS void "
        "LANGUAGE plpgsql AS $$\nBEGIN\n"
        "  IF cardinality(ids) = 0 THEN\n    RETURN;\n  END IF;\n"
        f"{_PLACE};\nEND\n$$")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE OR REPLACE FUNCTION points_total_place(ids integer[]) RETURNS void "
               f"LANGUAGE sql AS $$\n{_PLACE}\n$$")
