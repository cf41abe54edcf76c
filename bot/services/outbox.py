"""The one writer of outbox rows: every text the bot sends to a group is queued here, and
each row is sent by the account of the group it goes to (`Group.account`).

Handlers and jobs write rows; the sender delivers them. No other module inserts into the
outbox (tests/test_outbox.py checks the source tree), so no feature can forget the account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, Text, bindparam, insert, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot.hot import Hot
from models import Group, OutboxMessage, OutboxStatus

# Sources whose rows are replies to a command: sent before notices, merged per group.
REPLY = "reply"
TABLE = cast(Table, OutboxMessage.__table__)


@dataclass(frozen=True, slots=True)
class Draft:
    """One text for one group, before the writer resolves its account."""

    group_id: int
    text: str
    mentions: Sequence[str] = field(default_factory=tuple)
    urgent: bool = False
    # Send through this channel instead of the group's binding ("" = the group's): an alert
    # about a channel goes out through another one.
    via: str = ""


@dataclass(frozen=True, slots=True)
class ReplyDraft:
    """A reply to a command, for the room it came from; `account` is the account that saw
    the command (used only when the room is not bound to a group)."""

    transport: str
    room_id: str
    account: str
    text: str
    mentions: Sequence[str] = field(default_factory=tuple)


async def groups_of(session: AsyncSession, *, node_id: int) -> list[Group]:
    """The chat groups bound to a node."""
    return list((await session.execute(
        select(Group).where(Group.node_id == node_id).order_by(Group.id)
    )).scalars())


def _row(draft: Draft, *, account: str, source: str, now: datetime) -> dict[str, Any]:
    # Stored masked: the row's text is what the seam sends and what its echo is matched by.
    return {"group_id": draft.group_id, "text": pii.mask_text(draft.text), "account": account,
            "urgent": draft.urgent, "mentions": list(draft.mentions), "source": source,
            "status": OutboxStatus.PENDING, "attempts": 0, "resend": False, "relayed": False,
            "created_at": now}


async def queue_many(session: AsyncSession, *, drafts: Sequence[Draft], source: str,
                     now: datetime) -> int:
    """Queue several texts (one statement); each row gets its group's account. Returns rows
    written (drafts for groups that no longer exist are dropped)."""
    if not drafts:
        return 0
    ids = {d.group_id for d in drafts}
    accounts = dict((await session.execute(
        select(Group.id, Group.account).where(Group.id.in_(ids)))).tuples().all())
    rows = [_row(d, account=d.via or accounts[d.group_id], source=source, now=now)
            for d in drafts if d.group_id in accounts]
    if rows:
        await session.execute(insert(TABLE), rows)
    return len(rows)


async def queue(
    session: AsyncSession, *, group_id: int, text: str, source: str, now: datetime,
    mentions: Sequence[str] = (), urgent: bool = False, via: str = "",
) -> int:
    """Add one text for one group to the outbox (sent after the transaction commits), through
    the group's binding or `via`. Returns 1, or 0 when the group does not exist."""
    return await queue_many(session, drafts=[Draft(group_id, text, tuple(mentions), urgent,
                                                   via)],
                            source=source, now=now)


async def queue_to_node(
    session: AsyncSession, *, node_id: int, text: str, source: str, now: datetime,
    mentions: Sequence[str] = (), urgent: bool = False,
) -> int:
    """Queue a text for every group bound to a node; returns how many rows were written."""
    groups = await groups_of(session, node_id=node_id)
    return await queue_many(session, drafts=[Draft(g.id, text, tuple(mentions), urgent)
                                             for g in groups], source=source, now=now)


