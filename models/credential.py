"""Sending credentials of official channels (webhook URLs and keys, signing secrets, app ids and
secrets): sealed at rest, shown only masked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class ChannelCredential(Base):
    """One [[channels]] entry's secret: a JSON object of its fields, sealed with bot.crypto under
    associated data naming this table, column and row (a value copied to another row does not
    open); `mask` is what `tierbot channels list` shows."""

    __tablename__ = "channel_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The channel's name in [[channels]] (and in chat_group.account / fallback_account).
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    secret_enc: Mapped[str | None] = mapped_column(Text)
    mask: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        # Never the sealed value either (a log line is no place for ciphertext).
        return f"ChannelCredential(name={self.name!r}, kind={self.kind!r}, mask={self.mask!r})"
