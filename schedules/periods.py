"""Fixed jobs that catch up: each run of a fixed job (weekly close, daily roll-up, automatic
deductions) completes one period (a week, a day, an hour), recorded in job_run keyed by job and
period in the same transaction as the work. At start and on every run, every due period not yet
recorded is done once, in order; a run killed mid-way rolls back with its record and is redone.

A job's history starts with its first recorded period (a fresh database does only the latest
due one) and catch-up looks back at most `keep` (older gaps are listed as missed and can be run
by hand: `tierbot jobs run NAME --period …`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import JobRun
from models.base import insert_for

if TYPE_CHECKING:
    from bot.app import BotApp

log = logging.getLogger(__name__)

# The work of one period: (session, app, period key, the time it runs as) -> counts.
Work = Callable[[AsyncSession, "BotApp", str, datetime], Awaitable[tuple[int, ...]]]
# A job whose reads are long (the daily roll-up of a city): (app, period, as of) -> the work
# to run in the period's transaction. It reads before that transaction, in a read session of
# its own (BotApp.read_session: on SQLite off the event loop, without the writer's one
# connection, which the bot's messages need meanwhile).
Prepare = Callable[["BotApp", str, datetime], Awaitable[Work]]


class PeriodError(ValueError):
    """A period that is not one of the job's (wrong form, not due yet)."""


@dataclass(frozen=True, slots=True)
class FixedJob:
    """A job run on a cron trigger whose runs complete periods.

    `key` names the period a fire time completes, `start_of` is where a period's fire time is
    searched from (its inverse), `keep` how far back catch-up looks. A `sweep` job (its work
    looks at "now", e.g. the deduction checks) also runs on every call after its period is
    done; the record then only drives catch-up.
    """

    name: str
    cron: dict[str, Any]
    key: Callable[[datetime, ZoneInfo], str]
    start_of: Callable[[str, ZoneInfo], datetime]
    work: Work | None
    keep: timedelta
    sweep: bool = False
    doc: str = ""
    # Instead of `work`: read first, then write (see Prepare).
    prepare: Prepare | None = None

    def __post_init__(self) -> None:
        if (self.work is None) == (self.prepare is None):
            raise ValueError(f"job {self.name}: give either work or prepare")

    def trigger(self, zone: ZoneInfo) -> CronTrigger:
        return CronTrigger(timezone=zone, **self.cron)

    def fires(self, zone: ZoneInfo, *, since: datetime, until: datetime) -> list[datetime]:
        """Fire times in (since, until]."""
        trigger = self.trigger(zone)
        out: list[datetime] = []
        at = trigger.get_next_fire_time(None, since + timedelta(seconds=1))
        while at is not None and at <= until:
            out.append(at)
            at = trigger.get_next_fire_time(at, at + timedelta(seconds=1))
        return out

    def next_fire(self, zone: ZoneInfo, *, now: datetime) -> datetime | None:
        """The next fire time after now."""
        return self.trigger(zone).get_next_fire_time(None, now + timedelta(seconds=1))

    def fire_of(self, period: str, zone: ZoneInfo) -> datetime:
        """The fire time that completes `period` (PeriodError if there is none)."""
        try:
            start = self.start_of(period, zone)
        except ValueError as exc:
            raise PeriodError(f"{self.name}: not a period of this job: {period!r}") from exc
        at = self.trigger(zone).get_next_fire_time(None, start)
        if at is None or self.key(at, zone) != period:
            raise PeriodError(f"{self.name}: not a period of this job: {period!r}")
        return at


@dataclass(frozen=True, slots=True)
class Ran:
    """One period done (or, in a dry run, what it would have written)."""

    job: str
    period: str
    counts: tuple[int, ...]
    recorded: bool


@dataclass(frozen=True, slots=True)
class JobState:
    """What `tierbot jobs list` shows for one job."""

    name: str
    doc: str
    last_period: str | None
    last_run_at: datetime | None
    next_run_at: datetime | None
    missed: list[str]


async def _done(session: AsyncSession, job: str) -> tuple[str | None, set[str]]:
    first = (await session.execute(select(func.min(JobRun.key)).where(JobRun.job == job))
             ).scalar_one_or_none()
    if first is None:
        return None, set()
    keys = set((await session.execute(select(JobRun.key).where(JobRun.job == job))).scalars())
    return first, keys


