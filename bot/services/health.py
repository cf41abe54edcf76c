"""Chain health: the bot removed from a bound group, or a bound group renamed, is told upward;
and the state of each sending account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.services import chain, membership, outbox, people
from bot.transports.base import AccountState, RoomEvent
from models import AccountWatch, BotAccount, Node, OutboxMessage, OutboxStatus


async def room_event(session: AsyncSession, *, event: RoomEvent, now: datetime) -> int:
    """Tell the parent group's commander; a rename also updates the group's title.
    Returns how many notes were queued (0 for rooms not bound to the chain)."""
    group = await chain.group_by_room(session, transport=event.transport, room_id=event.room_id)
    if group is None:
        return 0
    if event.kind == "member_left":
        return await membership.member_left(session, event=event, group=group, now=now)
    if event.kind == "renamed":
        old = group.title
        group.title = event.new_topic or group.title
        text = texts.Health.RENAMED.format(old=event.old_topic or old, new=group.title,
                                           node=group.node.name)
    elif event.kind == "left":
        text = texts.Health.LEFT.format(group=group.title, node=group.node.name)
    else:
        return 0
    if group.node.parent_id is None:
        return 0
    parent = await session.get(Node, group.node.parent_id)
    assert parent is not None
    mentions: list[str] = []
    for person in await chain.commanders(session, node=parent):
        mentions += await people.contact_ids(session, person_id=person.id,
                                             transport=event.transport)
    return await outbox.queue_to_node(session, node_id=parent.id, text=text, source="health",
                                      now=now, mentions=mentions)


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """What `tierbot status` and GET /api/accounts show for one account."""

    name: str
    connected: bool
    logged_in_as: str
    last_error: str
    paused_until: datetime | None
    pending: int
    # The watchdog's last conclusion: "ok", "degraded", "down" ("unknown" before its first
    # run), the problems seen and since when the account has not been ok.
    health: str = "unknown"
    problems: tuple[str, ...] = ()
    since: datetime | None = None


async def account_status(session: AsyncSession, *, states: list[AccountState], now: datetime
                         ) -> list[AccountStatus]:
    """The transport's view of each account joined with the sender's durable state."""
    paused = {a.name: a for a in (await session.execute(select(BotAccount))).scalars()}
    watched = {w.account: w for w in (await session.execute(select(AccountWatch))).scalars()}
    pending: dict[str, int] = {}
    for account in (await session.execute(select(OutboxMessage.account).where(
            OutboxMessage.status == OutboxStatus.PENDING))).scalars():
        pending[account] = pending.get(account, 0) + 1
    out = []
    names = [s.name for s in states]
    names += [n for n in sorted({*paused, *watched}) if n not in set(names)]
    by_name = {s.name: s for s in states}
    for name in names:
        state = by_name.get(name)
        row = paused.get(name)
        until = row.paused_until if row and row.paused_until and row.paused_until > now else None
        out.append(AccountStatus(
            name=name, connected=bool(state and state.connected),
            logged_in_as=state.logged_in_as if state else "",
            last_error=(state.last_error if state and state.last_error else
                        (row.last_error or "") if row else ""),
            paused_until=until, pending=pending.get(name, 0),
            health=watched[name].health if name in watched else "unknown",
            problems=tuple(watched[name].problems or ()) if name in watched else (),
            since=watched[name].since if name in watched else None))
    return out


async def alert_fever(session: AsyncSession, *, node: Node, text: str, now: datetime) -> int:
    """A fever at a tier-5 group (a tenant, a shop's staff): the team's tier-4 group, one tier
    up, follows up. The text names no numbers (masked name only). Returns rows written."""
    if node.parent_id is None:
        return 0
    return await outbox.queue_to_node(session, node_id=node.parent_id, source="fever", now=now,
                                      text=text)

