"""figures: 统计's counts of landlords, tenants and stays per subtree, kept by triggers

Revision ID: 0020_figures
Revises: 0019_statsidx
Create Date: 2026-11-30 15:20:00

`subtree_figure` holds, per node and key, a count over the node's subtree (the node
included): `landlords` (persons with a landlord membership there), `tenants` (tenants with a
stay not ended there), `stays` (stays there). 统计 counted them from the rows each time: a
city's distinct landlords and tenants were two scans of 100,000 index entries (10 ms each on
SQLite, 13 on PostgreSQL), a community's a probe per node of its subtree.

Triggers keep the table whoever writes the rows (a return, 退租, a removal, the import, the
retention purge, a stay moved to another place): a row adds or takes 1 at its node and at
each of its ancestors (at most four: a child is always one tier below its parent), and for a
distinct count only where the person has no other such row under that ancestor.
SQLite: row triggers. PostgreSQL: statement triggers over the transition tables (a COPY of
100,000 memberships is one pass; row triggers there run after the whole statement, each
seeing every row already changed, which miscounts a person's rows changed together), one
upsert per statement in key order. A node given another parent (nothing does that today)
rebuilds the table.

Cost, measured (bench/inbound.py, bench/import.py): a stay's insert 6 -> 64 us on SQLite
at 100,000 landlords, about 0.3 ms of PostgreSQL's time; importing 100,000 people SQLite
6.6 -> 7.6 s, PostgreSQL 11.7 -> 13.6 s.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020_figures'
down_revision = '0019_statsidx'
branch_labels = None
depends_on = None

# Parent steps from the lowest tier (5) up to the root (1).
_DEPTH = 4

# Per table: the distinct key, the person column, what makes a row count ({x}: its alias).
_DISTINCT = {
    "membership": ("landlords", "person_id", "{x}.role = 'landlord'"),
    "tenant_stay": ("tenants", "tenant_id", "{x}.ended_at IS NULL"),
}


def _joins(p: str) -> str:
    """Joins from node {p}0 up its parents ({p}1, ...)."""
    return " ".join(f"LEFT JOIN node {p}{k} ON {p}{k}.id = {p}{k - 1}.parent_id"
                    for k in range(1, _DEPTH))


def _columns(p: str) -> list[str]:
    """{p}0's id and its ancestors' ids, nearest first (NULL above the root)."""
    return [f"{p}0.id"] + [f"{p}{k}.parent_id" for k in range(_DEPTH)]


def _ancestors(node: str) -> str:
    """`node` and each of its ancestors, a row each (`ancestor_id`): one walk up the parents,
    its columns turned into rows. Not a CTE: SQLite takes none inside a trigger."""
    steps = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(_DEPTH + 1))
    pick = " ".join(f"WHEN {k} THEN {c}" for k, c in enumerate(_columns("n")))
    return (f"SELECT ancestor_id FROM (SELECT CASE k.k {pick} END AS ancestor_id "
            f"FROM node n0 {_joins('n')} CROSS JOIN ({steps}) k WHERE n0.id = {node}) up "
            "WHERE ancestor_id IS NOT NULL")


def _other(table: str, who: str, ancestor: str, *, besides: str,
           rows: str | None = None) -> str:
    """A counting row of person `who` at `ancestor` or below it, in `rows` (the table
    itself, or the rows a trigger collected); `besides`: which rows do not count as such.
    A scalar subquery, not EXISTS: PostgreSQL turns EXISTS into an anti join and its
    generic plan read every live stay for each return; this it runs per row, a seek of the
    person's index."""
    _key, person, counts = _DISTINCT[table]
    return (f"((SELECT 1 FROM {rows or table} o JOIN node u0 ON u0.id = o.node_id "
            f"{_joins('u')} WHERE o.{person} = {who} AND {counts.format(x='o')} "
            f"AND {besides} AND {ancestor} IN ({', '.join(_columns('u'))}) LIMIT 1) "
            "IS NOT NULL)")


def _sqlite_upsert(select: str) -> str:
    return (f"\n  INSERT INTO subtree_figure (node_id, key, value) {select}"
            "\n  ON CONFLICT (node_id, key) DO UPDATE "
            "SET value = subtree_figure.value + excluded.value;")


