"""People, their platform contact ids, their roles per node, and invite codes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime


class Role(StrEnum):
    """What a person is at a node."""

    COMMANDER = "commander"
    MEMBER = "member"
    SECRETARY = "secretary"
    LANDLORD = "landlord"
    TENANT = "tenant"
    CAPTAIN = "captain"
    # An enterprise's liaison (联络员) and a key project's task force lead (专班负责人).
    LIAISON = "liaison"
    PROJECT_LEAD = "project_lead"


class Person(Base):
    """A person known to the chain; mobile and ID number are sensitive and never stored whole.

    Each number is kept three ways (see bot/crypto.py, bot/services/personal.py): `*_enc` the
    AES-GCM sealed value bound to this row (opened only by personal.reveal, which logs it),
    `*_bidx` its keyed hash for look-ups, `*_mask` the masked form replies and the API show.
    A new row gets its sealed values after the flush that gives it its id."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    mobile_enc: Mapped[str | None] = mapped_column(Text)
    mobile_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    mobile_mask: Mapped[str | None] = mapped_column(String(16))
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_number_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_mask: Mapped[str | None] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contact(Base):
    """A platform contact id that identifies a person (display names never do)."""

    __tablename__ = "contact"
    __table_args__ = (UniqueConstraint("transport", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    transport: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship(lazy="raise")


class Membership(Base):
    """A role a person holds at a node."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("person_id", "node_id", "role"),
        # 积分's counted rank looks for registrations dated after now (see points.standing);
        # not led by role, which the planner would pick over person_id for one person's roles.
        Index("ix_membership_created_at", "created_at"),
        # The holders of a role at a node (a return's landlords) by one seek; serves node_id.
        Index("ix_membership_node_id_role", "node_id", "role"),
        # A person's roles by one seek; in person order, covering, it is also what 统计
        # counts a city's landlords from (distinct persons without a sort).
        Index("ix_membership_person_id", "person_id", "role", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InviteKind(StrEnum):
    """An invite binds a person to a role at a node, or a chat room to a node."""

    PERSON = "person"
    GROUP = "group"


class InviteCode(Base):
    """A short single-use code a commander hands out; it expires."""

    __tablename__ = "invite_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    role: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(String(128))
    # A group invite's binding: the channel that will send to the room it binds ("" = the
    # account that saw the code) and the fallback ("" = none).
    channel: Mapped[str] = mapped_column(String(64), default="", server_default="")
    fallback: Mapped[str] = mapped_column(String(64), default="", server_default="")
