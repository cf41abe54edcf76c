"""The daily roll-up: what came up from below today, per tier-1 to tier-3 node."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.services import chain, outbox, stats
from bot.services.notice import _below, _tree, tag
from models import LandlordReport, NodeKind, Notice, OutboxMessage, TenantStay, Ticket

# Enterprises and key projects sit at tier 3 but command no subtree of the chain: their groups
# get their own reminders, not the roll-up of what came up from below.
UNIT_KINDS = (NodeKind.ENTERPRISE, NodeKind.PROJECT)


def _count(rows: Sequence[Any], ids: set[int], col: int = 0) -> int:
    return sum(1 for r in rows if r[col] in ids)


async def post_daily(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                     fever_threshold: float, day: date | None = None) -> int:
    """Queue the roll-up of `day` (default: today) for every tier-1..3 group; the job records
    the day done (schedules/periods.py). Returns rows written."""
    local = now.astimezone(zone)
    if day is not None and day != local.date():
        local = datetime.combine(day, time(23, 59, 59), zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    nodes, children = await _tree(session)
    stays = (await session.execute(select(
        TenantStay.node_id, TenantStay.created_at, TenantStay.watch_until, TenantStay.fever)
    )).all()
    reports = (await session.execute(select(LandlordReport.node_id, LandlordReport.kind).where(
        LandlordReport.created_at >= start, LandlordReport.created_at < end))).all()
    opened = (await session.execute(select(Ticket.node_id).where(
        Ticket.created_at >= start, Ticket.created_at < end))).all()
    answered = (await session.execute(select(Ticket.node_id).where(
        Ticket.answered_at >= start, Ticket.answered_at < end))).all()
    todays = (await session.execute(select(Notice.id, Notice.origin_node_id, Notice.urgent)
                                    .where(Notice.created_at >= start, Notice.created_at < end,
                                           Notice.missed.is_(False)))).all()
    acks: dict[int | None, int] = dict((await session.execute(
        select(OutboxMessage.notice_id, func.count(OutboxMessage.acked_at))
        .where(OutboxMessage.notice_id.in_([n.id for n in todays]))
        .group_by(OutboxMessage.notice_id))).tuples().all()) if todays else {}
    totals: dict[int | None, int] = dict((await session.execute(
        select(OutboxMessage.notice_id, func.count(OutboxMessage.id))
        .where(OutboxMessage.notice_id.in_([n.id for n in todays]))
        .group_by(OutboxMessage.notice_id))).tuples().all()) if todays else {}
    the_day = stats.Day.of(local.date(), zone=zone, now=now)
    written = 0
    for node in nodes.values():
        if node.tier > 3 or node.kind in UNIT_KINDS:
            continue
        ids = set(_below(children, node.id, include_root=True))
        # The numbers of 统计 not in the body (people, shops, and any unit plugged in).
        more = await stats.rollup_lines(
            session, node_ids=chain.subtree_select(node.id, node.tier), day=the_day)
        returned = sum(1 for s in stays if s.node_id in ids and start <= s.created_at < end)
        watching = sum(1 for s in stays if s.node_id in ids and s.watch_until > now)
        fevers = sum(1 for s in stays if s.node_id in ids and s.fever and s.watch_until > now)
        kinds = Counter(kind for node_id, kind in reports if node_id in ids)
        notice_lines = "；".join(
            texts.Rollup.NOTICE.format(tag=tag(n.id, n.urgent), acked=acks.get(n.id, 0),
                                       total=totals.get(n.id, 0))
            for n in todays if n.origin_node_id in ids)
        text = texts.Rollup.BODY.format(
            date=texts.Tenant.DATE.format(month=local.month, day=local.day), node=node.name,
            returned=returned, watching=watching,
            fevers=fevers, disinfect=kinds["disinfect"], errand=kinds["errand"],
            violation=kinds["violation"], mediation=kinds["mediation"],
            opened=_count(opened, ids), answered=_count(answered, ids),
            notices=notice_lines or texts.Rollup.NO_NOTICES)
        text = "\n".join([text, *more])
        written += await outbox.queue_to_node(session, node_id=node.id, source="rollup", now=now,
                                              text=text)
    return written