def _row(table: str, r: str, sign: str) -> str:
    """Row `r` (NEW or OLD) counted in (+) or out (-): its table's distinct key, and for a
    stay the stays too (one statement: one walk up the parents, 79 -> 64 us a return)."""
    key, person, counts = _DISTINCT[table]
    ancestors = _ancestors(f"{r}.node_id")
    distinct = (f"{counts.format(x=r)} AND NOT "
                f"{_other(table, f'{r}.{person}', 'a.ancestor_id', besides=f'o.id <> {r}.id')}")
    if table != "tenant_stay":
        return _sqlite_upsert(f"SELECT a.ancestor_id, '{key}', {sign}1 FROM ({ancestors}) a "
                              f"WHERE {distinct}")
    return _sqlite_upsert(
        f"SELECT a.ancestor_id, k.key, {sign}1 FROM ({ancestors}) a CROSS JOIN "
        f"(SELECT 'stays' AS key UNION ALL SELECT '{key}') k "
        f"WHERE k.key = 'stays' OR ({distinct})")


# What makes a changed row move a figure.
_CHANGED = {
    "membership": "OLD.role IS NOT NEW.role OR OLD.node_id IS NOT NEW.node_id "
                  "OR OLD.person_id IS NOT NEW.person_id",
    "tenant_stay": "(OLD.ended_at IS NULL) IS NOT (NEW.ended_at IS NULL) "
                   "OR OLD.node_id IS NOT NEW.node_id OR OLD.tenant_id IS NOT NEW.tenant_id",
}
_UPDATED_COLUMNS = {"membership": "role, node_id, person_id",
                    "tenant_stay": "ended_at, node_id, tenant_id"}


def _update_body(table: str) -> str:
    """An updated row: out as it was, in as it is (the row itself is never "other")."""
    return _row(table, "OLD", "-") + _row(table, "NEW", "+")


def _sqlite_triggers() -> list[str]:
    out = []
    for table in _DISTINCT:
        # A membership moves a figure only as a landlord's (a tenant's return adds one).
        when = {r: "" if table == "tenant_stay" else
                f"\nWHEN {_DISTINCT[table][2].format(x=r)}" for r in ("NEW", "OLD")}
        out += [
            f"CREATE TRIGGER subtree_figure_{table}_insert AFTER INSERT ON {table}"
            f"{when['NEW']}\nBEGIN{_row(table, 'NEW', '+')}\nEND",
            f"CREATE TRIGGER subtree_figure_{table}_delete AFTER DELETE ON {table}"
            f"{when['OLD']}\nBEGIN{_row(table, 'OLD', '-')}\nEND",
            f"CREATE TRIGGER subtree_figure_{table}_update "
            f"AFTER UPDATE OF {_UPDATED_COLUMNS[table]} ON {table}\n"
            f"WHEN {_CHANGED[table]}\nBEGIN{_update_body(table)}\nEND",
        ]
    out.append("CREATE TRIGGER subtree_figure_node_moved AFTER UPDATE OF parent_id ON node\n"
               "WHEN OLD.parent_id IS NOT NEW.parent_id\nBEGIN\n"
               f"  DELETE FROM subtree_figure;\n  {_REBUILD};\nEND")
    return out


# The column each table's "counts" condition reads, and its type (the arrays below).
_COLUMN = {"membership": ("role", "text"), "tenant_stay": ("ended_at", "timestamp")}


def _rows(table: str, prefix: str = "") -> str:
    """The rows a trigger collected into arrays (see _pg_collect), as a FROM item."""
    _key, person, _counts = _DISTINCT[table]
    return (f"unnest(ids, {prefix}persons, {prefix}nodes, {prefix}vals) "
            f"AS r(id, {person}, node_id, {_COLUMN[table][0]})")


