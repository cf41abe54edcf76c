"""The access log: who revealed or erased whose personal data, or exported a report of a
subtree, why and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class AccessAction(StrEnum):
    """What was done to a person's data."""

    REVEAL = "reveal"  # a number decrypted for display
    FORGET = "forget"  # the person anonymised (PIPL Art. 47)
    EXPORT = "export"  # a report of a subtree written out (field: which report)


class AccessLog(Base):
    """One access to personal data, written in the transaction that made it."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Who asked: "cli", "api:<token name>", "person:<id>" (never a number or a name).
    who: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    # Whose data (reveal, forget); None for an export, which covers a subtree (node_id).
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    # The scope of an export: the root of the subtree it covered.
    node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"))
    # "mobile", "id_number"; None: all; for an export, which report ("stats", "lists", "watch").
    field: Mapped[str | None] = mapped_column(String(16))
    why: Mapped[str] = mapped_column(String(200))
