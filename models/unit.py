"""Enterprises (一企一档, 一人一卡, 企业日报) and key projects (每日工作卡): their files,
worker cards, readings and daily reports. Mobiles and ID numbers live only on Person rows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class EnterpriseStatus(StrEnum):
    """Where an enterprise is in reopening (复工)."""

    CLOSED = "closed"  # 未复工
    FILED = "filed"  # 已备案, waiting to reopen
    REOPENED = "reopened"  # 已复工


class Enterprise(Base):
    """One file per enterprise (一企一档), kept with its chain node."""

    __tablename__ = "enterprise"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), unique=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    # The liaison on file (name and mobile on the Person row, so the mobile is encrypted).
    liaison_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    headcount: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=EnterpriseStatus.CLOSED)
    reopened_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerHealth(StrEnum):
    """A worker's health status on their card."""

    NORMAL = "normal"
    FEVER = "fever"
    ISOLATED = "isolated"  # 隔离 (not only home watch)


class WorkerCard(Base):
    """One card per worker (一人一卡): who (a Person), from where, back when, which group."""

    __tablename__ = "worker_card"
    __table_args__ = (UniqueConstraint("enterprise_node_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    # The workshop or dormitory group (a workgroup node below the enterprise), if any.
    workgroup_node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    origin: Mapped[str | None] = mapped_column(String(100))
    returned_on: Mapped[date | None] = mapped_column(Date)
    # Home watch (居家观察) after coming back from elsewhere; None: none.
    watch_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    health: Mapped[str] = mapped_column(String(16), default=WorkerHealth.NORMAL)
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerReading(Base):
    """One temperature reading of a worker (their own, or the liaison's for them)."""

    __tablename__ = "worker_reading"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("worker_card.id"), index=True)
    value: Mapped[float] = mapped_column(Float)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))


class DailyRow:
    """Columns of a unit's one row per day: whose node, which day, who wrote it from which
    message, when (a second one that day corrects the first)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    day: Mapped[date] = mapped_column(Date, index=True)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EnterpriseReport(DailyRow, Base):
    """企业日报: one per enterprise and day."""

    __tablename__ = "enterprise_report"
    __table_args__ = (UniqueConstraint("node_id", "day"),)

    on_duty: Mapped[int]
    returned: Mapped[int]
    isolated: Mapped[int]
    anomalies: Mapped[int]


class WorkCard(DailyRow, Base):
    """每日工作卡 of a key project: one per project and day."""

    __tablename__ = "work_card"
    __table_args__ = (UniqueConstraint("node_id", "day"),)

    on_site: Mapped[int]
    arrivals: Mapped[int]
    anomalies: Mapped[int]
    # Materials short and problems to solve, numbers masked.
    problems: Mapped[str] = mapped_column(Text, default="")