async def queue_replies(session: AsyncSession, *, replies: Sequence[ReplyDraft],
                        now: datetime,
                        known: Mapping[tuple[str, str], tuple[int, str]] | None = None) -> int:
    """Queue replies (in the command's own transaction): on the account of the room's group,
    sent before notices and merged per room by the sender. `known` rooms (transport, room
    id) -> (group id, account) are not looked up again. Returns rows written."""
    if not replies:
        return 0
    groups: dict[tuple[str, str], tuple[int | None, str]] = dict(known or {})
    rooms = {r.room_id for r in replies if (r.transport, r.room_id) not in groups}
    if rooms:
        groups.update({(t, room): (gid, account) for gid, account, t, room in (
            await session.execute(select(Group.id, Group.account, Group.transport,
                                         Group.room_id).where(Group.room_id.in_(rooms)))
        ).tuples()})
    rows = []
    for r in replies:
        gid, account = groups.get((r.transport, r.room_id), (None, r.account))
        row = _row(Draft(0, r.text, tuple(r.mentions)), account=account, source=REPLY, now=now)
        row.update(group_id=gid, room_id=r.room_id, transport=r.transport)
        rows.append(row)
    # One hot statement (bot.hot) for every reply of a batch: the usual executemany cost
    # 0.4-0.6 ms of CPU for a batch's one or two replies, the statement itself a tenth.
    # Mentions are serialised as SQLAlchemy's JSON type would (json.dumps), so the stored
    # text is the same whichever way a row was written.
    columns = {c: [json.dumps(row[c]) if c == "mentions" else row[c] for row in rows]
               for c in _REPLY_COLUMNS}
    if session.bind.dialect.name == "postgresql":
        await _INSERT_REPLIES_PG.rows(session, {
            "created_at": now, **{f"{c}_column": column for c, column in columns.items()}})
    else:
        await _INSERT_REPLIES_SQLITE.rows(session, {
            "created_at": now, "rows": json.dumps(
                [list(row) for row in zip(*columns.values(), strict=True)])})
    return len(rows)


# queue_replies' statement: the rows' own columns, as one JSON array (SQLite: json_each;
# "WHERE true" keeps its parser from reading what follows as a join's ON) or a column each
# (PostgreSQL: unnest); the other columns are the same for every reply (_row's values).
_REPLY_COLUMNS = ("group_id", "room_id", "transport", "text", "account", "mentions")
_REPLY_SAME = ("urgent", "source", "status", "attempts", "resend", "relayed", "created_at")
_INTO_REPLIES = f"INSERT INTO outbox_message ({', '.join((*_REPLY_COLUMNS, *_REPLY_SAME))}) "
_REPLY_VALUES = f"'{REPLY}', '{OutboxStatus.PENDING.value}', 0"  # source, status, attempts
_INSERT_REPLIES_SQLITE = Hot(text(
    _INTO_REPLIES + "SELECT "
    + ", ".join(f"value ->> {i}" for i in range(len(_REPLY_COLUMNS)))
    + f", 0, {_REPLY_VALUES}, 0, 0, :created_at FROM json_each(:rows) WHERE true"
).bindparams(bindparam("created_at", type_=TABLE.c.created_at.type), bindparam("rows")))
_INSERT_REPLIES_PG = Hot(text(
    _INTO_REPLIES + "SELECT "
    + ", ".join(f"u.{c}" if c != "mentions" else "CAST(u.mentions AS JSON)"
                for c in _REPLY_COLUMNS)
    + f", false, {_REPLY_VALUES}, false, false, :created_at "
    + f"FROM unnest({', '.join(f':{c}_column' for c in _REPLY_COLUMNS)}) "
    + f"AS u({', '.join(_REPLY_COLUMNS)})"
).bindparams(bindparam("created_at", type_=TABLE.c.created_at.type),
             *(bindparam(f"{c}_column",
                         type_=ARRAY(Text if c == "mentions" else TABLE.c[c].type))
               for c in _REPLY_COLUMNS)))


async def queue_to_room(session: AsyncSession, *, transport: str, room_id: str, account: str,
                        text: str, now: datetime) -> int:
    """One text for a room bound to no group (an account's private test room), through that
    account: sent like a reply (first, unmerged with notices). Returns the row's id."""
    row = _row(Draft(0, text), account=account, source=REPLY, now=now)
    row.update(group_id=None, room_id=room_id, transport=transport)
    return int((await session.execute(insert(TABLE).values(row).returning(TABLE.c.id)))
               .scalar_one())


async def queue_notice(session: AsyncSession, *, notice_id: int, urgent: bool,
                       targets: Select[Any], now: datetime) -> None:
    """A notice's fan-out as one INSERT … SELECT: `targets` is a SELECT over `Group` (any
    joins and filters); one pending row per group it yields, on the group's account, with no
    text of its own (rendered from the notice when sent). Nothing per group passes through
    Python."""
    table = TABLE
    await session.execute(insert(table).from_select(
        ["group_id", "notice_id", "account", "urgent", "source", "status", "mentions",
         "attempts", "resend", "relayed", "created_at"],
        targets.with_only_columns(
            Group.id, literal(notice_id), Group.account,
            literal(urgent, table.c.urgent.type), literal("notice"),
            literal(str(OutboxStatus.PENDING)), literal([], table.c.mentions.type),
            literal(0), literal(False, table.c.resend.type),
            literal(False, table.c.relayed.type), literal(now, table.c.created_at.type)),
    ))
