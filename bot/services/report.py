"""Landlord reports (房东上报): disinfection, errands, violations, mediation, returns."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import locks
from models import LandlordReport, Node, Person, ReportKind


async def add_report(
    session: AsyncSession, *, landlord: Person, node: Node, kind: ReportKind, detail: str,
    now: datetime, stay_id: int | None = None, inbound_id: int | None = None,
) -> LandlordReport:
    """Store one report; `detail` must already have numbers masked."""
    row = LandlordReport(landlord_id=landlord.id, node_id=node.id, kind=kind, detail=detail,
                         stay_id=stay_id, inbound_id=inbound_id, created_at=now)
    session.add(row)
    await session.flush()
    return row


async def reported_on_day(
    session: AsyncSession, *, node: Node, kind: ReportKind, now: datetime, zone: ZoneInfo
) -> bool:
    """Whether a report of this kind was made for the node on today's local date, asked under
    the lock of that node, kind and day (bot.services.locks) so that a report written on
    the answer is not written twice at once (房东上报 消毒 in two groups)."""
    start_local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    await locks.hold(session, f"report:{node.id}:{kind}:{start_local.date().isoformat()}")
    start, end = start_local, start_local + timedelta(days=1)
    return (await session.execute(
        select(LandlordReport.id).where(
            LandlordReport.node_id == node.id, LandlordReport.kind == kind,
            LandlordReport.created_at >= start, LandlordReport.created_at < end).limit(1)
    )).first() is not None
