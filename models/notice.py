"""Notices down the chain, their schedules, reads, the bot's echoes and the sending accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Notice(Base):
    """A commander's notice; one outbox row per target group carries its delivery."""

    __tablename__ = "notice"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    origin_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    origin_group_id: Mapped[int | None] = mapped_column(ForeignKey("chat_group.id"))
    text: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"down_to_tier": 3} / {"subtree": node id} / {"kinds": [...]}: how the targets were chosen.
    scope: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    target_count: Mapped[int] = mapped_column(default=0)
    # A fire time of a schedule that was missed (downtime past the grace window): no deliveries.
    missed: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("notice_schedule.id"))
    fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NoticeRead(Base):
    """A 收到 from someone other than the group's responsible person: counted as a read."""

    __tablename__ = "notice_read"
    __table_args__ = (UniqueConstraint("notice_id", "group_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("chat_group.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class NoticeSchedule(Base):
    """定时通知 / 每天 … 通知 / recurring notices from the config: when, what, to whom."""

    __tablename__ = "notice_schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    origin_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    origin_group_id: Mapped[int | None] = mapped_column(ForeignKey("chat_group.id"))
    text: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    daily: Mapped[bool] = mapped_column(Boolean, default=False)
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # once
    hour: Mapped[int | None]  # daily, local time
    minute: Mapped[int | None]
    # Recurring notices from the config file are keyed, so a restart updates instead of adding.
    config_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Echo(Base):
    """The bot's own message as the platform echoed it back: proof that a send went out."""

    __tablename__ = "echo"
    __table_args__ = (Index("ix_echo_room_digest", "transport", "room_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transport: Mapped[str] = mapped_column(String(32))
    room_id: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class BotAccount(Base):
    """A sending account's durable pacing state (a rate-limit pause survives a restart)."""

    __tablename__ = "bot_account"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_rate_limited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The account's last send (a reply leaves no outbox row): a restart keeps the gap.
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of a scheduled job for one key (e.g. a day's roll-up): a second run is a no-op."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
