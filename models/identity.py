"""Links waiting for the responsible person's word, and every removal of a role or contact."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class LinkStatus(StrEnum):
    """Where a link request stands."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class LinkRequest(Base):
    """A new contact claims to be a tenant the landlord registered (same mobile): linked only
    when the landlord confirms (确认 N), kept apart when he does not (不是 N)."""

    __tablename__ = "link_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    # The registered tenant the contact claims to be.
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    # The new, unconfirmed tenant record the contact got meanwhile.
    claimant_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    transport: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=LinkStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class RemovalKind(StrEnum):
    """What was taken away."""

    ROLE = "role"  # a membership (移除, people remove, chain import --prune)
    TENANCY = "tenancy"  # a tenant's membership and stay (退租)
    CONTACT = "contact"  # a contact id no longer identifies the person (people unlink)


class Removal(Base):
    """One removal: who lost what where, who took it away, when and why."""

    __tablename__ = "removal"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"))
    role: Mapped[str | None] = mapped_column(String(16))
    contact_id: Mapped[str | None] = mapped_column(String(128))
    # The person who removed it in chat; None for the CLI and the chain import (see `via`).
    by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    via: Mapped[str] = mapped_column(String(16))  # "chat", "cli", "import"
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
