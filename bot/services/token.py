"""Admin API tokens: create (shown once), list, revoke, authenticate, and what a token sees.

A token is 32 random bytes (256 bits), so its SHA-256 is enough to store: a slow password hash
(Argon2, bcrypt) exists to make guessing low-entropy passwords expensive, and there is nothing
to guess here; a plain digest also lets one indexed look-up find the token, where a salted
slow hash would need a separate id in the token and cost CPU on every request (a lever for
whoever floods the API with wrong tokens).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.chain import commanding_role
from models import ApiToken, Membership, Node, Person, Role

PREFIX = "tb_"
# Roles that run a unit and so see its subtree through the API. A tenant sees nothing (the
# other tenants of the landlord are not theirs to see); a landlord or captain sees the node
# they command (their own tenants or shops), not a tier-4 group they merely sit in.
STAFF_ROLES = frozenset({Role.COMMANDER, Role.MEMBER, Role.SECRETARY})


def new_secret() -> str:
    """A fresh token: the prefix (so a leaked one is recognisable in a scan) and 256 bits."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    session: AsyncSession, *, person: Person, superuser: bool, days: int, label: str,
    now: datetime,
) -> tuple[ApiToken, str]:
    """A new token for `person`; the secret is returned once and never stored."""
    if days < 1:
        raise ValueError("a token must live at least one day")
    secret = new_secret()
    token = ApiToken(person_id=person.id, superuser=superuser, token_hash=digest(secret),
                     label=label, created_at=now, expires_at=now + timedelta(days=days))
    session.add(token)
    await session.flush()
    return token, secret


async def list_tokens(session: AsyncSession) -> list[tuple[ApiToken, str]]:
    """Every token with its person's name, oldest first."""
    rows = await session.execute(
        select(ApiToken, Person.name).join(Person, Person.id == ApiToken.person_id)
        .order_by(ApiToken.id))
    return [(token, name) for token, name in rows.tuples()]


async def revoke_token(session: AsyncSession, *, token_id: int, now: datetime
                       ) -> ApiToken | None:
    """Revoke a token (a second revoke keeps the first time); None when there is no such id."""
    token = await session.get(ApiToken, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = now
    return token


class Refusal(StrEnum):
    """Why a presented token does not pass (said in the 401)."""

    UNKNOWN = "unknown bearer token"
    EXPIRED = "token expired"
    REVOKED = "token revoked"


async def authenticate(session: AsyncSession, *, secret: str, now: datetime
                       ) -> ApiToken | Refusal:
    """The token with this secret, its use recorded (`last_used_at`), or why it is refused."""
    if not secret.startswith(PREFIX):
        return Refusal.UNKNOWN
    token = (await session.execute(
        select(ApiToken).where(ApiToken.token_hash == digest(secret)))).scalar_one_or_none()
    if token is None:
        return Refusal.UNKNOWN
    if token.revoked_at is not None:
        return Refusal.REVOKED
    if token.expires_at <= now:
        return Refusal.EXPIRED
    token.last_used_at = now
    return token


def state_of(token: ApiToken, now: datetime) -> str:
    """active, expired or revoked (for `tokens list`)."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= now else "active"


async def scope_roots(session: AsyncSession, *, person_id: int) -> list[int]:
    """The nodes whose subtrees a person's token sees: where the person holds a staff role, or
    the role that commands the node (a tier-5 landlord, a shop-row captain)."""
    rows = await session.execute(
        select(Membership.role, Node).join(Node, Node.id == Membership.node_id)
        .where(Membership.person_id == person_id).order_by(Node.id))
    roots: list[int] = []
    for role, node in rows.tuples():
        if (role in STAFF_ROLES or role == commanding_role(node)) and node.id not in roots:
            roots.append(node.id)
    return roots
