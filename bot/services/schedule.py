"""Scheduled and recurring notices: stored in our tables; APScheduler only decides when."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii, texts
from bot.config import NoticeSettings, RecurringNoticeSettings
from bot.domain import UserError
from bot.grammar import When
from bot.services import chain, outbox, people
from bot.services import notice as notices
from models import Group, Node, NodeKind, Notice, NoticeSchedule
from models.base import insert_for


def resolve_when(when: When, *, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment a one-off 定时通知 names; a bare time means its next occurrence."""
    today = now.astimezone(zone).date()
    try:
        if when.days_ahead is not None:
            day = today + timedelta(days=when.days_ahead)
        elif when.month is not None or when.day is not None:
            day = date(when.year or today.year, when.month or today.month, when.day or today.day)
            if day < today and when.year is None:
                if when.month is None:
                    # '5日' written on the 20th means next month's.
                    day = (day.replace(day=1) + timedelta(days=32)).replace(day=when.day or 1)
                elif (today - day).days > 183:
                    # '1月5日' written in December means next year's; '2月20日' written on
                    # 21 February is simply past.
                    day = day.replace(year=day.year + 1)
        else:
            day = today
        moment = datetime.combine(day, time(when.hour, when.minute), zone)
    except ValueError:
        raise UserError(texts.Schedule.BAD_DATE) from None
    if not when.has_date and moment <= now:
        moment += timedelta(days=1)
    if moment <= now:
        raise UserError(texts.Schedule.IN_THE_PAST)
    return moment


def occurrences(schedule: NoticeSchedule, *, after: datetime, until: datetime,
                zone: ZoneInfo) -> list[datetime]:
    """Fire times in (after, until]."""
    if not schedule.daily:
        run_at = schedule.run_at
        return [run_at] if run_at is not None and after < run_at <= until else []
    assert schedule.hour is not None and schedule.minute is not None
    out: list[datetime] = []
    day = after.astimezone(zone).date()
    while True:
        moment = datetime.combine(day, time(schedule.hour, schedule.minute), zone)
        if moment > until:
            return out
        if moment > after:
            out.append(moment)
        day += timedelta(days=1)


