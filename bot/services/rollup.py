"""The daily roll-up: what came up from below today, per tier-1 to tier-3 node."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.services import chain, outbox, stats
from bot.services.notice import _tree, tag
from models import LandlordReport, NodeKind, Notice, OutboxMessage, TenantStay, Ticket

# Enterprises and key projects sit at tier 3 but command no subtree of the chain: their groups
# get their own reminders, not the roll-up of what came up from below.
UNIT_KINDS = (NodeKind.ENTERPRISE, NodeKind.PROJECT)


# A node's own figures, then its subtree's: returns today, under watch, fevers, the report
# kinds, tickets opened and answered today.
FIGURES = ("returned", "watching", "fevers", "disinfect", "errand", "violation", "mediation",
           "opened", "answered")
_AT = {name: index for index, name in enumerate(FIGURES)}


def _subtree_totals(nodes: dict[int, Any], own: dict[int, list[int]]) -> dict[int, list[int]]:
    """Each node's figures with everything below it: one pass up the tree, children before
    parents (a child is always one tier down), however many nodes have rows."""
    totals = {node_id: list(values) for node_id, values in own.items()}
    for node in sorted(nodes.values(), key=lambda n: -n.tier):
        mine = totals.get(node.id)
        if mine is None or node.parent_id is None or node.parent_id not in nodes:
            continue
        parent = totals.setdefault(node.parent_id, [0] * len(FIGURES))
        for index, value in enumerate(mine):
            parent[index] += value
    return totals


async def daily_texts(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                      day: date | None = None) -> list[tuple[int, str]]:
    """The roll-up of `day` (default: today) for every tier-1..3 node, as (node id, text):
    reads only (the job reads in a session of its own, then queues with `queue_daily`)."""
    local = now.astimezone(zone)
    if day is not None and day != local.date():
        local = datetime.combine(day, time(23, 59, 59), zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    nodes, _children = await _tree(session)
    # Each node's own rows, counted by the database (one grouped statement per table; at a
    # city's scale loading the rows and counting them per node held the bot for seconds).
    own: dict[int, list[int]] = {}

    def add(node_id: int, figure: str, value: int) -> None:
        own.setdefault(node_id, [0] * len(FIGURES))[_AT[figure]] += int(value or 0)

    watched = TenantStay.watch_until > now
    for node_id, returned, watching, fevers in await session.execute(
            select(TenantStay.node_id,
                   func.count(case((and_(TenantStay.created_at >= start,
                                         TenantStay.created_at < end), TenantStay.id))),
                   func.count(case((watched, TenantStay.id))),
                   func.count(case((and_(watched, TenantStay.fever.is_(True)), TenantStay.id))))
            .group_by(TenantStay.node_id)):
        add(node_id, "returned", returned)
        add(node_id, "watching", watching)
        add(node_id, "fevers", fevers)
    for node_id, kind, n in await session.execute(
            select(LandlordReport.node_id, LandlordReport.kind, func.count(LandlordReport.id))
            .where(LandlordReport.created_at >= start, LandlordReport.created_at < end)
            .group_by(LandlordReport.node_id, LandlordReport.kind)):
        if kind in _AT:
            add(node_id, kind, n)
    for figure, column in (("opened", Ticket.created_at), ("answered", Ticket.answered_at)):
        for node_id, n in await session.execute(
                select(Ticket.node_id, func.count(Ticket.id))
                .where(column >= start, column < end).group_by(Ticket.node_id)):
            add(node_id, figure, n)
    totals = _subtree_totals(nodes, own)
    todays = (await session.execute(select(Notice.id, Notice.origin_node_id, Notice.urgent)
                                    .where(Notice.created_at >= start, Notice.created_at < end,
                                           Notice.missed.is_(False))
                                    .order_by(Notice.id))).all()
    acks: dict[int | None, int] = dict((await session.execute(
        select(OutboxMessage.notice_id, func.count(OutboxMessage.acked_at))
        .where(OutboxMessage.notice_id.in_([n.id for n in todays]))
        .group_by(OutboxMessage.notice_id))).tuples().all()) if todays else {}
    totals_sent: dict[int | None, int] = dict((await session.execute(
        select(OutboxMessage.notice_id, func.count(OutboxMessage.id))
        .where(OutboxMessage.notice_id.in_([n.id for n in todays]))
        .group_by(OutboxMessage.notice_id))).tuples().all()) if todays else {}
    # Today's notices under each node that sent one or has one sent below it.
    notices_below: dict[int, list[Any]] = {}
    for notice in todays:
        at: int | None = notice.origin_node_id
        while at is not None and at in nodes:
            notices_below.setdefault(at, []).append(notice)
            at = nodes[at].parent_id
    the_day = stats.Day.of(local.date(), zone=zone, now=now)
    found: list[tuple[int, str]] = []
    for node in nodes.values():
        if node.tier > 3 or node.kind in UNIT_KINDS:
            continue
        # The numbers of 统计 not in the body (people, shops, and any unit plugged in).
        more = await stats.rollup_lines(
            session, node_ids=await chain.whole_tree(session, node), day=the_day)
        figures = dict(zip(FIGURES, totals.get(node.id, [0] * len(FIGURES)), strict=True))
        notice_lines = "；".join(
            texts.Rollup.NOTICE.format(tag=tag(n.id, n.urgent), acked=acks.get(n.id, 0),
                                       total=totals_sent.get(n.id, 0))
            for n in notices_below.get(node.id, ()))
        text = texts.Rollup.BODY.format(
            date=texts.Tenant.DATE.format(month=local.month, day=local.day), node=node.name,
            notices=notice_lines or texts.Rollup.NO_NOTICES, **figures)
        found.append((node.id, "\n".join([text, *more])))
    return found


async def queue_daily(session: AsyncSession, *, found: Sequence[tuple[int, str]],
                      now: datetime) -> int:
    """Queue `daily_texts`'s texts to their nodes' groups; the job records the day done
    (schedules/periods.py). Returns rows written."""
    written = 0
    for node_id, text in found:
        written += await outbox.queue_to_node(session, node_id=node_id, source="rollup",
                                              now=now, text=text)
    return written
