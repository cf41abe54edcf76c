"""Wrong invite codes per contact, counted to limit guessing (survives a restart)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class InviteAttempt(Base):
    """One wrong invite code from one contact; a message delivered twice counts once. The
    code itself is not kept (it may be a number typed by mistake)."""

    __tablename__ = "invite_attempt"
    __table_args__ = (
        UniqueConstraint("transport", "message_id"),
        Index("ix_invite_attempt_contact_at", "transport", "contact_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transport: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
