"""The console overview's figures beyond 统计's: a 14-day trend (from the same tenants section
统计 uses, one day at a time), the nodes below ranked by open problems, and the alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.services import chain, stats
from bot.services.health import AccountStatus
from models import (
    Group,
    Node,
    OutboxMessage,
    OutboxStatus,
    PointsEvent,
    PointsStatus,
    TemperatureReading,
    TenantStay,
    Ticket,
)

TREND_DAYS = 14
# A fever is followed up by a new reading within this long.
FOLLOW_UP = timedelta(hours=24)
# Health notes (the bot removed from a group) shown this long.
HEALTH_DAYS = 7
# The health note the bot sends up when it was removed from a group (texts.Health.LEFT).
REMOVED_PREFIX = texts.Health.LEFT.split("「", 1)[0]


@dataclass(frozen=True, slots=True)
class TrendDay:
    """One day of the chart: returns that day, under home watch and fevers at its end."""

    day: date
    returns: int
    watching: int
    fevers: int


async def trend(session: AsyncSession, *, node_ids: chain.NodeIds, zone: ZoneInfo, now: datetime,
                days: int = TREND_DAYS) -> list[TrendDay]:
    """The last `days` days up to today, each day's figures exactly as 统计 gives them."""
    today = now.astimezone(zone).date()
    out = []
    for back in range(days - 1, -1, -1):
        the_day = stats.Day.of(today - timedelta(days=back), zone=zone, now=now)
        items = dict(await stats.tenants_section(session, node_ids, the_day))
        out.append(TrendDay(the_day, items["今日返回"], items["居家观察"], items["发热"]))
    return out


def _silent(node_ids: Select[tuple[int]], now: datetime, after: timedelta
            ) -> Select[tuple[int | None]]:
    """Groups in these nodes with a notice delivered longer than `after` ago, unacknowledged."""
    o = OutboxMessage
    return (select(o.group_id).join(Group, Group.id == o.group_id)
            .where(o.notice_id.is_not(None), o.status == OutboxStatus.SENT,
                   o.acked_at.is_(None), o.sent_at <= now - after,
                   Group.node_id.in_(node_ids)))


async def _stale_fevers(session: AsyncSession, node_ids: Select[tuple[int]], now: datetime
                        ) -> Select[tuple[int]]:
    last = (select(TemperatureReading.stay_id, func.max(TemperatureReading.taken_at)
                   .label("taken")).group_by(TemperatureReading.stay_id).subquery())
    return (select(TenantStay.id).outerjoin(last, last.c.stay_id == TenantStay.id)
            .where(TenantStay.node_id.in_(node_ids), TenantStay.fever.is_(True),
                   TenantStay.ended_at.is_(None), TenantStay.watch_until > now,
                   (last.c.taken.is_(None)) | (last.c.taken <= now - FOLLOW_UP)))


@dataclass(frozen=True, slots=True)
class Problems:
    """What is open in one node's subtree."""

    node: Node
    silent_groups: int
    stale_fevers: int
    open_tickets: int
    pending_points: int

    @property
    def total(self) -> int:
        return self.silent_groups + self.stale_fevers + self.open_tickets + self.pending_points


async def ranking(session: AsyncSession, *, root: Node, now: datetime, silent_after: timedelta
                  ) -> list[Problems]:
    """The nodes right below `root`, most open problems first."""
    children = list((await session.execute(select(Node).where(Node.parent_id == root.id)
                                           .order_by(Node.id))).scalars())
    out = []
    for child in children:
        ids = chain.subtree_select(child.id)

        async def n(stmt: Select[Any]) -> int:
            return int(await session.scalar(select(func.count()).select_from(
                stmt.subquery())) or 0)
        out.append(Problems(
            child,
            silent_groups=await n(_silent(ids, now, silent_after).distinct()),
            stale_fevers=await n(await _stale_fevers(session, ids, now)),
            open_tickets=await n(select(Ticket.id).where(Ticket.status == "open",
                                                         Ticket.target_node_id.in_(ids))),
            pending_points=await n(select(PointsEvent.id).where(
                PointsEvent.status.in_([PointsStatus.PENDING, PointsStatus.APPEALED]),
                PointsEvent.node_id.in_(ids)))))
    out.sort(key=lambda p: (-p.total, p.node.id))
    return out


@dataclass(frozen=True, slots=True)
class Alerts:
    """What needs someone now."""

    silent_groups: list[str]
    stale_fevers: int
    removed: list[str]
    paused: list[AccountStatus]


async def alerts(session: AsyncSession, *, root: Node, now: datetime, silent_after: timedelta,
                 accounts: list[AccountStatus], limit: int = 20) -> Alerts:
    """Silent groups, fevers without a reading for a day, the bot removed from a group (the
    health notes sent up the chain), paused sending accounts of the subtree's groups."""
    ids = chain.subtree_select(root.id)
    silent = list((await session.execute(
        select(distinct(Group.title)).where(Group.id.in_(_silent(ids, now, silent_after)))
        .order_by(Group.title).limit(limit))).scalars())
    fevers = int(await session.scalar(select(func.count()).select_from(
        (await _stale_fevers(session, ids, now)).subquery())) or 0)
    removed = list((await session.execute(
        select(OutboxMessage.text).join(Group, Group.id == OutboxMessage.group_id)
        .where(OutboxMessage.source == "health", Group.node_id.in_(ids),
               OutboxMessage.text.startswith(REMOVED_PREFIX),
               OutboxMessage.created_at > now - timedelta(days=HEALTH_DAYS),
               OutboxMessage.text.is_not(None))
        .order_by(OutboxMessage.id.desc()).limit(limit))).scalars())
    used = set((await session.execute(select(Group.account).where(
        Group.node_id.in_(ids)))).scalars()) | set((await session.execute(
            select(Group.fallback_account).where(Group.node_id.in_(ids)))).scalars())
    paused = [a for a in accounts if a.paused_until is not None and a.name in used]
    return Alerts(silent, fevers, [t for t in removed if t], paused)
