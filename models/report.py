"""Landlord reports (房东上报), each with the message it came from as evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class ReportKind(StrEnum):
    """The kinds of 房东上报."""

    RETURN = "return"
    DISINFECT = "disinfect"
    ERRAND = "errand"
    VIOLATION = "violation"
    MEDIATION = "mediation"


class LandlordReport(Base):
    """What a landlord reported; `detail` keeps the message text with numbers masked."""

    __tablename__ = "landlord_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    landlord_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    stay_id: Mapped[int | None] = mapped_column(ForeignKey("tenant_stay.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
