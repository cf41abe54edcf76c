"""Which process drives each sending account: one lease row per account with a fencing epoch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class AccountLease(Base):
    """One sending account's current holder. A holder renews `expires_at` while it runs; once
    it has expired another process takes the account over and adds one to `epoch`. Every
    statement that marks outbox rows of the account checks the epoch its writer holds, so a
    stale holder's marks change nothing."""

    __tablename__ = "account_lease"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The holding process (host, pid and a random part; a new one at every start).
    holder: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(default=1)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
