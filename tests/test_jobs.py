"""Fixed jobs that catch up (issue 9, item 5): a weekly close or a daily roll-up missed during
downtime or killed mid-run is done at the next start or run, every missed period once, in
order; `tierbot jobs list|run` and `tierbot points close` drive them by hand."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.services import points
from bot.transports.memory import MemoryTransport
from models import JobRun, OutboxMessage, PointsWeek
from schedules import periods
from schedules.jobs import close_points_week, fixed_job, post_daily_rollup
from tests.conftest import SHANGHAI, TEST_KEYRING, count
from tests.test_cli import DEMO_CHAIN, TIERBOT


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2020, month, day, hour, minute, tzinfo=SHANGHAI)


class Restarts:
    """The bot with its scheduler, started and stopped on one database, chat and clock."""

    def __init__(self, settings: Settings, transport: MemoryTransport, clock: FakeClock):
        self.settings = settings.model_copy(update={"scheduler": True})
        self.transport = transport
        self.clock = clock
        transport._now = clock.now

    @asynccontextmanager
    async def run(self) -> AsyncIterator[BotApp]:
        app = build_app(self.settings, transport=self.transport, clock=self.clock)
        async with running(app):
            await app.idle()
            yield app
            await app.idle()


async def _weeks(app: BotApp) -> list[str]:
    async with app.session() as s:
        return list((await s.execute(select(PointsWeek.week).order_by(PointsWeek.id))).scalars())


async def _done(app: BotApp, job: str) -> list[str]:
    async with app.session() as s:
        return list((await s.execute(select(JobRun.key).where(JobRun.job == job)
                                     .order_by(JobRun.id))).scalars())


def _rollup_dates(transport: MemoryTransport, room: str, mark: int = 0) -> list[str]:
    return [s.text[len("【每日汇总 "):].split("】")[0] for s in transport.sent[mark:]
            if s.room_id == room and s.text.startswith("【每日汇总")]


async def test_a_weekly_close_missed_during_downtime_is_done_at_the_next_start(
        settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as app:
        assert await load_demo_chain(app)
    # Down from Friday 21 Feb until Tuesday 25 Feb: Monday's 09:00 close never ran.
    clock.set(at(2, 25, 10, 0))
    mark = len(transport.sent)
    async with bots.run() as app:
        assert await _weeks(app) == ["2020-W08"]
        assert "2020-W08" in await _done(app, "points-week")
        assert await count(app, OutboxMessage, OutboxMessage.source == "points-week") == 4
    sent = [s for s in transport.sent[mark:] if s.text.startswith("【积分周榜】") and "第8周" in s.text]
    assert len(sent) == 4 and len({s.room_id for s in sent}) == 4
    # Another restart the same week: nothing twice.
    async with bots.run() as app:
        assert await _weeks(app) == ["2020-W08"]
        assert await count(app, OutboxMessage, OutboxMessage.source == "points-week") == 4


async def test_weeks_missed_in_a_row_are_closed_once_each_in_order(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as app:
        assert await load_demo_chain(app)
    clock.set(at(2, 24, 9, 0))   # on time: W08
    async with bots.run() as app:
        assert await _weeks(app) == ["2020-W08"]
    clock.set(at(3, 17, 12, 0))  # down three Mondays: W09, W10, W11
    async with bots.run() as app:
        assert await _weeks(app) == ["2020-W08", "2020-W09", "2020-W10", "2020-W11"]
        async with app.session() as s:
            closed = (await s.execute(select(PointsWeek.week, PointsWeek.ends_at)
                                      .order_by(PointsWeek.id))).all()
        # Each week ranked as of its own end, not of today.
        for week, ends_at in closed:
            assert ends_at == points.week_bounds(week, SHANGHAI)[1]
        # The job run on its trigger afterwards finds nothing left.
        assert await close_points_week(app) == 0
        assert await _weeks(app) == ["2020-W08", "2020-W09", "2020-W10", "2020-W11"]


async def test_a_weekly_close_killed_mid_run_is_redone_once(settings, transport, clock,
                                                            monkeypatch):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as app:
        assert await load_demo_chain(app)
    clock.set(at(2, 24, 9, 0))
    real_post = points.post_lists

    async def dies(*args, **kwargs):   # the lists are ranked and stored, then the process dies
        await real_post(*args, **kwargs)
        raise OSError("killed")

    monkeypatch.setattr(points, "post_lists", dies)
    async with bots.run() as app:
        # The start survives a failing job; the half-done week left no trace.
        assert await _weeks(app) == []
        assert "2020-W08" not in await _done(app, "points-week")
        with pytest.raises(OSError):
            await close_points_week(app)
        assert await count(app, OutboxMessage, OutboxMessage.source == "points-week") == 0
    monkeypatch.setattr(points, "post_lists", real_post)
    clock.advance(timedelta(hours=5))
    async with bots.run() as app:
        assert await _weeks(app) == ["2020-W08"]
        assert await count(app, OutboxMessage, OutboxMessage.source == "points-week") == 4
        assert await close_points_week(app) == 0


async def test_daily_rollups_missed_are_caught_up_in_order_with_their_dates(
        settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as app:
        assert await load_demo_chain(app)
    clock.set(at(2, 21, 20, 0))
    async with bots.run() as app:
        pass
    assert _rollup_dates(transport, "futian@chatroom") == ["2月21日"]
    # Down over three evenings; back on the 25th before 20:00.
    clock.set(at(2, 25, 9, 0))
    mark = len(transport.sent)
    async with bots.run() as app:
        # (The first start, on the 21st at 10:00, did the 20th: before the chain, silent.)
        assert await _done(app, "daily-rollup") == [
            "2020-02-20", "2020-02-21", "2020-02-22", "2020-02-23", "2020-02-24"]
        assert await post_daily_rollup(app) == 0
    assert _rollup_dates(transport, "futian@chatroom", mark) == [
        "2月22日", "2月23日", "2月24日"]
    assert _rollup_dates(transport, "team1@chatroom", mark) == [
        "2月22日", "2月23日", "2月24日"]


async def test_a_fresh_database_does_only_the_latest_period(bot, clock):
    job = fixed_job(bot.settings, "daily-rollup")
    async with bot.session() as s:
        assert [p for p, _ in await periods.due_periods(
            s, job=job, now=clock.now(), zone=SHANGHAI)] == ["2020-02-20"]
    assert await post_daily_rollup(bot) == 0          # no chain yet: nothing to say
    assert await _done(bot, "daily-rollup") == ["2020-02-20"]
    clock.set(at(2, 23, 21, 0))
    async with bot.session() as s:
        assert [p for p, _ in await periods.due_periods(
            s, job=job, now=clock.now(), zone=SHANGHAI)] == [
            "2020-02-21", "2020-02-22", "2020-02-23"]


async def test_catch_up_looks_back_a_bounded_time(bot, clock):
    assert await post_daily_rollup(bot) == 0
    clock.set(at(6, 1, 21, 0))  # three months later: a week of roll-ups, not ninety
    job = fixed_job(bot.settings, "daily-rollup")
    async with bot.session() as s:
        todo = [p for p, _ in await periods.due_periods(s, job=job, now=clock.now(),
                                                        zone=SHANGHAI)]
    assert todo == [f"2020-05-{d}" for d in (26, 27, 28, 29, 30, 31)] + ["2020-06-01"]


def test_periods_name_and_find_their_fire_times(settings):
    zone = settings.zone
    week = fixed_job(settings, "points-week")
    assert week.fire_of("2020-W09", zone) == at(3, 2, 9, 0)
    assert week.key(at(3, 2, 9, 0), zone) == "2020-W09"
    day = fixed_job(settings, "daily-rollup")
    assert day.fire_of("2020-02-21", zone) == at(2, 21, 20, 0)
    hour = fixed_job(settings, "points-checks")
    assert hour.fire_of("2020-02-21T13:00", zone) == at(2, 21, 13, 0)
    for job, bad in ((week, "2020-09"), (week, "2020-W54"), (day, "2020-02-30"),
                     (day, "2020-W09"), (hour, "2020-02-21T13:30"), (hour, "soon")):
        with pytest.raises(periods.PeriodError):
            job.fire_of(bad, zone)


# --- the CLI ---------------------------------------------------------------------------------


def _cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERBOT_")}
    env["TIERBOT_DATABASE_URL"] = url
    env["TIERBOT_KEYRING"] = TEST_KEYRING.to_json()  # the suite's keys, as in-process
    return subprocess.run([TIERBOT, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120, check=False)


def _week_rows(url: str) -> list[str]:
    async def go() -> list[str]:
        from bot import store

        engine = store.create_engine(url)
        try:
            async with store.sessionmaker(engine)() as s:
                return list((await s.execute(select(PointsWeek.week).order_by(PointsWeek.id))
                             ).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_jobs_cli_lists_runs_dry_runs_and_closes_a_week(db_url: str, tmp_path: Path):
    assert _cli(tmp_path, db_url, "chain", "import", str(DEMO_CHAIN)).returncode == 0
    listed = _cli(tmp_path, db_url, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    names = ("daily-rollup", "points-checks", "points-week", "shop-remind", "shop-escalate",
             "units-remind", "units-escalate", "retention-purge")
    for name in names:
        assert f"{name}:" in listed.stdout
    assert listed.stdout.count("last done: never") == len(names)
    assert listed.stdout.count("next run:") == len(names)

    dry = _cli(tmp_path, db_url, "points", "close", "--week", "2020-W09", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "points-week 2020-W09: would write 4" in dry.stdout
    assert _week_rows(db_url) == []

    done = _cli(tmp_path, db_url, "points", "close", "--week", "2020-W09")
    assert done.returncode == 0, done.stderr
    assert "points-week 2020-W09: done, wrote 4" in done.stdout
    assert _week_rows(db_url) == ["2020-W09"]
    again = _cli(tmp_path, db_url, "jobs", "run", "points-week", "--period", "2020-W09")
    assert again.returncode == 0 and "already done" in again.stdout
    assert _week_rows(db_url) == ["2020-W09"]

    listed = _cli(tmp_path, db_url, "jobs", "list")
    assert "last done: 2020-W09" in listed.stdout

    for args, says in ((("jobs", "run", "nightly"), "no job 'nightly'"),
                       (("jobs", "run", "daily-rollup", "--period", "2020-02-30"),
                        "not a period"),
                       (("points", "close", "--week", "2999-W09"), "not due until")):
        bad = _cli(tmp_path, db_url, *args)
        assert bad.returncode == 2 and says in bad.stderr, (args, bad.stderr)
