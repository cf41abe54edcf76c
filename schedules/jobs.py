"""Job functions and the table of jobs: each job gets the app, opens its own transaction,
writes rows and returns; tests call them with a fake clock."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from bot.services import notice as notices
from bot.services import rollup
from bot.services import schedule as schedules
from models import Echo, NoticeSchedule

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.config import Settings
    from bot.scheduler import JobSpec

log = logging.getLogger(__name__)

# Echoes older than this can no longer prove anything (a crash is reconciled at the next start).
ECHO_KEEP = timedelta(days=2)


async def check_notices(app: BotApp) -> tuple[int, int]:
    """Every minute: remind silent groups, escalate to the tier above (once each)."""
    async with app.session() as session, session.begin():
        reminded, escalated = await notices.remind_and_escalate(
            session, now=app.now(), settings=app.settings.notices)
        await session.execute(delete(Echo).where(Echo.at < app.now() - ECHO_KEEP))
    if reminded or escalated:
        app.sender.wake()
    return reminded, escalated


async def post_daily_rollup(app: BotApp) -> int:
    """20:00: today's figures to every tier-1..3 group (once per day)."""
    async with app.session() as session, session.begin():
        written = await rollup.post_daily(session, now=app.now(), zone=app.settings.zone,
                                          fever_threshold=app.settings.tenants.fever_threshold)
    if written:
        app.sender.wake()
    return written


async def fire_schedule(app: BotApp, schedule_id: int) -> int:
    """A scheduled notice is due: make it (keyed by schedule and fire time), nothing more."""
    now = app.now()
    async with app.session() as session, session.begin():
        schedule = await session.get(NoticeSchedule, schedule_id)
        if schedule is None or schedule.cancelled_at is not None:
            return 0
        fire_at = schedules.latest_due(schedule, now=now, zone=app.settings.zone)
        if fire_at is None:
            return 0
        if now - fire_at > timedelta(minutes=app.settings.notices.grace_minutes):
            await schedules.record_missed(session, schedule=schedule, fire_at=fire_at, now=now,
                                          zone=app.settings.zone)
            rows = 0
        else:
            rows = await schedules.fire(session, schedule=schedule, fire_at=fire_at, now=now)
    app.sender.wake()
    return rows


# --- points (issue 5) ----------------------------------------------------------------------

async def check_points(app: BotApp) -> tuple[int, int, int]:
    """Hourly: late return reports and missed disinfection become deductions (one per stay,
    one per landlord's node and day), old pending events are auto-approved when configured."""
    from bot.services import points

    settings, zone, now = app.settings.points, app.settings.zone, app.now()
    async with app.session() as session, session.begin():
        late = await points.check_late_returns(session, now=now, zone=zone, settings=settings)
        missed = await points.check_disinfection(session, now=now, zone=zone, settings=settings)
        approved = await points.auto_approve(session, now=now, zone=zone, settings=settings)
    if approved:
        app.sender.wake()
    return len(late), len(missed), approved


async def close_points_week(app: BotApp) -> int:
    """Mondays 09:00: rank landlords per scope, store last week's red and black lists and
    rewards, queue the lists for the groups (a second run for the same week does nothing)."""
    from bot.services import points

    settings, zone, now = app.settings.points, app.settings.zone, app.now()
    async with app.session() as session, session.begin():
        weeks = await points.close_week(session, now=now, zone=zone, settings=settings)
        written = await points.post_lists(session, weeks=weeks, now=now, zone=zone)
    if written:
        app.sender.wake()
    return written
# --- end points ----------------------------------------------------------------------------


def JOBS(settings: Settings) -> list[JobSpec]:  # noqa: N802 - the table of jobs
    """The fixed jobs (scheduled notices are added per schedule by the scheduler)."""
    from bot.scheduler import JobSpec

    hour, minute = (int(x) for x in settings.notices.rollup_time.split(":"))
    args: dict[str, Any] = {"seconds": settings.notices.check_every_seconds}
    return [
        JobSpec("notice-checks", check_notices, "interval", args),
        JobSpec("daily-rollup", post_daily_rollup, "cron", {"hour": hour, "minute": minute}),
        # points (issue 5): the hourly checks run on the minute of the disinfection deadline.
        JobSpec("points-checks", check_points, "cron",
                {"minute": int(settings.points.disinfection_deadline.split(":")[1])}),
        JobSpec("points-week", close_points_week, "cron", {
            "day_of_week": settings.points.weekly_day,
            "hour": int(settings.points.weekly_time.split(":")[0]),
            "minute": int(settings.points.weekly_time.split(":")[1])}),
    ]