def _pg_statement(table: str, sign: str) -> str:
    """The figures a statement's inserted (+) or deleted (-) rows move: one upsert, in key
    order."""
    key, person, counts = _DISTINCT[table]
    # An insert: the person had no other row there before (the statement's own new rows
    # are not "other"). A delete: the person has none left.
    besides = "o.id NOT IN (SELECT unnest(ids))" if sign == "+" else "TRUE"
    parts = [f"SELECT a.ancestor_id AS node_id, '{key}' AS key, "
             f"{sign}count(DISTINCT r.{person}) AS v "
             f"FROM {_rows(table)} CROSS JOIN LATERAL ({_ancestors('r.node_id')}) a "
             f"WHERE {counts.format(x='r')} AND NOT "
             f"{_other(table, f'r.{person}', 'a.ancestor_id', besides=besides)} "
             "GROUP BY a.ancestor_id"]
    if table == "tenant_stay":
        parts.append(f"SELECT a.ancestor_id, 'stays', {sign}count(*) FROM {_rows(table)} "
                     f"CROSS JOIN LATERAL ({_ancestors('r.node_id')}) a GROUP BY a.ancestor_id")
    return _PG_UPSERT.format(parts=" UNION ALL ".join(parts))


_PG_UPSERT = """
  INSERT INTO subtree_figure AS f (node_id, key, value)
  SELECT node_id, key, sum(v) FROM ({parts}) x
  GROUP BY node_id, key HAVING sum(v) <> 0 ORDER BY node_id, key
  ON CONFLICT (node_id, key) DO UPDATE SET value = f.value + EXCLUDED.value;"""


def _pg_update(table: str) -> str:
    """An UPDATE's rows whose change moves a figure: each (person, ancestor) they touch
    moves by whether it counts now less whether it did before (the rows not changed as they
    are, the changed ones as they were). Not row triggers: PostgreSQL runs those after the
    whole statement, each seeing every row already changed."""
    key, person, counts = _DISTINCT[table]
    before = " OR ".join([
        _other(table, "p.person", "p.ancestor_id", besides="o.id NOT IN (SELECT unnest(ids))"),
        _other(table, "p.person", "p.ancestor_id", besides="TRUE", rows="moved_old")])
    parts = [f"SELECT p.ancestor_id AS node_id, '{key}' AS key, "
             f"({_other(table, 'p.person', 'p.ancestor_id', besides='TRUE')})::int "
             f"- ({before})::int AS v FROM pairs p"]
    if table == "tenant_stay":
        parts += [f"SELECT a.ancestor_id, 'stays', {sign}count(*) FROM {rows} r "
                  f"CROSS JOIN LATERAL ({_ancestors('r.node_id')}) a GROUP BY a.ancestor_id"
                  for sign, rows in (("-", "moved_old"), ("", "moved"))]
    return f"""
  WITH moved AS MATERIALIZED (SELECT * FROM {_rows(table)}),
  moved_old AS MATERIALIZED (SELECT * FROM {_rows(table, 'old_')}),
  pairs AS (
    SELECT DISTINCT r.person, a.ancestor_id FROM (
      SELECT {person} AS person, node_id FROM moved_old o WHERE {counts.format(x='o')}
      UNION ALL SELECT {person}, node_id FROM moved o WHERE {counts.format(x='o')}) r
    CROSS JOIN LATERAL ({_ancestors('r.node_id')}) a
  ){_PG_UPSERT.format(parts=" UNION ALL ".join(parts))}"""


def _pg_collect(table: str, event: str) -> str:
    """The first step of each PostgreSQL trigger: the rows that may move a figure, from the
    transition tables into arrays. The statements after it read only the arrays and the
    tables, so PL/pgSQL keeps their plans (a statement naming a transition table was planned
    again on each call: 1 ms for every return)."""
    _key, person, counts = _DISTINCT[table]
    column = _COLUMN[table][0]
    if event == "update":
        changed = _pg_changed(table).replace("OLD.", "o.").replace("NEW.", "w.")
        return (f"\n  SELECT array_agg(w.id), array_agg(w.{person}), array_agg(w.node_id), "
                f"array_agg(w.{column}), array_agg(o.{person}), array_agg(o.node_id), "
                f"array_agg(o.{column}) INTO ids, persons, nodes, vals, old_persons, "
                f"old_nodes, old_vals FROM old_rows o JOIN new_rows w ON w.id = o.id "
                f"WHERE {changed};")
    rows = "new_rows" if event == "insert" else "old_rows"
    # A membership moves a figure only as a landlord's (a tenant's return adds one).
    where = f" WHERE {counts.format(x='r')}" if table == "membership" else ""
    return (f"\n  SELECT array_agg(id), array_agg({person}), array_agg(node_id), "
            f"array_agg({column}) INTO ids, persons, nodes, vals FROM {rows} r{where};")


