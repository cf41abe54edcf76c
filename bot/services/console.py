"""Console logins: create them, set a password through a one-time link, check a password
with a lockout, and open, find and end server-side sessions.

Passwords are hashed with Argon2id (argon2-cffi's RFC 9106 low-memory profile); the set-up
link's token and the session id are 256 random bits, so (like API tokens) a SHA-256 of them is
enough to store and lets one indexed look-up find the row.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from models import ConsoleAttempt, ConsoleInvite, ConsoleLogin, ConsoleSession

# Tests swap in argon2.profiles.CHEAPEST (through `use_hasher`); production keeps the default.
_hasher = PasswordHasher()
# A hash of no one's password: an unknown login name costs as much time as a known one.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 10
MAX_PASSWORD = 256


def use_hasher(hasher: PasswordHasher) -> None:
    """Hash and verify with these parameters from now on (tests: a cheap profile)."""
    global _hasher, _DUMMY
    _hasher = hasher
    _DUMMY = hasher.hash(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    """What is stored of a session id or a set-up token."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def hash_password(password: str) -> str:
    """The Argon2 hash (in a thread: it costs tens of milliseconds of CPU by design)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)


class PasswordRefused(ValueError):
    """A password that may not be set (too short or too long); the message is Chinese."""


def check_password(password: str) -> None:
    """Raise PasswordRefused unless the password is long enough and not absurdly long."""
    if len(password) < MIN_PASSWORD:
        raise PasswordRefused(f"密码至少 {MIN_PASSWORD} 个字符")
    if len(password) > MAX_PASSWORD:
        raise PasswordRefused(f"密码最多 {MAX_PASSWORD} 个字符")


async def find_login(session: AsyncSession, *, username: str) -> ConsoleLogin | None:
    """The login with this name."""
    return (await session.execute(select(ConsoleLogin).where(
        ConsoleLogin.username == username))).scalar_one_or_none()


async def create_login(session: AsyncSession, *, username: str, person_id: int | None,
                       superuser: bool, now: datetime, password: str | None = None
                       ) -> ConsoleLogin:
    """A new login (its password set now, or later through a set-up link)."""
    if not username or len(username) > 64 or username != username.strip():
        raise ValueError("a login name is 1-64 characters without surrounding spaces")
    if person_id is None and not superuser:
        raise ValueError("a login that is not a superuser belongs to a person")
    if await find_login(session, username=username) is not None:
        raise ValueError(f"the login name {username!r} is taken")
    login = ConsoleLogin(username=username, person_id=person_id, superuser=superuser,
                         created_at=now)
    if password is not None:
        check_password(password)
        login.password_hash = await hash_password(password)
    session.add(login)
    await session.flush()
    return login


async def issue_invite(session: AsyncSession, *, login: ConsoleLogin, hours: float,
                       now: datetime) -> str:
    """A one-time set-up token for `login` (returned once, kept hashed); earlier unused ones
    of the same login stop working."""
    for old in (await session.execute(select(ConsoleInvite).where(
            ConsoleInvite.login_id == login.id, ConsoleInvite.used_at.is_(None)))).scalars():
        old.used_at = now
    token = secrets.token_urlsafe(32)
    session.add(ConsoleInvite(login_id=login.id, token_hash=digest(token), created_at=now,
                              expires_at=now + timedelta(hours=hours)))
    await session.flush()
    return token


async def pending_invite(session: AsyncSession, *, token: str, now: datetime
                         ) -> ConsoleInvite | None:
    """The invite this token opens, if unused and not expired."""
    invite = (await session.execute(select(ConsoleInvite).where(
        ConsoleInvite.token_hash == digest(token)))).scalar_one_or_none()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return None
    return invite


async def accept_invite(session: AsyncSession, *, token: str, password: str, now: datetime
                        ) -> ConsoleLogin | None:
    """Set the password through a set-up link and use the link up (None: unknown, used or
    expired). Every session of the login ends: whoever had the old password is out."""
    check_password(password)
    invite = await pending_invite(session, token=token, now=now)
    if invite is None:
        return None
    # Claimed with a conditional UPDATE: two browsers using one link at once, one wins.
    claimed = await session.execute(
        update(ConsoleInvite).where(ConsoleInvite.id == invite.id,
                                    ConsoleInvite.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    login = await session.get(ConsoleLogin, invite.login_id)
    assert login is not None
    login.password_hash = await hash_password(password)
    await end_sessions(session, login_id=login.id, now=now)
    return login


class Refusal(StrEnum):
    """Why a password was not accepted (the page shows one message for all, on purpose)."""

    WRONG = "wrong"
    LOCKED = "locked"


async def _failures(session: AsyncSession, column: InstrumentedAttribute[str], value: str,
                    since: datetime) -> tuple[int, datetime | None]:
    row = (await session.execute(select(func.count(), func.max(ConsoleAttempt.at)).where(
        column == value, ConsoleAttempt.at > since))).one()
    return int(row[0]), row[1]


async def locked_until(session: AsyncSession, *, username: str, address: str, now: datetime,
                       max_failures: int, window: timedelta) -> datetime | None:
    """When the lockout of this login name or this address ends (None: not locked)."""
    until: datetime | None = None
    for column, value in ((ConsoleAttempt.username, username),
                          (ConsoleAttempt.address, address)):
        count, last = await _failures(session, column, value, now - window)
        if count >= max_failures and last is not None:
            end = last + window
            until = end if until is None or end > until else until
    return until


async def authenticate(session: AsyncSession, *, username: str, password: str, address: str,
                       now: datetime, max_failures: int, window: timedelta
                       ) -> ConsoleLogin | Refusal:
    """The login whose password this is, or why not. A failure is recorded (per name and per
    address); while either has `max_failures` within `window`, even the right password is
    refused, so guessing cannot go on."""
    username = username[:64]
    address = address[:64]
    if await locked_until(session, username=username, address=address, now=now,
                          max_failures=max_failures, window=window) is not None:
        return Refusal.LOCKED
    login = await find_login(session, username=username)
    ok = await _verify(login.password_hash if login else None, password)
    if not ok or login is None or login.disabled_at is not None:
        session.add(ConsoleAttempt(at=now, username=username, address=address))
        await session.execute(delete(ConsoleAttempt).where(
            ConsoleAttempt.at <= now - window))
        await session.flush()
        return Refusal.WRONG
    await session.execute(delete(ConsoleAttempt).where(ConsoleAttempt.username == username))
    login.last_login_at = now
    if login.password_hash and _hasher.check_needs_rehash(login.password_hash):
        login.password_hash = await hash_password(password)
    return login


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session: the row and the id for the cookie (shown once, kept hashed)."""

    row: ConsoleSession
    sid: str


