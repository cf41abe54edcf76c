"""Buildings (one building is one grid) and the flats a landlord is responsible for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Building(Base):
    """A rented building under a landlord's tier-5 node."""

    __tablename__ = "building"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    landlord_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Flat(Base):
    """A room or flat in a building (e.g. 302)."""

    __tablename__ = "flat"
    __table_args__ = (UniqueConstraint("building_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"), index=True)
    label: Mapped[str] = mapped_column(String(32))
