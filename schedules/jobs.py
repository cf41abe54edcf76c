"""Job functions and the table of jobs: each job gets the app, opens its own transaction,
writes rows and returns; tests call them with a fake clock."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import notice as notices
from bot.services import rollup, watchdog
from bot.services import schedule as schedules
from models import Echo, NoticeSchedule
from schedules import periods

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


async def _rollup_prepare(app: BotApp, period: str, now: datetime) -> periods.Work:
    """The day's figures of every tier-1..3 node, read apart from the writer (a city's take
    seconds); then queued in the period's transaction."""
    async with app.read_session() as reading, reading.begin():
        found = await rollup.daily_texts(reading, now=now, zone=app.settings.zone,
                                         day=date.fromisoformat(period))

    async def write(session: AsyncSession, _app: BotApp, _period: str, at: datetime
                    ) -> tuple[int, ...]:
        return (await rollup.queue_daily(session, found=found, now=at),)

    return write


async def post_daily_rollup(app: BotApp) -> int:
    """20:00: each day's figures to every tier-1..3 group (once per day; missed days caught up
    in order). Returns rows written."""
    runs = await periods.catch_up(app, fixed_job(app.settings, "daily-rollup"))
    if any(r.counts[0] for r in runs):
        app.sender.wake()
    return periods.totals(runs, 1)[0]


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
            rows = await schedules.fire(session, schedule=schedule, fire_at=fire_at, now=now,
                                          settings=app.settings.notices)
    app.sender.wake()
    return rows


async def watch_accounts(app: BotApp) -> watchdog.Report:
    """Every minute: each sending account's health, one alert per problem and episode through
    another channel, the self-tests, failover and failback (bot.services.watchdog)."""
    settings = app.settings
    configured = [a.name for a in settings.wechaty.accounts] if settings.transport == (
        "wechaty") else []
    async with app.session() as session, session.begin():
        report = await watchdog.run(
            session, settings=settings.watchdog, states=app.transport.account_states(),
            seen=app.activity.last_inbound, transport=app.transport.name, now=app.now(),
            zone=settings.zone, split_at=settings.pacing.split_at, configured=configured,
            default_account=app.sender.default_account)
    if report.probes:
        # A probe goes out like a reply: the sender looks for replies when told.
        app.sender.replies_written()
    if report.queued or report.moved or report.moved_back:
        app.sender.wake()
    return report


# --- points (issue 5) ----------------------------------------------------------------------

async def _points_checks_work(session: AsyncSession, app: BotApp, period: str, now: datetime
                             ) -> tuple[int, ...]:
    from bot.services import points

    settings, zone = app.settings.points, app.settings.zone
    late = await points.check_late_returns(session, now=now, zone=zone, settings=settings)
    missed = await points.check_disinfection(session, now=now, zone=zone, settings=settings)
    approved = await points.auto_approve(session, now=now, zone=zone, settings=settings)
    return len(late), len(missed), approved


async def check_points(app: BotApp) -> tuple[int, int, int]:
    """Hourly: late return reports and missed disinfection become deductions (one per stay,
    one per landlord's node and day), old pending events are auto-approved when configured;
    hours missed are checked as of their own time first."""
    runs = await periods.catch_up(app, fixed_job(app.settings, "points-checks"))
    late, missed, approved = periods.totals(runs, 3)
    if late or missed or approved:
        app.sender.wake()
    return late, missed, approved


async def _points_week_work(session: AsyncSession, app: BotApp, period: str, now: datetime
                            ) -> tuple[int, ...]:
    from bot.services import points

    settings, zone = app.settings.points, app.settings.zone
    weeks = await points.close_week(session, now=now, zone=zone, settings=settings, week=period)
    return (await points.post_lists(session, weeks=weeks, now=now, zone=zone),)


async def close_points_week(app: BotApp) -> int:
    """Mondays 09:00: rank landlords per scope, store last week's red and black lists and
    rewards, queue the lists for the groups (each week once; missed weeks caught up in order).
    Returns rows written."""
    return await _catch_up_rows(app, "points-week")


# --- end points ----------------------------------------------------------------------------

# --- shop rows: missing check-ins --------------------------------------------------------

async def _shop_remind_work(session: AsyncSession, app: BotApp, period: str, now: datetime
                            ) -> tuple[int, ...]:
    from bot.services import shop

    day = date.fromisoformat(period)
    if day != app.now().astimezone(app.settings.zone).date():
        return (0,)  # a reminder for a day gone by is noise; the escalation tells the team
    return (await shop.remind_missing(session, day=day, now=now),)


