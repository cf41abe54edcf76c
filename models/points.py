"""The landlords' 12-point system: the ledger of points events and the closed weeks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class PointsStatus(StrEnum):
    """Where an event is in its verification."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPEALED = "appealed"


class PointsEvent(Base):
    """One ledger row: a landlord's points change under a rule, with its evidence.

    (source_kind, source_key) is unique: one report, one stay, one landlord-day, one message
    can make at most one event, however often it is delivered or a job runs.
    """

    __tablename__ = "points_event"
    __table_args__ = (
        UniqueConstraint("source_kind", "source_key"),
        # The ranking reads ranges of time (the week, what happened after a week's end) on
        # top of PointsTotal; a landlord's own events by time (积分, caps).
        Index("ix_points_event_occurred", "counts", "occurred_at", "landlord_id", "delta"),
        Index("ix_points_event_decided", "counts", "decided_at", "landlord_id", "delta",
              "occurred_at"),
        Index("ix_points_event_landlord", "landlord_id", "occurred_at", "counts", "delta"),
        Index("ix_points_event_status_node", "status", "node_id"),
        # 待核查: one community's pending and appealed events, oldest first.
        Index("ix_points_event_scope2", "scope2_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    landlord_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # The landlord's tier-5 node the event belongs to (its tier-2 node's secretary verifies).
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    # The node's tier-2 ancestor (the community whose secretary verifies): set by a database
    # trigger on insert and on a change of node (migration 0017_pgreads), never by the
    # application; NULL above tier 2.
    scope2_id: Mapped[int | None]
    rule: Mapped[str] = mapped_column(String(32))
    delta: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=PointsStatus.PENDING)
    # Whether the delta is in the score now: approved, or appealed from an approval (an
    # appeal does not suspend the decision).
    counts: Mapped[bool] = mapped_column(Boolean, default=False)
    source_kind: Mapped[str] = mapped_column(String(24))
    source_key: Mapped[str] = mapped_column(String(64))
    # The message text (numbers masked) or the facts of an automatic event.
    evidence: Mapped[str] = mapped_column(Text, default="")
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("landlord_report.id"))
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    appeal_reason: Mapped[str | None] = mapped_column(Text)
    appealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the conduct happened: the week it belongs to.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsWeek(Base):
    """A closed week of one ranking scope (a tier-1 or tier-2 node): closing twice is a no-op."""

    __tablename__ = "points_week"
    __table_args__ = (UniqueConstraint("week", "scope_node_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8))  # ISO week, "2020-W09"
    scope_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    landlords: Mapped[int] = mapped_column(default=0)
    posted: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The partial indexes' conditions; queries that use them say exactly this (SQLite only uses a
# partial index for a query whose WHERE contains its condition).
BOARD_WHERE = "board <> ''"
REWARD_WHERE = "reward_points > 0"


class PointsStanding(Base):
    """A landlord's place in a closed week: score, the tie-break figures, list and reward."""

    __tablename__ = "points_standing"
    __table_args__ = (
        # A week's ranks, each given once; the close writes the rows in this order, so every
        # entry goes to the end of the index (keyed by landlord it went to a random page for
        # each of 1,000,000 rows). Serves the export and the API (a week by scope and rank).
        UniqueConstraint("week_id", "rank"),
        # The few rows the lists (by week) and the good-person candidates (board 'red') read.
        Index("ix_points_standing_board", "week_id", "rank",
              sqlite_where=text(BOARD_WHERE), postgresql_where=text(BOARD_WHERE)),
        # 奖励: a landlord's rewarded weeks (the rows with reward points only).
        Index("ix_points_standing_reward", "landlord_id",
              sqlite_where=text(REWARD_WHERE), postgresql_where=text(REWARD_WHERE)),
    )

    # No foreign keys: standings are derived, written once by the close in one statement from
    # rows that exist, and the checks (3 per row) were most of the close's time at 100,000.
    id: Mapped[int] = mapped_column(primary_key=True)
    week_id: Mapped[int]
    landlord_id: Mapped[int]
    node_id: Mapped[int]
    rank: Mapped[int]
    score: Mapped[int]
    week_change: Mapped[int]
    deducted: Mapped[int]
    # "red" (五好房东), "black" (拖拉机房东) or "" (neither).
    board: Mapped[str] = mapped_column(String(8), default="")
    reward_points: Mapped[int] = mapped_column(default=0)
    reward_fen: Mapped[int] = mapped_column(default=0)


class PointsTotal(Base):
    """Per landlord: the counted deltas and deductions of all time, and where they are ranked.

    Kept by database triggers on points_event and membership (migration 0007), whoever writes
    those rows; never written by the application. `node_id` is the first tier-5 node (by id)
    where the person is a landlord, `scope2_id`/`scope1_id` its tier-2 and tier-1 ancestors,
    `registered_at` the first such registration; all NULL when the person is no landlord.
    """

    __tablename__ = "points_total"
    __table_args__ = (
        # 积分's rank: an indexed count of the landlords of a scope with a higher total.
        Index("ix_points_total_scope1", "scope1_id", "total", "deducted", "registered_at"),
        Index("ix_points_total_scope2", "scope2_id", "total", "deducted", "registered_at"),
    )

    landlord_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    total: Mapped[int] = mapped_column(default=0)
    deducted: Mapped[int] = mapped_column(default=0)
    node_id: Mapped[int | None]
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scope1_id: Mapped[int | None]
    scope2_id: Mapped[int | None]


class PointsScopeCount(Base):
    """How many landlords of a ranking scope have a given all-time total (PointsTotal rows
    placed there): `tier` 1 counts by `scope1_id`, 2 by `scope2_id`. Kept by triggers on
    points_total (migration 0012_speed2), never written by the application; 积分's rank sums
    the rows above a total instead of counting landlords. Rows may hold 0 (a shard's row,
    less than 0): a count is the sum of its key's shards."""

    __tablename__ = "points_scope_count"

    tier: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    scope_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    total: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # Which connection's share this row is (migration 0022_counter_shards): the count is the
    # sum of the key's rows.
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False,
                                       server_default="0")
    landlords: Mapped[int]
