"""The scheduler: APScheduler decides when; jobs write rows. Jobs are rebuilt from our tables
at every start (stable ids, replace_existing), and missed fire times are caught up or
recorded before the scheduler starts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services import schedule as schedules
from models import NoticeSchedule
from schedules.jobs import JOBS, catch_up_fixed, fire_schedule

if TYPE_CHECKING:
    from bot.app import BotApp

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job of the table: stable id, function of the app, trigger alias and its arguments."""

    id: str
    func: Callable[..., Awaitable[Any]]
    trigger: str
    args: dict[str, Any] = field(default_factory=dict)


class Scheduler:
    """One AsyncIOScheduler in the users' time zone, with an in-memory job store (never shared
    between processes: the schedules themselves live in the database)."""

    def __init__(self, app: BotApp):
        self.app = app
        grace = int(app.settings.notices.grace_minutes * 60) or 1
        self.aps = AsyncIOScheduler(timezone=app.settings.zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": grace})

    async def start(self) -> None:
        """Sync recurring notices from the config, catch up, add every job, start."""
        app = self.app
        async with app.session() as session, session.begin():
            await schedules.sync_config(session, app.settings.notices.recurring, now=app.now())
            fired, missed = await schedules.catch_up(
                session, now=app.now(), zone=app.settings.zone,
                grace=timedelta(minutes=app.settings.notices.grace_minutes))
            active = await schedules.active(session)
        if fired or missed:
            log.warning("after downtime: %d scheduled notices sent late, %d recorded missed",
                        fired, missed)
            app.sender.wake()
        # Fixed jobs: weeks, days and hours missed during downtime (or killed mid-run) are
        # done now, in order, before APScheduler takes over.
        await catch_up_fixed(app)
        for spec in JOBS(app.settings):
            self.aps.add_job(spec.func, spec.trigger, args=[app], id=spec.id,
                             replace_existing=True, **spec.args)
        for item in active:
            self.add(item)
        self.aps.start()

    def add(self, schedule: NoticeSchedule) -> None:
        """(Re)place the job of one schedule."""
        if schedule.daily:
            self.aps.add_job(fire_schedule, "cron", args=[self.app, schedule.id],
                             id=f"schedule-{schedule.id}", replace_existing=True,
                             hour=schedule.hour, minute=schedule.minute)
        elif schedule.run_at is not None:
            self.aps.add_job(fire_schedule, "date", args=[self.app, schedule.id],
                             id=f"schedule-{schedule.id}", replace_existing=True,
                             run_date=schedule.run_at)

    def remove(self, schedule_id: int) -> None:
        """Drop the job of a cancelled schedule."""
        job = self.aps.get_job(f"schedule-{schedule_id}")
        if job is not None:
            job.remove()

    def job_ids(self) -> list[str]:
        """The ids of the scheduled jobs."""
        return [job.id for job in self.aps.get_jobs()]

    async def stop(self) -> None:
        """Stop scheduling (a job already running finishes on its own)."""
        if self.aps.running:
            self.aps.shutdown(wait=False)