async def due_periods(session: AsyncSession, *, job: FixedJob, now: datetime,
                      zone: ZoneInfo) -> list[tuple[str, datetime]]:
    """The periods to do now, oldest first: every due period within `keep` after the job's
    first recorded one that has no record (only the latest due one on a fresh database)."""
    fires = job.fires(zone, since=now - job.keep, until=now)
    if not fires:
        return []
    first, done = await _done(session, job.name)
    if first is None:
        latest = fires[-1]
        return [(job.key(latest, zone), latest)]
    out: list[tuple[str, datetime]] = []
    for at in fires:
        period = job.key(at, zone)
        if period >= first and period not in done and all(p != period for p, _ in out):
            out.append((period, at))
    return out


async def _record(session: AsyncSession, *, job: str, period: str, now: datetime) -> bool:
    made = (await session.execute(
        insert_for(session)(JobRun).values(job=job, key=period, at=now)
        .on_conflict_do_nothing(index_elements=["job", "key"])
        .returning(JobRun.id))).scalar_one_or_none()
    return made is not None


async def run_period(app: BotApp, job: FixedJob, *, period: str, at: datetime,
                     dry_run: bool = False, record: bool = True) -> Ran | None:
    """Do one period in one transaction with its record (None: already done, by this or
    another process). A dry run does the work and rolls it back."""
    zone = app.settings.zone
    now = app.now()
    # A period caught up late runs as of its fire time (its day, its week); the current one
    # (no later fire has passed) as of now.
    later = job.next_fire(zone, now=at)
    as_of = now if later is None or later > now else at
    if job.prepare is not None:
        work = await job.prepare(app, period, as_of)
    else:
        assert job.work is not None
        work = job.work
    async with app.session() as session:
        tx = await session.begin()
        try:
            recorded = False
            if record:
                recorded = await _record(session, job=job.name, period=period, now=now)
                if not recorded and not job.sweep:
                    await tx.rollback()
                    return None
            counts = await work(session, app, period, as_of)
        except BaseException:
            await tx.rollback()
            raise
        if dry_run:
            await tx.rollback()
        else:
            await tx.commit()
    if not dry_run:
        log.info("job %s: period %s done %s", job.name, period, counts)
    return Ran(job.name, period, counts, recorded and not dry_run)


async def catch_up(app: BotApp, job: FixedJob, *, dry_run: bool = False) -> list[Ran]:
    """Do every due period not done yet, in order; a sweep job then runs for now as well."""
    zone, now = app.settings.zone, app.now()
    async with app.session() as session:
        todo = await due_periods(session, job=job, now=now, zone=zone)
    out: list[Ran] = []
    for period, at in todo:
        ran = await run_period(app, job, period=period, at=at, dry_run=dry_run)
        if ran is not None:
            out.append(ran)
    if job.sweep and not any(r.recorded for r in out):
        fires = job.fires(zone, since=now - job.keep, until=now)
        if fires:
            ran = await run_period(app, job, period=job.key(fires[-1], zone), at=fires[-1],
                                   dry_run=dry_run, record=False)
            if ran is not None:
                out.append(ran)
    if len(todo) > 1 and not dry_run:
        log.warning("job %s caught up %d missed periods: %s", job.name, len(todo) - 1,
                    ", ".join(p for p, _ in todo[:-1]))
    return out


def totals(runs: Sequence[Ran], width: int) -> tuple[int, ...]:
    """The counts of several runs added up."""
    sums = [0] * width
    for ran in runs:
        for i, n in enumerate(ran.counts):
            sums[i] += n
    return tuple(sums)


async def state(app: BotApp, job: FixedJob) -> JobState:
    """Last completed period, next fire time and the periods missed (within `keep`)."""
    zone, now = app.settings.zone, app.now()
    async with app.session() as session:
        last = (await session.execute(
            select(JobRun.key, JobRun.at).where(JobRun.job == job.name)
            .order_by(JobRun.key.desc()).limit(1))).first()
        todo = await due_periods(session, job=job, now=now, zone=zone)
    return JobState(job.name, job.doc, last.key if last else None, last.at if last else None,
                    job.next_fire(zone, now=now), [p for p, _ in todo])
