"""figure locks: 统计's figure triggers take each changed row's person's lock first

Revision ID: 0021_figure_locks
Revises: 0020_figures
Create Date: 2026-12-01 01:45:00

A distinct count (landlords, tenants) moves at an ancestor only where the person has no other
counting row under it (0020_figures). That check sees committed rows only: two transactions
at once, each ending one of a tenant's two stays under one team (or each taking one of a
person's two landlord roles), each saw the other's row still counting, and neither took the
person out; the figures stayed one too high until rebuilt (bench/LANES.md, F3). The
pipelines of two `tierbot run` processes on one database run such transactions side by side.

Now each PostgreSQL trigger function locks the persons of its rows (a transaction-level
advisory lock per person, in id order) before it checks: the second transaction waits until
the first has committed, and its check, a later statement, sees the first's change. The
functions are 0020's, with that one statement added (its generator is loaded from there, so
the two cannot drift). SQLite has one writer at a time: nothing changes there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = '0021_figure_locks'
down_revision = '0020_figures'
branch_labels = None
depends_on = None


def _figures() -> ModuleType:
    """Migration 0020_figures, whose generator makes the trigger functions."""
    spec = importlib.util.spec_from_file_location(
        "tierbot_migration_0020_figures", Path(__file__).with_name("0020_figures.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lock(event: str) -> str:
    """Lock each person of the collected rows (an update's old persons too), in id order."""
    persons = "SELECT unnest(persons) AS p" + (
        " UNION SELECT unnest(old_persons)" if event == "update" else "")
    return ("\n  PERFORM pg_advisory_xact_lock(hashtextextended('figure-person:' || p, 0)) "
            f"FROM (SELECT p FROM ({persons}) u WHERE p IS NOT NULL ORDER BY p) persons;")


def _functions(*, locked: bool) -> list[str]:
    figures = _figures()
    out = []
    for table in figures._DISTINCT:
        for event, body in (("insert", figures._pg_statement(table, "+")),
                            ("delete", figures._pg_statement(table, "-")),
                            ("update", figures._pg_update(table))):
            name = f"subtree_figure_{table}_{event}"
            made = figures._pg_function(name, table, event,
                                        (_lock(event) if locked else "") + body)
            assert made.startswith("CREATE FUNCTION ")
            out.append("CREATE OR REPLACE FUNCTION " + made[len("CREATE FUNCTION "):])
    return out


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _functions(locked=True):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _functions(locked=False):
            op.execute(statement)