async def _shop_escalate_work(session: AsyncSession, app: BotApp, period: str, now: datetime
                              ) -> tuple[int, ...]:
    from bot.services import shop

    return (await shop.escalate_missing(session, day=date.fromisoformat(period), now=now,
                                        at_time=app.settings.shops.escalate_time),)


async def _catch_up_rows(app: BotApp, name: str) -> int:
    """Catch a fixed job of one count (rows written) up; wake the sender if it wrote."""
    runs = await periods.catch_up(app, fixed_job(app.settings, name))
    written = periods.totals(runs, 1)[0]
    if written:
        app.sender.wake()
    return written


async def remind_shop_checkins(app: BotApp) -> int:
    """10:00: each shop row without a check-in today is reminded, its captain mentioned
    (once per day; a reminder for a day gone by is not sent). Returns rows written."""
    return await _catch_up_rows(app, "shop-remind")


async def escalate_shop_checkins(app: BotApp) -> int:
    """14:00: the team's tier-4 group hears of each row still without a check-in today
    (once per day; a missed day caught up). Returns rows written."""
    return await _catch_up_rows(app, "shop-escalate")


# --- end shop rows -------------------------------------------------------------------------

# --- enterprises and key projects (issue 12) ------------------------------------------------


def _unit_work(escalate: bool) -> periods.Work:
    async def work(session: AsyncSession, app: BotApp, period: str, now: datetime
                   ) -> tuple[int, ...]:
        from bot.services import unit

        settings = app.settings.units
        at = settings.escalate_time if escalate else settings.remind_time
        # The clock's now, not the period's fire time: a day caught up late is over, and
        # its reminder would come too late to help (its escalation still tells).
        return (await unit.remind_missing(session, day=date.fromisoformat(period),
                                          now=app.now(), zone=app.settings.zone,
                                          escalate=escalate, at=at),)
    return work


async def remind_units(app: BotApp) -> int:
    """remind_time (10:00): enterprises without today's 企业日报 and key projects without
    today's 工作卡 are reminded in their own group (each day once, missed days caught up)."""
    return await _catch_up_rows(app, "units-remind")


async def escalate_units(app: BotApp) -> int:
    """escalate_time (14:00): each community is told which of its enterprises and key projects
    have still not reported today (each day once, missed days caught up)."""
    return await _catch_up_rows(app, "units-escalate")


# --- end enterprises and key projects ---------------------------------------------------------


async def _purge_work(session: AsyncSession, app: BotApp, period: str, now: datetime
                      ) -> tuple[int, ...]:
    from bot.services import retention

    return (await retention.purge_due(session, now=now, settings=app.settings.retention)
            ).as_tuple()


async def purge_personal_data(app: BotApp) -> tuple[int, ...]:
    """Daily: delete or anonymise what is past its retention period (each missed day once, as
    of its own run time). Returns rows per kind (retention.PURGE_KINDS)."""
    from bot.services import retention

    runs = await periods.catch_up(app, fixed_job(app.settings, "retention-purge"))
    return periods.totals(runs, len(retention.PURGE_KINDS))


def _hm(text: str) -> tuple[int, int]:
    hour, minute = (int(x) for x in text.split(":"))
    return hour, minute


def _day_key(at: datetime, zone: ZoneInfo) -> str:
    """A daily job's period: the local date of its fire time, 2020-02-21."""
    return f"{at.astimezone(zone):%Y-%m-%d}"


def _day_start(period: str, zone: ZoneInfo) -> datetime:
    return datetime.combine(date.fromisoformat(period), time(0, 0), zone)


def _minute_start(period: str, zone: ZoneInfo) -> datetime:
    return datetime.strptime(period, "%Y-%m-%dT%H:%M").replace(tzinfo=zone)


def _week_end(period: str, zone: ZoneInfo) -> datetime:
    from bot.services import points

    return points.week_bounds(period, zone)[1]


def _last_week(at: datetime, zone: ZoneInfo) -> str:
    from bot.services import points

    return points.last_week(at, zone)