def latest_due(schedule: NoticeSchedule, *, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The most recent fire time at or before now."""
    if not schedule.daily:
        run_at = schedule.run_at
        return run_at if run_at is not None and run_at <= now else None
    # Never a fire time from before the schedule existed.
    after = max(now - timedelta(days=1), schedule.created_at)
    times = occurrences(schedule, after=after, until=now, zone=zone)
    return times[-1] if times else None


def describe(schedule: NoticeSchedule, zone: ZoneInfo) -> str:
    """'每天18:00' or '2月22日08:00'."""
    if schedule.daily:
        return texts.Schedule.DAILY_AT.format(hour=schedule.hour, minute=schedule.minute)
    assert schedule.run_at is not None
    local = schedule.run_at.astimezone(zone)
    return texts.Schedule.ONCE_AT.format(month=local.month, day=local.day, hour=local.hour,
                                         minute=local.minute)


async def create(
    session: AsyncSession, *, creator_id: int | None, origin: Node, origin_group_id: int | None,
    text: str, urgent: bool, scope: notices.Scope, now: datetime, daily: bool,
    run_at: datetime | None = None, hour: int | None = None, minute: int | None = None,
    config_key: str | None = None,
) -> NoticeSchedule:
    """Store a schedule (the caller arranges its job after the commit)."""
    schedule = NoticeSchedule(
        creator_id=creator_id, origin_node_id=origin.id, origin_group_id=origin_group_id,
        text=pii.mask_text(text), urgent=urgent, scope=scope.as_json(), daily=daily,
        run_at=run_at, hour=hour,
        minute=minute, config_key=config_key, created_at=now)
    session.add(schedule)
    await session.flush()
    return schedule


async def active(session: AsyncSession, *, creator_id: int | None = None
                 ) -> list[NoticeSchedule]:
    """Schedules not cancelled and not yet done (a one-off is done once it fired or missed)."""
    stmt = select(NoticeSchedule).where(NoticeSchedule.cancelled_at.is_(None))
    if creator_id is not None:
        stmt = stmt.where(NoticeSchedule.creator_id == creator_id)
    done = select(Notice.schedule_id).where(Notice.schedule_id.is_not(None))
    stmt = stmt.where((NoticeSchedule.daily.is_(True)) | (NoticeSchedule.id.not_in(done)))
    return list((await session.execute(stmt.order_by(NoticeSchedule.id))).scalars())


async def cancel(session: AsyncSession, *, schedule_id: int, person_id: int, now: datetime
                 ) -> NoticeSchedule:
    """取消定时: only the creator cancels their schedule."""
    schedule = await session.get(NoticeSchedule, schedule_id)
    if schedule is None or schedule.cancelled_at is not None or schedule.config_key:
        raise UserError(texts.Schedule.UNKNOWN.format(id=schedule_id))
    if schedule.creator_id != person_id:
        raise UserError(texts.Schedule.NOT_YOURS.format(id=schedule_id))
    schedule.cancelled_at = now
    return schedule


async def fire(session: AsyncSession, *, schedule: NoticeSchedule, fire_at: datetime,
               now: datetime, settings: NoticeSettings | None = None) -> int:
    """Make the notice of one fire time (once: keyed by schedule and fire time).
    Returns how many delivery rows were written (0 when this fire time was done before)."""
    origin = await session.get(Node, schedule.origin_node_id)
    assert origin is not None
    scope = await notices.scope_from_json(session, schedule.scope)
    _notice, rows = await notices.create(
        session, origin=origin, origin_group_id=schedule.origin_group_id,
        sender_id=schedule.creator_id, text=schedule.text, urgent=schedule.urgent, scope=scope,
        now=now, schedule_id=schedule.id, fire_at=fire_at, settings=settings)
    return rows


async def record_missed(session: AsyncSession, *, schedule: NoticeSchedule,
                        fire_at: datetime, now: datetime, zone: ZoneInfo) -> bool:
    """A fire time lost to downtime beyond the grace window: recorded once, creator told."""
    done = (await session.execute(select(Notice.id).where(
        Notice.schedule_id == schedule.id, Notice.fire_at == fire_at))).first()
    if done is not None:
        return False
    insert = insert_for(session)
    made = (await session.execute(insert(Notice).values(
        sender_id=schedule.creator_id, origin_node_id=schedule.origin_node_id,
        origin_group_id=schedule.origin_group_id, text=schedule.text, urgent=schedule.urgent,
        scope=schedule.scope, target_count=0, missed=True, schedule_id=schedule.id,
        fire_at=fire_at, created_at=now,
    ).on_conflict_do_nothing(index_elements=["schedule_id", "fire_at"]).returning(Notice.id))
    ).scalar_one_or_none()
    if made is None:
        return False
    if schedule.origin_group_id is not None:
        local = fire_at.astimezone(zone)
        group = await session.get(Group, schedule.origin_group_id)
        mentions = (await people.contact_ids(session, person_id=schedule.creator_id,
                                             transport=group.transport)
                    if schedule.creator_id is not None and group is not None else [])
        await outbox.queue(session, group_id=schedule.origin_group_id, source="schedule-missed",
                           now=now, mentions=mentions, text=texts.Schedule.MISSED.format(
                               id=schedule.id, when=texts.Schedule.ONCE_AT.format(
                                   month=local.month, day=local.day, hour=local.hour,
                                   minute=local.minute),
                               text=schedule.text[:30]))
    return True


async def catch_up(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                   grace: timedelta) -> tuple[int, int]:
    """After downtime: the latest missed fire time within the grace window is sent late,
    older ones are recorded as missed. Returns (fired, missed)."""
    fired = missed = 0
    for schedule in await active(session):
        last = (await session.execute(select(func.max(Notice.fire_at)).where(
            Notice.schedule_id == schedule.id))).scalar_one()
        times = occurrences(schedule, after=last or schedule.created_at, until=now, zone=zone)
        for index, moment in enumerate(times):
            if index == len(times) - 1 and now - moment <= grace:
                fired += bool(await fire(session, schedule=schedule, fire_at=moment, now=now))
            else:
                missed += await record_missed(session, schedule=schedule, fire_at=moment,
                                              now=now, zone=zone)
    return fired, missed


async def sync_config(session: AsyncSession, recurring: list[RecurringNoticeSettings], *,
                      now: datetime) -> list[NoticeSchedule]:
    """Recurring notices from the config become schedules keyed by their config key; a key
    removed from the config is cancelled. Returns the configured schedules."""
    keep: list[NoticeSchedule] = []
    wanted = {r.key: r for r in recurring}
    existing = {s.config_key: s for s in (await session.execute(
        select(NoticeSchedule).where(NoticeSchedule.config_key.is_not(None)))).scalars()}
    for key, schedule in existing.items():
        if key not in wanted and schedule.cancelled_at is None:
            schedule.cancelled_at = now
    roots = [n for n in await chain.all_nodes(session) if n.parent_id is None]
    if not roots:
        # No chain imported yet: the recurring notices are placed at the first start after.
        return keep
    for key, item in wanted.items():
        origin = (await chain.find_node(session, ref=item.origin) if item.origin
                  else roots[0] if roots else None)
        if origin is None:
            raise UserError(f"notices.recurring {key}: no node {item.origin or '(root)'}")
        hour, minute = (int(x) for x in item.time.split(":"))
        kinds = tuple(NodeKind(k) for k in item.kinds) if item.kinds else None
        scope = notices.Scope(item.down_to_tier, None, kinds).as_json()
        found = existing.get(key)
        if found is None:
            schedule = NoticeSchedule(config_key=key, created_at=now, daily=True)
            session.add(schedule)
        else:
            schedule = found
        schedule.origin_node_id = origin.id
        schedule.text, schedule.urgent, schedule.scope = item.text, item.urgent, scope
        schedule.hour, schedule.minute, schedule.cancelled_at = hour, minute, None
        keep.append(schedule)
    await session.flush()
    return keep
