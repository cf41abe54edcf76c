"""Console logins: a password per person of the chain (or an operator's superuser login),
server-side sessions, one-time set-up links, and the attempts that drive the lockout."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class ConsoleLogin(Base):
    """Who may log in to the web console: a person of the chain (sees their subtrees, like
    their API token would) or a superuser (an operator; sees everything). The password is
    kept only as an Argon2 hash; None until the set-up link is used."""

    __tablename__ = "console_login"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    superuser: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """One logged-in browser. The cookie holds a random id (signed); only its SHA-256 is kept
    here, so a copy of the database opens no session. Ends on logout, after `idle` without a
    request, or at `expires_at` whatever the activity."""

    __tablename__ = "console_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("console_login.id"), index=True)
    # Sent back with every POST (form field or X-CSRF-Token header); random per session.
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleInvite(Base):
    """A one-time link where a login's owner sets the password: kept as the token's SHA-256,
    expires, and used once."""

    __tablename__ = "console_invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("console_login.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleAttempt(Base):
    """A failed password: counted per username and per client address for the lockout, and
    purged once older than the lockout window."""

    __tablename__ = "console_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
