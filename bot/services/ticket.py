"""Tickets up the chain: 反馈 goes one tier up, 答复 comes back down, 待办 lists what is open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii, texts
from bot.domain import UserError
from bot.services import outbox, people
from models import Group, Node, Person, Ticket


async def open_ticket(session: AsyncSession, *, group: Group, node: Node, asker: Person | None,
                      text: str, now: datetime, target: Node | None = None) -> Ticket:
    """反馈: a numbered ticket for the node one tier up (or `target`, e.g. the subdistrict for
    a key project's problem), announced in its groups (masked)."""
    target_id = target.id if target is not None else node.parent_id
    if target_id is None:
        raise UserError(texts.Ticket.NO_PARENT)
    ticket = Ticket(node_id=node.id, group_id=group.id, target_node_id=target_id,
                    asker_id=asker.id if asker else None, text=pii.mask_text(text),
                    created_at=now)
    session.add(ticket)
    await session.flush()
    sent = await outbox.queue_to_node(
        session, node_id=target_id, source="ticket", now=now,
        text=texts.Ticket.UP.format(id=ticket.id, group=group.title,
                                    name=pii.mask_name(asker.name if asker else ""),
                                    text=ticket.text))
    if not sent:
        raise UserError(texts.Ticket.NO_PARENT)
    return ticket


async def answer(session: AsyncSession, *, ticket_id: int, node: Node, by: Person, text: str,
                 now: datetime) -> Ticket:
    """答复: only the node the ticket went to answers it; the answer goes back down."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or ticket.target_node_id != node.id:
        raise UserError(texts.Ticket.UNKNOWN.format(id=ticket_id))
    first = ticket.status == "open"
    ticket.status, ticket.answer = "answered", pii.mask_text(text)
    ticket.answered_by_id, ticket.answered_at = by.id, now
    group = await session.get(Group, ticket.group_id)
    assert group is not None
    mentions = (await people.contact_ids(session, person_id=ticket.asker_id,
                                         transport=group.transport)
                if ticket.asker_id is not None else [])
    await outbox.queue(session, group_id=group.id, source="ticket-answer", now=now,
                       mentions=mentions, text=texts.Ticket.DOWN.format(
                           id=ticket.id, asked=ticket.text[:30], text=ticket.answer,
                           again="" if first else texts.Ticket.AGAIN))
    return ticket


async def open_for(session: AsyncSession, *, node: Node) -> list[tuple[Ticket, str]]:
    """Open tickets sent to a node, oldest first, with the asking group's title."""
    rows = await session.execute(
        select(Ticket, Group.title).join(Group, Group.id == Ticket.group_id)
        .where(Ticket.target_node_id == node.id, Ticket.status == "open")
        .order_by(Ticket.id))
    return [(t, title) for t, title in rows]
