"""Tickets (反馈): a problem raised in a group, answered one tier up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Ticket(Base):
    """A numbered problem report going up the chain, and its answer coming back down."""

    __tablename__ = "ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("chat_group.id"))
    target_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    asker_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    text: Mapped[str] = mapped_column(Text)  # numbers masked
    status: Mapped[str] = mapped_column(String(16), default="open")
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
