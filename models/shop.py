"""Shops of a specialty-street row, looked after by a shop-row captain (铺长): the shops, the
captain's daily check-ins (per row and per shop) and reopening registrations (复工登记)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Shop(Base):
    """One shop (商位) in a captain's row."""

    __tablename__ = "shop"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    is_open: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShopPatrol(Base):
    """A row's check-in of one day (巡查 10家 营业3家 无异常): what the captain reported for the
    row as a whole; several messages of a day add up into one row."""

    __tablename__ = "shop_patrol"
    __table_args__ = (UniqueConstraint("node_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    checked: Mapped[int] = mapped_column(default=0)
    opened: Mapped[int] = mapped_column(default=0)
    staff: Mapped[int] = mapped_column(default=0)
    disinfected: Mapped[bool] = mapped_column(default=False)
    fevers: Mapped[int] = mapped_column(default=0)
    # What the captain wrote as problems (numbers masked), one per line.
    problems: Mapped[str] = mapped_column(Text, default="")
    by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShopCheckin(Base):
    """One shop on one day: open or closed, staff on site, their readings, disinfection."""

    __tablename__ = "shop_checkin"
    __table_args__ = (UniqueConstraint("shop_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shop.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    is_open: Mapped[bool | None]
    staff: Mapped[int | None]
    # The staff's readings as written, "36.5,36.7"; the highest one kept apart for queries.
    readings: Mapped[str] = mapped_column(String(200), default="")
    max_reading: Mapped[float | None] = mapped_column(Float)
    fever: Mapped[bool] = mapped_column(default=False)
    disinfected: Mapped[bool | None]
    by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReopeningStatus(StrEnum):
    """Where a reopening registration stands: the captain confirms, the community decides."""

    CAPTAIN = "captain"  # registered by the owner, waiting for the captain's 复工确认
    REVIEW = "review"  # confirmed, waiting for the community's 复工审核
    APPROVED = "approved"
    REJECTED = "rejected"


class ShopReopening(Base):
    """A reopening registration (复工登记). The owner is a Person (their mobile lives there,
    under the encryption of personal data at rest), never a column of this table."""

    __tablename__ = "shop_reopening"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shop.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    staff: Mapped[int]
    staff_from_elsewhere: Mapped[int] = mapped_column(default=0)
    supplies: Mapped[str] = mapped_column(String(200), default="")
    committed: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
