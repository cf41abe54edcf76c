"""The watchdog's durable state per sending account: what it concluded, which problems were
alerted in the current episode, the self-test in flight and the failover it did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class AccountWatch(Base):
    """One account's health as the last watchdog run saw it. A restart reads this row back:
    a problem already alerted is not alerted again, a failover already done is not redone."""

    __tablename__ = "account_watch"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "ok" | "degraded" | "down" (bot.channels.base.Health values).
    health: Mapped[str] = mapped_column(String(16), default="ok")
    # The problems seen now ("silent", "self_test_failed", ...), and since when the account
    # has not been ok (None while ok).
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Since when the account has been DOWN (failover waits `failover_after_minutes`).
    down_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Since when it has been ok again after groups were moved away (failback waits).
    ok_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")
    # The problems an alert went out for in this episode (one alert per problem and episode;
    # the recovery message when the list empties).
    alerted: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The last inbound message (not the bot's own) seen on the account.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The self-test in flight: its text (its echo is looked up by digest), when it was queued,
    # its outbox row; and when the last self-test came back.
    probe_text: Mapped[str] = mapped_column(String(200), default="")
    probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    probe_row_id: Mapped[int | None]
    probe_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    probe_failed: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
