"""bulk lock: a transaction that changes many persons' rows takes one lock, not one each

Revision ID: 0023_bulk_lock
Revises: 0022_counter_shards
Create Date: 2026-12-01 07:00:00

Since 0021_figure_locks each PostgreSQL figure trigger locks every person of its rows (an
advisory lock each, held to the end of the transaction). A chain import of 20,000 landlords
writes 20,000 memberships in one statement: it asked for 20,000 locks, more than the
server's whole lock table holds (max_locks_per_transaction × max_connections: 6,400 with the
defaults), and failed with "out of shared memory".

Now the locks are in two levels, under one lock named `bulk`. Until a transaction's
statements have had more than BULK persons in all (counted in a setting local to the
transaction), each takes `bulk` shared, then its persons' locks as before; from then on the
transaction holds `bulk` exclusive (`tierbot.bulk` says so, local to it) and takes no
person's lock (a writer's many pages of rows). Two transactions that change one person's
rows still take turns: both on that person's lock, or one of them on `bulk` exclusive, which
waits for every other transaction holding it shared to end and holds back new ones until its
own ends. Ordinary transactions share `bulk` and never wait for each other on it. Two
transactions that both pass 1,000 persons at once may each wait for the other's shared hold:
PostgreSQL ends one as a deadlock (the pipeline runs such a batch again).

The named locks of bot/services/locks.py (a mobile's before a look-up that may create a
person, a shop row's day, a weekly cap, …) go the same way: `tierbot_lock(key)` takes `bulk`
shared, then the key's lock. `tierbot_bulk_lock()` takes `bulk` exclusive: `tierbot chain
import` takes it first, so no check-then-write in chat runs beside an import's look-ups and
creations (bench/LANES.md, F1: an import's person and a return's for one mobile were two).

The trigger functions are the live ones with 0021's statement replaced (each replacement
checked: a function that does not read as expected stops the migration). SQLite has one
writer at a time: nothing changes there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = '0023_bulk_lock'
down_revision = '0022_counter_shards'
branch_labels = None
depends_on = None

# Persons a transaction may lock one by one; past them it takes the bulk lock.
BULK = 1000
BULK_KEY = "hashtextextended('bulk', 0)"
_FUNCTIONS = (
    # A named lock (bot/services/locks.py) under `bulk` shared; nothing more in a transaction
    # that holds `bulk` exclusive.
    f"""CREATE FUNCTION tierbot_lock(key text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('tierbot.bulk', true) IS DISTINCT FROM 'on' THEN
    PERFORM pg_advisory_xact_lock_shared({BULK_KEY});
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended(key, 0));
END
$$""",
    # `bulk` exclusive, to the end of the transaction.
    f"""CREATE FUNCTION tierbot_bulk_lock() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock({BULK_KEY});
  PERFORM set_config('tierbot.bulk', 'on', true);
END
$$""",
)
_TABLES = ("membership", "tenant_stay")
_EVENTS = ("insert", "delete", "update")


def _figure_locks() -> ModuleType:
    """Migration 0021_figure_locks, whose `_lock` made the statement replaced here."""
    spec = importlib.util.spec_from_file_location(
        "tierbot_migration_0021_figure_locks", Path(__file__).with_name("0021_figure_locks.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _locks(event: str, persons_lock: str) -> str:
    """The two-level lock: `persons_lock` (0021's statement) under `bulk` shared, or `bulk`
    exclusive once the transaction's statements have had more than BULK persons (counted in
    `tierbot.figure_persons`, local to the transaction)."""
    count = "coalesce(cardinality(persons), 0)" + (
        " + coalesce(cardinality(old_persons), 0)" if event == "update" else "")
    return (
        "\n  IF current_setting('tierbot.bulk', true) IS DISTINCT FROM 'on' THEN"
        "\n    DECLARE"
        "\n      locked int := coalesce(nullif(current_setting('tierbot.figure_persons', true),"
        f" '')::int, 0) + {count};"
        "\n    BEGIN"
        f"\n      IF locked > {BULK} THEN"
        "\n        PERFORM tierbot_bulk_lock();"
        "\n      ELSE"
        "\n        PERFORM set_config('tierbot.figure_persons', locked::text, true);"
        f"\n        PERFORM pg_advisory_xact_lock_shared({BULK_KEY});"
        f"\n      {persons_lock.strip()}"
        "\n      END IF;"
        "\n    END;"
        "\n  END IF;")


def _rewrite(*, upgrade: bool) -> None:
    old_lock = _figure_locks()._lock
    bind = op.get_bind()
    for table in _TABLES:
        for event in _EVENTS:
            function = f"subtree_figure_{table}_{event}"
            before, after = old_lock(event), _locks(event, old_lock(event))
            if not upgrade:
                before, after = after, before
            source = bind.execute(sa.text("SELECT pg_get_functiondef(to_regproc(:f))"),
                                  {"f": function}).scalar_one()
            if source is None or source.count(before) != 1:
                raise RuntimeError(f"{function}: expected one {before!r}")
            op.execute(source.replace(before, after))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in _FUNCTIONS:
            op.execute(function)
        _rewrite(upgrade=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(upgrade=False)
        op.execute("DROP FUNCTION tierbot_bulk_lock()")
        op.execute("DROP FUNCTION tierbot_lock(text)")
