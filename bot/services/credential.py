"""Official channels' credentials at rest: store (sealed, masked), list (masked), remove, open
for the registry at start, and re-seal under a new key (`tierbot keys rotate`).

A credential is a small JSON object of the fields its adapter reads (a webhook URL or key, a
signing secret, an app id and secret), sealed with bot.crypto under associated data naming the
`channel_credential` row, like a person's numbers (so the row is flushed before it is sealed).
The plain value is never logged, never in an exception, a repr, the API or a dump; besides
`rotate`, only `open_all` opens it, to hand it to the adapters (a source-scan test holds it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, not_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import crypto
from models import ChannelCredential

TABLE = "channel_credential"
COLUMN = "secret"
# The field a bare value (one line, not JSON, no key=) is stored under.
BARE_FIELD = "webhook"
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_SECRET_CHARS = 4000


class CredentialError(ValueError):
    """A credential cannot be stored as given (the message never contains the value)."""


def parse_secret(text: str) -> dict[str, str]:
    """The fields of a secret as typed or piped: a JSON object of strings, `field=value` lines,
    or one bare value (stored as `webhook`)."""
    text = text.strip()
    if not text:
        raise CredentialError("the secret is empty")
    if len(text) > MAX_SECRET_CHARS:
        raise CredentialError(f"the secret is longer than {MAX_SECRET_CHARS} characters")
    fields: dict[str, str]
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise CredentialError("the secret looks like JSON but does not parse") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise CredentialError("a JSON secret must be an object of strings")
        fields = {str(k): v.strip() for k, v in data.items()}
    elif "\n" in text or re.match(r"^[a-z][a-z0-9_]*=", text):
        fields = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise CredentialError("each line of the secret must be field=value")
            fields[key.strip()] = value.strip()
    else:
        fields = {BARE_FIELD: text}
    for key, value in fields.items():
        if not _FIELD.match(key):
            raise CredentialError(f"field name {key[:32]!r} is not lower_snake_case")
        if not value:
            raise CredentialError(f"field {key!r} is empty")
    return fields


def mask_value(value: str) -> str:
    """A secret as it may be shown: a URL's host and the last four characters, else only the
    last four (short values not even those)."""
    tail = value[-4:] if len(value) >= 16 else ""
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.hostname or '?'}/…{tail}"
    return f"****{tail}"


def mask_fields(fields: Mapping[str, str]) -> str:
    """Every field masked, in name order."""
    return ", ".join(f"{k}={mask_value(v)}" for k, v in sorted(fields.items()))


@dataclass(frozen=True, slots=True)
class CredentialPublic:
    """What may be shown of a stored credential."""

    name: str
    kind: str
    mask: str
    updated_at: datetime


async def store(session: AsyncSession, *, name: str, kind: str, fields: Mapping[str, str],
                now: datetime) -> CredentialPublic:
    """Store (or replace) the credential of channel `name`, sealed to its row."""
    if not fields:
        raise CredentialError("the secret has no fields")
    row = (await session.execute(select(ChannelCredential).where(
        ChannelCredential.name == name))).scalar_one_or_none()
    if row is None:
        row = ChannelCredential(name=name, kind=kind, mask="", created_at=now, updated_at=now)
        session.add(row)
        await session.flush([row])
    plain = json.dumps(dict(fields), sort_keys=True, ensure_ascii=False)
    row.kind = kind
    row.secret_enc = crypto.seal(plain, table=TABLE, column=COLUMN, row=row.id)
    row.mask = mask_fields(fields)[:200]
    row.updated_at = now
    return CredentialPublic(row.name, row.kind, row.mask, now)


async def listing(session: AsyncSession) -> list[CredentialPublic]:
    """Every stored credential, masked, by name."""
    rows = (await session.execute(select(
        ChannelCredential.name, ChannelCredential.kind, ChannelCredential.mask,
        ChannelCredential.updated_at).order_by(ChannelCredential.name))).all()
    return [CredentialPublic(*r) for r in rows]


async def remove(session: AsyncSession, *, name: str) -> bool:
    """Delete a channel's credential; whether there was one."""
    result: Any = await session.execute(delete(ChannelCredential).where(
        ChannelCredential.name == name))
    return bool(result.rowcount)


async def open_all(session: AsyncSession) -> dict[str, tuple[str, dict[str, str]]]:
    """Every credential opened, by channel name: (kind, fields), for the adapters only."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for row_id, name, kind, token in (await session.execute(select(
            ChannelCredential.id, ChannelCredential.name, ChannelCredential.kind,
            ChannelCredential.secret_enc))).all():
        if token is None:
            continue
        fields = json.loads(crypto.unseal(token, table=TABLE, column=COLUMN, row=row_id))
        out[name] = (kind, fields)
    return out


def _not_under(prefix: str) -> Any:
    enc = ChannelCredential.secret_enc
    return enc.is_not(None) & not_(enc.startswith(prefix, autoescape=True))


async def pending_rotation(session: AsyncSession, *, keyring: crypto.Keyring) -> int:
    """How many credentials are not yet sealed under the active key."""
    prefix = f"{crypto.FORMAT}.{keyring.active}."
    return int((await session.execute(select(func.count()).select_from(ChannelCredential)
                                      .where(_not_under(prefix)))).scalar_one())


async def rotate(sessions: async_sessionmaker[AsyncSession], *, keyring: crypto.Keyring,
                 progress: Callable[[int], None] | None = None) -> int:
    """Re-seal every credential not under the keyring's active key (one transaction: there are
    a handful). Run again after an interruption; returns how many it re-sealed."""
    prefix = f"{crypto.FORMAT}.{keyring.active}."
    async with sessions() as session, session.begin():
        rows = (await session.execute(select(ChannelCredential.id, ChannelCredential.secret_enc)
                                      .where(_not_under(prefix)))).all()
        for row_id, token in rows:
            plain = crypto.unseal(token, table=TABLE, column=COLUMN, row=row_id, keyring=keyring)
            await session.execute(update(ChannelCredential).where(
                ChannelCredential.id == row_id).values(secret_enc=crypto.seal(
                    plain, table=TABLE, column=COLUMN, row=row_id, keyring=keyring)))
    if progress is not None and rows:
        progress(len(rows))
    return len(rows)