def _daily(name: str, hm: str, work: periods.Work | None, *, keep: timedelta, doc: str,
           prepare: periods.Prepare | None = None) -> periods.FixedJob:
    """A job run once a day at hm (local time), its period the day, 2020-02-21."""
    hour, minute = _hm(hm)
    return periods.FixedJob(name, {"hour": hour, "minute": minute}, key=_day_key,
                            start_of=_day_start, work=work, keep=keep, doc=doc,
                            prepare=prepare)


def fixed_jobs(settings: Settings) -> list[periods.FixedJob]:
    """The jobs whose runs complete periods (caught up at start and on every run)."""
    week_hour, week_minute = _hm(settings.points.weekly_time)
    day = "period: a day, 2020-02-21"
    return [
        _daily("daily-rollup", settings.notices.rollup_time, None, prepare=_rollup_prepare,
               keep=timedelta(days=7), doc=f"daily roll-up to tier-1..3 groups; {day}"),
        # points (issue 5): the hourly checks run on the minute of the disinfection deadline.
        periods.FixedJob(
            "points-checks", {"minute": _hm(settings.points.disinfection_deadline)[1]},
            key=lambda at, zone: f"{at.astimezone(zone):%Y-%m-%dT%H:%M}",
            start_of=_minute_start, work=_points_checks_work, keep=timedelta(days=3),
            sweep=True,
            doc="automatic deductions and auto-approval; period: an hour, 2020-02-21T20:00"),
        periods.FixedJob(
            "points-week", {"day_of_week": settings.points.weekly_day, "hour": week_hour,
                            "minute": week_minute},
            key=_last_week, start_of=_week_end, work=_points_week_work,
            keep=timedelta(weeks=8),
            doc="weekly close: ranking, red and black lists, rewards; period: a week, "
                "2020-W09"),
        _daily("shop-remind", settings.shops.remind_time, _shop_remind_work,
               keep=timedelta(days=1),
               doc=f"shop rows without today's check-in reminded; {day}"),
        _daily("shop-escalate", settings.shops.escalate_time, _shop_escalate_work,
               keep=timedelta(days=1),
               doc="shop rows still without a check-in told to the tier-4 group; period: a day"),
        _daily("retention-purge", settings.retention.purge_time, _purge_work,
               keep=timedelta(days=7),
               doc="purge of personal records past their retention (readings and stays, "
                   f"inbound, outbox text, access log); {day}"),
        _daily("units-remind", settings.units.remind_time, _unit_work(escalate=False),
               keep=timedelta(days=2),
               doc=f"enterprise reports and work cards missing: remind; {day}"),
        _daily("units-escalate", settings.units.escalate_time, _unit_work(escalate=True),
               keep=timedelta(days=2),
               doc="enterprise reports and work cards still missing: tell the community; "
                   f"{day}"),
    ]


def fixed_job(settings: Settings, name: str) -> periods.FixedJob:
    """One fixed job by name (KeyError if there is none)."""
    for job in fixed_jobs(settings):
        if job.name == name:
            return job
    raise KeyError(name)


_RUNNERS: dict[str, Callable[[BotApp], Awaitable[Any]]] = {
    "daily-rollup": post_daily_rollup, "points-checks": check_points,
    "points-week": close_points_week, "shop-remind": remind_shop_checkins,
    "shop-escalate": escalate_shop_checkins, "units-remind": remind_units,
    "units-escalate": escalate_units, "retention-purge": purge_personal_data}


async def catch_up_fixed(app: BotApp) -> None:
    """At start: every fixed job does its missed periods (a failure is logged, not fatal)."""
    for job in fixed_jobs(app.settings):
        try:
            await _RUNNERS[job.name](app)
        except Exception:
            log.exception("job %s: catching up failed; it is tried again at its next run",
                          job.name)


def JOBS(settings: Settings) -> list[JobSpec]:  # noqa: N802 - the table of jobs
    """The jobs APScheduler runs (scheduled notices are added per schedule by the scheduler;
    the fixed jobs catch up on every run)."""
    from bot.scheduler import JobSpec

    args: dict[str, Any] = {"seconds": settings.notices.check_every_seconds}
    watch: list[JobSpec] = [JobSpec("account-watchdog", watch_accounts, "interval", {
        "seconds": settings.watchdog.check_every_seconds})] if settings.watchdog.enabled else []
    return [JobSpec("notice-checks", check_notices, "interval", args), *watch] + [
        JobSpec(job.name, _RUNNERS[job.name], "cron", dict(job.cron))
        for job in fixed_jobs(settings)]
