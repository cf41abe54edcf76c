"""The outbox: every message the bot sends to a group other than a direct reply.

A notice's delivery to a group is one outbox row (unique per notice and group) that also
carries the group's acknowledgement, reminder and escalation state.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime

REPLY_WHERE = "status = 'pending' AND source = 'reply'"
RETRY_WHERE = "status = 'pending' AND next_attempt_at IS NOT NULL"


class OutboxStatus(StrEnum):
    """Where a row is in its delivery: pending -> sending -> sent (or failed)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(Base):
    """A text queued for one group; the sender claims it, marks it sending, then sent."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        # The claim: pending rows of one account, urgent first, oldest first (no sort step).
        Index("ix_outbox_message_claim", "status", "account", text("urgent DESC"), "id"),
        # Sent rows only: a fan-out's new rows (sent_at NULL) add no entry here.
        Index("ix_outbox_message_account_sent_at", "account", "sent_at",
              sqlite_where=text("sent_at IS NOT NULL"),
              postgresql_where=text("sent_at IS NOT NULL")),
        # The reply claim: an account's pending replies, oldest first (replies go first).
        Index("ix_outbox_message_reply", "account", "id",
              sqlite_where=text(REPLY_WHERE), postgresql_where=text(REPLY_WHERE)),
        # The sender's next retry time: pending rows with one only (a fan-out's new rows and
        # sent rows add no entry).
        Index("ix_outbox_message_retry", "account", "next_attempt_at",
              sqlite_where=text(RETRY_WHERE), postgresql_where=text(RETRY_WHERE)),
        UniqueConstraint("notice_id", "group_id"),
        # SQLite only. On PostgreSQL triggers check the group per statement (migration
        # 0017_pgreads): the per-row key check was a third of a 10,000-group fan-out there.
        ForeignKeyConstraint(["group_id"], ["chat_group.id"],
                             name="fk_outbox_message_group_id_chat_group").ddl_if(
                                 dialect="sqlite"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None only for a reply in a room not bound to a group (then room_id and transport say
    # where it goes).
    group_id: Mapped[int | None] = mapped_column(index=True)
    room_id: Mapped[str | None] = mapped_column(String(128))
    transport: Mapped[str | None] = mapped_column(String(32))
    # A notice's rows carry no text of their own: it is rendered from the notice when sent.
    # Look-ups by notice use the unique (notice_id, group_id): no index of its own. No foreign
    # key either: the notice is written just before its rows in the same transaction, and the
    # check per row was a third of a 10,000-group fan-out on PostgreSQL.
    notice_id: Mapped[int | None]
    text: Mapped[str | None] = mapped_column(Text)
    # The bot account that sends it (the group's account at the time it was queued).
    account: Mapped[str] = mapped_column(String(64), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    mentions: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    attempt_id: Mapped[str | None] = mapped_column(String(36))
    attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # A failed attempt waits until then before the next (backoff).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sent again after a crash without proof of the first send (marked 补发 in the text).
    resend: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Notice rows only: the responsible person's 收到, the reminder, the escalation, a relay.
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by_id: Mapped[int | None]  # who acknowledged (no foreign key: checked per row)
    # How the acknowledgement came: "chat" (收到 in the group), "link" (the signed one-click
    # link, by the group as a whole: acked_by_id stays empty), "wechat" (a 收到 #id from the
    # group's responsible person elsewhere); None while unacknowledged or before 0016.
    acked_via: Mapped[str | None] = mapped_column(String(16))
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    relayed: Mapped[bool] = mapped_column(Boolean, default=False)



class NoticeProgress(Base):
    """Per notice and tier of its target groups: rows, sent, failed and acknowledged.

    Kept by database triggers on outbox_message (migration 0017_pgreads) whoever writes the
    rows, never written by the application; 进度 reads these instead of aggregating a city's
    100,000 rows. Each key's rows summed over their shards equal
    `bot.services.notice.REBUILD_PROGRESS`'s aggregate at all times.
    """

    __tablename__ = "notice_progress"

    # No foreign key: derived rows, like points_total.
    notice_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tier: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # Which connection's share this row is (migration 0022_counter_shards): the counts are
    # the sums of the key's rows.
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False,
                                       server_default="0")
    total: Mapped[int]
    sent: Mapped[int]
    failed: Mapped[int]
    acked: Mapped[int]
    # At most the smallest id of the notice's rows of this tier (a row's id, kept with LEAST on
    # insert and on a row moved in; deletes leave it; the least of the key's shards): 进度
    # walks the rows from there.
    first_id: Mapped[int | None]
