"""Tenant stays (a return and its home watch) and their temperature readings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime
from models.person import Person


class TenantStay(Base):
    """A tenant's return to a landlord's place and the home watch that follows it."""

    __tablename__ = "tenant_stay"
    __table_args__ = (
        # A tenant's stays by one seek; in tenant order, covering, it is also what 统计 counts
        # a city's registered tenants from (distinct tenants without a sort).
        Index("ix_tenant_stay_tenant_id", "tenant_id", "ended_at", "created_at"),
        # The latest end of a stay (whether 统计's kept figures are a day's): only the ended
        # ones, so that a look-up of a tenant's live stays never takes it for that.
        Index("ix_tenant_stay_ended_at", "ended_at", sqlite_where=text("ended_at IS NOT NULL"),
              postgresql_where=text("ended_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    landlord_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    flat_id: Mapped[int | None] = mapped_column(ForeignKey("flat.id"))
    origin: Mapped[str | None] = mapped_column(String(100))
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)
    watch_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the tenant announced it and when the landlord registered it (issue: late reports).
    self_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    landlord_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fever: Mapped[bool] = mapped_column(default=False)
    # The tenancy ended (退租, 移除): the stay is history, no longer listed or read into.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 统计's returns of a day and in total: an index range, not every stay.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    tenant: Mapped[Person] = relationship(foreign_keys=[tenant_id], lazy="raise")


class TemperatureReading(Base):
    """One temperature reading during a home watch."""

    __tablename__ = "temperature_reading"

    id: Mapped[int] = mapped_column(primary_key=True)
    stay_id: Mapped[int] = mapped_column(ForeignKey("tenant_stay.id"), index=True)
    value: Mapped[float] = mapped_column(Float)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