async def open_session(session: AsyncSession, *, login: ConsoleLogin, now: datetime,
                       absolute: timedelta) -> Opened:
    """A session for a login that just authenticated (sessions over for a day are deleted
    on the way, so the table holds about a day of logins)."""
    await session.execute(delete(ConsoleSession).where(
        ConsoleSession.expires_at < now - timedelta(days=1)))
    await session.execute(delete(ConsoleSession).where(
        ConsoleSession.ended_at < now - timedelta(days=1)))
    sid = secrets.token_urlsafe(32)
    row = ConsoleSession(sid_hash=digest(sid), login_id=login.id,
                         csrf=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                         expires_at=now + absolute)
    session.add(row)
    await session.flush()
    return Opened(row=row, sid=sid)


async def find_session(session: AsyncSession, *, sid: str, now: datetime, idle: timedelta
                       ) -> tuple[ConsoleSession, ConsoleLogin] | None:
    """The live session with this id and its login, its last use moved to now; None when
    unknown, ended, idle too long, past its absolute end, or its login disabled."""
    found = (await session.execute(
        select(ConsoleSession, ConsoleLogin)
        .join(ConsoleLogin, ConsoleLogin.id == ConsoleSession.login_id)
        .where(ConsoleSession.sid_hash == digest(sid)))).tuples().first()
    if found is None:
        return None
    row, login = found
    if (row.ended_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now
            or login.disabled_at is not None):
        if row.ended_at is None:
            row.ended_at = now
        return None
    row.last_seen_at = now
    return row, login


async def end_session(session: AsyncSession, *, sid: str, now: datetime) -> None:
    """Log out: the session stops working at once."""
    row = (await session.execute(select(ConsoleSession).where(
        ConsoleSession.sid_hash == digest(sid)))).scalar_one_or_none()
    if row is not None and row.ended_at is None:
        row.ended_at = now


async def end_sessions(session: AsyncSession, *, login_id: int, now: datetime) -> None:
    """End every live session of a login (its password changed, or it was disabled)."""
    for row in (await session.execute(select(ConsoleSession).where(
            ConsoleSession.login_id == login_id, ConsoleSession.ended_at.is_(None)))).scalars():
        row.ended_at = now