def _pg_function(name: str, table: str, event: str, body: str) -> str:
    kind = _COLUMN[table][1]
    declare = f"  ids int[];\n  persons int[];\n  nodes int[];\n  vals {kind}[];\n"
    if event == "update":
        declare += f"  old_persons int[];\n  old_nodes int[];\n  old_vals {kind}[];\n"
    # One plan per statement, made once per connection: a custom plan (the planner's
    # choice while the arrays' sizes are known) was made again on every call, 3.8 ms.
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
            f"SET plan_cache_mode = force_generic_plan AS $$\n"
            f"DECLARE\n{declare}BEGIN{_pg_collect(table, event)}\n"
            f"  IF ids IS NULL THEN\n    RETURN NULL;\n  END IF;{body}\n"
            "  RETURN NULL;\nEND\n$$")


def _pg_triggers() -> list[str]:
    out = []
    for table in _DISTINCT:
        name = f"subtree_figure_{table}"
        out += [
            _pg_function(f"{name}_insert", table, "insert", _pg_statement(table, "+")),
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {name}_insert()",
            _pg_function(f"{name}_delete", table, "delete", _pg_statement(table, "-")),
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {name}_delete()",
            _pg_function(f"{name}_update", table, "update", _pg_update(table)),
            f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {name}_update()",
        ]
    out += [
        "CREATE FUNCTION subtree_figure_node_moved() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  DELETE FROM subtree_figure;\n  {_REBUILD};\n  RETURN NULL;\nEND\n$$",
        "CREATE TRIGGER subtree_figure_node_moved AFTER UPDATE OF parent_id ON node "
        "FOR EACH ROW WHEN (OLD.parent_id IS DISTINCT FROM NEW.parent_id) "
        "EXECUTE FUNCTION subtree_figure_node_moved()",
    ]
    return out


def _pg_changed(table: str) -> str:
    return _CHANGED[table].replace(" IS NOT ", " IS DISTINCT FROM ")


def _rebuild() -> str:
    """Every figure from the rows (the backfill; a moved node's rebuild). The same aggregate
    as bot.services.stats.REBUILD_FIGURES."""
    parts = []
    for table, (key, person, counts) in _DISTINCT.items():
        pairs = " UNION ALL ".join(
            f"SELECT r.{person} AS person, {c} AS node_id FROM {table} r "
            f"JOIN node n0 ON n0.id = r.node_id {_joins('n')} "
            f"WHERE {counts.format(x='r')} AND {c} IS NOT NULL" for c in _columns("n"))
        parts.append(f"SELECT node_id, '{key}', count(DISTINCT person) FROM ({pairs}) {key} "
                     "GROUP BY node_id")
    pairs = " UNION ALL ".join(
        f"SELECT {c} AS node_id FROM tenant_stay r JOIN node n0 ON n0.id = r.node_id "
        f"{_joins('n')} WHERE {c} IS NOT NULL" for c in _columns("n"))
    parts.append(f"SELECT node_id, 'stays', count(*) FROM ({pairs}) stays GROUP BY node_id")
    return ("INSERT INTO subtree_figure (node_id, key, value) "
            + " UNION ALL ".join(parts))


_REBUILD = _rebuild()


def upgrade() -> None:
    op.create_table(
        "subtree_figure",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "key", name=op.f("pk_subtree_figure")),
    )
    op.execute(_REBUILD)
    pg = op.get_bind().dialect.name == "postgresql"
    for statement in _pg_triggers() if pg else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    names = [f"subtree_figure_{table}_{event}" for table in _DISTINCT
             for event in ("insert", "delete", "update")] + ["subtree_figure_node_moved"]
    for name in names:
        on = "node" if name.endswith("moved") else name[len("subtree_figure_"):].rsplit("_", 1)[0]
        if pg:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {on}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("subtree_figure")
