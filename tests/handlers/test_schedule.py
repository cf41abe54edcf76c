"""定时通知, 每天 … 通知, 定时列表, 取消定时, the scheduler's jobs, restarts and catch-up, and
recurring notices from the config, through the in-memory chat and the fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import select

from bot import texts
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import RecurringNoticeSettings, Settings
from bot.console import load_demo_chain
from bot.transports.memory import MemoryTransport
from models import Notice, NoticeSchedule, OutboxMessage
from schedules.jobs import fire_schedule
from tests.conftest import SHANGHAI, Chat, DemoChain, count

BELOW_FUTIAN = {"changchun@chatroom", "team1@chatroom", "team1-landlords@chatroom",
                "dong@chatroom", "ying@chatroom", "shoprow1@chatroom"}
TENANT_GROUPS = ["dong@chatroom", "ying@chatroom"]
DISINFECT = "请今日完成楼道消毒"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in 2020, Shanghai time."""
    return datetime(2020, month, day, hour, minute, tzinfo=SHANGHAI)


def notice_rooms(transport: MemoryTransport, tag: str) -> list[str]:
    """Rooms the tagged notice itself went to (not a confirmation to the sender)."""
    return sorted(s.room_id for s in transport.sent
                  if s.text.startswith(tag) and "已发出" not in s.text)


async def fire(app: BotApp, schedule_id: int) -> int:
    """Run the schedule's job as APScheduler would, then let the sender drain."""
    rows = await fire_schedule(app, schedule_id)
    await app.idle()
    return rows


# --- 定时通知: a one-off notice -----------------------------------------------------------------


async def test_a_scheduled_notice_waits_for_its_time(bot, chat: Chat, chain: DemoChain, clock,
                                                     transport):
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 明天8:00 " + DISINFECT)
    assert chat.replies(chain.subdistrict_group) == [
        f"已设定定时通知#1：2月22日08:00 发往 6 个群。内容：{DISINFECT}"]
    assert await count(bot, NoticeSchedule) == 1
    assert await count(bot, Notice) == 0 and await count(bot, OutboxMessage) == 0
    # Too early: the job does nothing.
    assert await fire(bot, 1) == 0
    clock.set(at(2, 22, 7, 59))
    assert await fire(bot, 1) == 0
    assert notice_rooms(transport, "【通知#") == []
    assert await count(bot, Notice) == 0
    clock.set(at(2, 22, 8, 0))
    assert await fire(bot, 1) == 6
    assert notice_rooms(transport, f"【通知#1】{DISINFECT}") == sorted(BELOW_FUTIAN)
    async with bot.session() as s:
        notice = (await s.execute(select(Notice))).scalar_one()
    assert notice.schedule_id == 1 and notice.fire_at == at(2, 22, 8, 0)
    assert not notice.missed and notice.target_count == 6


async def test_running_the_job_twice_makes_one_notice(bot, chat: Chat, chain: DemoChain, clock,
                                                      transport):
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 明天8:00 " + DISINFECT)
    clock.set(at(2, 22, 8, 0))
    assert await fire(bot, 1) == 6
    assert await fire(bot, 1) == 0
    clock.advance(timedelta(minutes=5))  # a late second run (a restart, a misfire)
    assert await fire(bot, 1) == 0
    assert await count(bot, Notice) == 1
    assert await count(bot, OutboxMessage) == 6
    assert len(notice_rooms(transport, "【通知#")) == 6


async def test_a_date_and_time(bot, chat: Chat, chain: DemoChain, clock, transport):
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 3月1日 20:00 开视频会")
    assert chat.replies(chain.subdistrict_group) == [
        "已设定定时通知#1：3月1日20:00 发往 6 个群。内容：开视频会"]
    async with bot.session() as s:
        schedule = await s.get(NoticeSchedule, 1)
    assert schedule.run_at == at(3, 1, 20, 0) and not schedule.daily
    clock.set(at(3, 1, 19, 59))
    assert await fire(bot, 1) == 0
    clock.set(at(3, 1, 20, 0))
    assert await fire(bot, 1) == 6
    assert notice_rooms(transport, "【通知#1】开视频会") == sorted(BELOW_FUTIAN)


async def test_a_narrower_scheduled_notice(bot, chat: Chat, chain: DemoChain, clock, transport):
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 明天8:00 房东群 今天上报消毒")
    assert chat.replies(chain.subdistrict_group) == [
        "已设定定时通知#1：2月22日08:00 发往 1 个群。内容：今天上报消毒"]
    clock.set(at(2, 22, 8, 0))
    assert await fire(bot, 1) == 1
    assert notice_rooms(transport, "【通知#1】今天上报消毒") == ["team1-landlords@chatroom"]


async def test_a_time_in_the_past_gets_a_hint(bot, chat: Chat, chain: DemoChain):
    # 10:00 on 21 February.
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 今天8:00 开会")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.IN_THE_PAST]
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 2月21日 9:00 开会")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.IN_THE_PAST]
    assert await count(bot, NoticeSchedule) == 0


async def test_yesterdays_date_is_in_the_past_not_next_year(bot, chat: Chat, chain: DemoChain):
    # Written on 21 February 2020, 2月20日 is yesterday: a slip, not a notice for 2021 (the
    # confirmation shows no year, so the commander could not tell it would wait a year).
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 2月20日 8:00 开会")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.IN_THE_PAST]
    assert await count(bot, NoticeSchedule) == 0


async def test_a_bare_time_means_its_next_occurrence(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 8:00 开会")
    assert chat.replies(chain.subdistrict_group) == [
        "已设定定时通知#1：2月22日08:00 发往 6 个群。内容：开会"]


async def test_only_commanders_schedule(bot, chat: Chat, chain: DemoChain):
    refused = texts.General.NOT_PERMITTED.format(command="定时通知", who="本群指挥长")
    await chat.say(chain.community_group, chain.secretary, "定时通知 明天8:00 开会")
    assert chat.replies(chain.community_group) == [refused]
    await chat.say(chain.tenant_group, chain.tenant, "定时通知 明天8:00 大家不要出门")
    assert chat.replies(chain.tenant_group) == [refused]
    await chat.say(chain.tenant_group, chain.tenant, "每天 18:00 通知 大家不要出门")
    assert chat.replies(chain.tenant_group) == [refused]
    # A team member sits in the tier-3 team group, but the team commander commands it.
    await chat.say(chain.team_group, chain.team_member, "定时通知 明天8:00 开会")
    assert chat.replies(chain.team_group) == [refused]
    assert await count(bot, NoticeSchedule) == 0
    # The tier-4 group is the team member's to command.
    await chat.say(chain.landlords_group, chain.team_member, "定时通知 明天8:00 各位房东上报消毒")
    assert chat.replies(chain.landlords_group)[0].startswith("已设定定时通知#1：2月22日08:00 发往 3 个群")


async def test_nothing_below_means_nothing_scheduled(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "定时通知 明天8:00 明天停水")
    assert chat.replies(chain.tenant_group) == [texts.Notice.NO_TARGETS]
    assert await count(bot, NoticeSchedule) == 0


# --- 每天 … 通知: daily ------------------------------------------------------------------------


async def test_a_daily_notice_fires_every_day_to_the_tenant_groups(bot, chat: Chat,
                                                                   chain: DemoChain, clock,
                                                                   transport):
    await chat.say(chain.subdistrict_group, chain.commander, f"每天 18:00 通知 租客群 {DISINFECT}")
    assert chat.replies(chain.subdistrict_group) == [
        f"已设定每日通知#1：每天18:00 发往 2 个群。内容：{DISINFECT}"]
    async with bot.session() as s:
        schedule = await s.get(NoticeSchedule, 1)
    assert schedule.daily and (schedule.hour, schedule.minute) == (18, 0)
    clock.set(at(2, 21, 18, 0))
    assert await fire(bot, 1) == 2
    assert notice_rooms(transport, f"【通知#1】{DISINFECT}") == TENANT_GROUPS
    assert await fire(bot, 1) == 0
    clock.set(at(2, 22, 18, 0))
    assert await fire(bot, 1) == 2
    async with bot.session() as s:
        fired = (await s.execute(select(Notice.id, Notice.fire_at).order_by(Notice.id))).all()
    assert [f for _id, f in fired] == [at(2, 21, 18, 0), at(2, 22, 18, 0)]
    # (On PostgreSQL the skipped duplicate insert may have used up a number of the sequence.)
    assert notice_rooms(transport, f"【通知#{fired[1][0]}】{DISINFECT}") == TENANT_GROUPS
    assert await count(bot, OutboxMessage) == 4
    # Only the tier-5 tenant groups: not the shop row, not the landlords group.
    assert {s.room_id for s in transport.sent if s.text.startswith("【通知#")} == set(TENANT_GROUPS)


async def test_a_daily_job_run_early_does_nothing(bot, chat: Chat, chain: DemoChain, clock,
                                                  transport):
    # Made at 10:00 for 18:00: yesterday's 18:00 was before the schedule existed, so an early
    # run of the job neither sends it nor records it as missed.
    await chat.say(chain.subdistrict_group, chain.commander, f"每天 18:00 通知 租客群 {DISINFECT}")
    mark = len(transport.sent)
    assert await fire(bot, 1) == 0
    assert await count(bot, Notice) == 0
    assert transport.sent[mark:] == []


async def test_daily_to_the_landlords_group(bot, chat: Chat, chain: DemoChain, clock, transport):
    await chat.say(chain.subdistrict_group, chain.commander, "每天 8:30 通知 房东群 请上报消毒情况")
    assert chat.replies(chain.subdistrict_group) == [
        "已设定每日通知#1：每天08:30 发往 1 个群。内容：请上报消毒情况"]
    clock.set(at(2, 22, 8, 30))
    assert await fire(bot, 1) == 1
    assert notice_rooms(transport, "【通知#1】") == ["team1-landlords@chatroom"]


# --- 定时列表, 取消定时 ---------------------------------------------------------------------------


async def test_list_shows_the_senders_active_schedules(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.subdistrict_group, chain.commander, "定时列表")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.LIST_EMPTY]
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 明天8:00 开会")
    await chat.say(chain.subdistrict_group, chain.commander, f"每天 18:00 通知 租客群 {DISINFECT}")
    await chat.say(chain.community_group, chain.community_commander, "定时通知 3月1日 20:00 社区会议")
    await chat.say(chain.subdistrict_group, chain.commander, "定时列表")
    assert chat.replies(chain.subdistrict_group) == ["\n".join([
        texts.Schedule.LIST_HEAD, "#1 2月22日08:00：开会", f"#2 每天18:00：{DISINFECT}"])]
    await chat.say(chain.community_group, chain.community_commander, "定时列表")
    assert chat.replies(chain.community_group) == [
        f"{texts.Schedule.LIST_HEAD}\n#3 3月1日20:00：社区会议"]
    # A one-off that has fired is no longer listed; a daily one stays.
    clock.set(at(2, 22, 8, 0))
    await fire(bot, 1)
    await chat.say(chain.subdistrict_group, chain.commander, "定时列表")
    assert chat.replies(chain.subdistrict_group) == ["\n".join([
        texts.Schedule.LIST_HEAD, f"#2 每天18:00：{DISINFECT}"])]


async def test_cancel_only_ones_own(bot, chat: Chat, chain: DemoChain, clock, transport):
    await chat.say(chain.subdistrict_group, chain.commander, f"每天 18:00 通知 租客群 {DISINFECT}")
    await chat.say(chain.community_group, chain.community_commander, "取消定时 1")
    assert chat.replies(chain.community_group) == [texts.Schedule.NOT_YOURS.format(id=1)]
    await chat.say(chain.subdistrict_group, chain.commander, "取消定时 9")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.UNKNOWN.format(id=9)]
    await chat.say(chain.subdistrict_group, chain.commander, "取消定时 1")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.CANCELLED.format(id=1)]
    await chat.say(chain.subdistrict_group, chain.commander, "取消定时 1")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.UNKNOWN.format(id=1)]
    await chat.say(chain.subdistrict_group, chain.commander, "定时列表")
    assert chat.replies(chain.subdistrict_group) == [texts.Schedule.LIST_EMPTY]
    clock.set(at(2, 21, 18, 0))
    mark = len(transport.sent)
    assert await fire(bot, 1) == 0
    assert await count(bot, Notice) == 0
    assert transport.sent[mark:] == []


async def test_a_cancelled_one_off_does_not_fire(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.subdistrict_group, chain.commander, "定时通知 明天8:00 开会")
    await chat.say(chain.subdistrict_group, chain.commander, "取消定时 1")
    clock.set(at(2, 22, 8, 0))
    assert await fire(bot, 1) == 0
    assert await fire(bot, 42) == 0  # no such schedule
    assert await count(bot, Notice) == 0


# --- with the scheduler: jobs, restarts, catch-up ------------------------------------------------


class Restarts:
    """The bot started and stopped again and again on one database, chat and clock."""

    def __init__(self, settings: Settings, transport: MemoryTransport, clock: FakeClock):
        self.settings = settings.model_copy(update={"scheduler": True})
        self.transport = transport
        self.clock = clock
        transport._now = clock.now

    @asynccontextmanager
    async def run(self, **notices: object) -> AsyncIterator[tuple[BotApp, Chat]]:
        settings = self.settings
        if notices:
            settings = settings.model_copy(update={
                "notices": settings.notices.model_copy(update=notices)})
        app = build_app(settings, transport=self.transport, clock=self.clock)
        async with running(app):
            await app.idle()
            yield app, Chat(app, self.transport)
            await app.idle()


def _schedule_jobs(app: BotApp) -> list[str]:
    """The scheduled notices' job ids, after checking the fixed jobs are there once each."""
    ids = app.scheduler.job_ids()
    assert ids.count("notice-checks") == 1 and ids.count("daily-rollup") == 1
    return sorted(i for i in ids if i.startswith("schedule-"))


def _duplicates(ids: list[str]) -> list[str]:
    return sorted({i for i in ids if ids.count(i) > 1})


async def test_jobs_follow_the_schedules(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, chat):
        assert await load_demo_chain(app)
        assert _schedule_jobs(app) == []
        # (A one-off's date job is placed too, but APScheduler keeps real time, before which
        # the fake clock's 2020 lies: daily jobs show the bookkeeping.)
        await chat.say("futian@chatroom", "sim-zhangjianguo", "每天 8:00 通知 开会")
        await chat.say("futian@chatroom", "sim-zhangjianguo", f"每天 18:00 通知 租客群 {DISINFECT}")
        assert _schedule_jobs(app) == ["schedule-1", "schedule-2"]
        await chat.say("futian@chatroom", "sim-zhangjianguo", "取消定时 1")
        assert _schedule_jobs(app) == ["schedule-2"]
    async with bots.run() as (app, _chat):
        assert _schedule_jobs(app) == ["schedule-2"]


async def test_a_missed_fire_time_within_grace_is_caught_up_once(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, chat):
        await load_demo_chain(app)
        await chat.say("futian@chatroom", "sim-zhangjianguo", f"每天 18:00 通知 租客群 {DISINFECT}")
    # Down over 18:00; back at 18:40 (within the 60-minute grace window).
    clock.set(at(2, 21, 18, 40))
    async with bots.run() as (app, _chat):
        assert await count(app, Notice) == 1
        assert notice_rooms(transport, f"【通知#1】{DISINFECT}") == TENANT_GROUPS
        async with app.session() as s:
            notice = (await s.execute(select(Notice))).scalar_one()
        assert notice.fire_at == at(2, 21, 18, 0) and not notice.missed
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        async with bots.run() as (app, _chat):
            pass
    async with bots.run() as (app, _chat):
        assert await count(app, Notice) == 1
        # (The shop rows' 14:00 escalation, caught up at the restart, is no notice row.)
        assert await count(app, OutboxMessage, OutboxMessage.notice_id.is_not(None)) == 2
        # The job itself, run late within the window, does not make a second one either.
        assert await fire_schedule(app, 1) == 0
    assert len(notice_rooms(transport, "【通知#")) == 2


async def test_downtime_past_the_grace_window_is_recorded_and_told(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, chat):
        await load_demo_chain(app)
        await chat.say("futian@chatroom", "sim-zhangjianguo", f"每天 18:00 通知 租客群 {DISINFECT}")
        clock.set(at(2, 21, 18, 0))
        assert await fire(app, 1) == 2
    # Down from the 21st 18:00 until the 23rd 18:30: the 22nd is lost, the 23rd is caught up.
    clock.set(at(2, 23, 18, 30))
    mark = len(transport.sent)
    async with bots.run() as (app, _chat):
        async with app.session() as s:
            rows = (await s.execute(select(Notice.fire_at, Notice.missed, Notice.target_count)
                                    .order_by(Notice.fire_at))).all()
            missed_id = (await s.execute(select(Notice.id).where(Notice.missed.is_(True)))
                         ).scalar_one()
        assert rows == [(at(2, 21, 18, 0), False, 2), (at(2, 22, 18, 0), True, 0),
                        (at(2, 23, 18, 0), False, 2)]
        assert await count(app, OutboxMessage, OutboxMessage.notice_id == missed_id) == 0
    after = transport.sent[mark:]
    # (The daily roll-ups of the 21st and 22nd, missed too, are caught up beside it.)
    told = [s for s in after if s.room_id == "futian@chatroom"
            and not s.text.startswith("【每日汇总")]
    assert [s.text for s in told] == [texts.Schedule.MISSED.format(
        id=1, when="2月22日18:00", text=DISINFECT)]
    assert told[0].mentions == ("sim-zhangjianguo",)
    assert sorted(s.room_id for s in after if s.text.startswith("【通知#")) == TENANT_GROUPS
    # Restarting five times: no duplicate job, no duplicate notice, the creator told once.
    for _ in range(5):
        clock.advance(timedelta(minutes=2))
        async with bots.run() as (app, _chat):
            ids = app.scheduler.job_ids()
            assert _duplicates(ids) == [] and ids.count("schedule-1") == 1
    async with bots.run() as (app, _chat):
        assert await count(app, Notice) == 3
        assert await count(app, OutboxMessage, OutboxMessage.notice_id.is_not(None)) == 4
    assert [s.text for s in transport.sent].count(told[0].text) == 1


async def test_every_fire_time_past_grace_is_missed(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, chat):
        await load_demo_chain(app)
        await chat.say("futian@chatroom", "sim-zhangjianguo", "定时通知 明天8:00 开会")
    clock.set(at(2, 22, 9, 30))  # 90 minutes late
    async with bots.run() as (app, chat):
        async with app.session() as s:
            notice = (await s.execute(select(Notice))).scalar_one()
        assert notice.missed and notice.fire_at == at(2, 22, 8, 0)
        assert await count(app, OutboxMessage, OutboxMessage.notice_id.is_not(None)) == 0
        assert "schedule-1" not in app.scheduler.job_ids()
        await chat.say("futian@chatroom", "sim-zhangjianguo", "定时列表")
        assert chat.replies("futian@chatroom") == [texts.Schedule.LIST_EMPTY]
    assert [(s.room_id, s.mentions) for s in transport.sent if s.text == texts.Schedule.MISSED
            .format(id=1, when="2月22日08:00", text="开会")] == [
        ("futian@chatroom", ("sim-zhangjianguo",))]
    assert notice_rooms(transport, "【通知#") == []


async def test_a_one_off_within_grace_is_sent_late_once(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, chat):
        await load_demo_chain(app)
        await chat.say("futian@chatroom", "sim-zhangjianguo", "定时通知 明天8:00 开会")
    clock.set(at(2, 22, 8, 59))
    for _ in range(5):
        async with bots.run() as (app, _chat):
            assert "schedule-1" not in app.scheduler.job_ids()
        clock.advance(timedelta(minutes=1))
    assert notice_rooms(transport, "【通知#1】开会") == sorted(BELOW_FUTIAN)
    async with bots.run() as (app, _chat):
        # (The 21st's daily roll-up, missed while down at 20:00, is not part of the notice.)
        assert await count(app, Notice) == 1
        assert await count(app, OutboxMessage, OutboxMessage.notice_id.is_not(None)) == 6


RECURRING = RecurringNoticeSettings(key="disinfect", time="18:00",
                                    text="请今日完成楼道消毒并回复“房东上报 消毒”",
                                    kinds=["landlord_tenants"])


async def test_recurring_notices_from_the_config(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, _chat):
        await load_demo_chain(app)
    for _ in range(5):
        async with bots.run(recurring=[RECURRING]) as (app, _chat):
            ids = app.scheduler.job_ids()
            assert _duplicates(ids) == [] and "schedule-1" in ids
            assert await count(app, NoticeSchedule) == 1
    async with bots.run(recurring=[RECURRING]) as (app, _chat):
        async with app.session() as s:
            schedule = (await s.execute(select(NoticeSchedule))).scalar_one()
        assert schedule.config_key == "disinfect" and schedule.daily
        assert (schedule.hour, schedule.minute) == (18, 0) and schedule.cancelled_at is None
        clock.set(at(2, 21, 18, 0))
        assert await fire(app, schedule.id) == 2
        assert notice_rooms(transport, "【通知#1】请今日完成楼道消毒") == TENANT_GROUPS
        assert await fire(app, schedule.id) == 0
    # A restart at 18:20 (within grace) after it fired: nothing again.
    clock.set(at(2, 21, 18, 20))
    async with bots.run(recurring=[RECURRING]) as (app, chat):
        assert await count(app, Notice) == 1
        # Not a person's schedule: nobody can cancel it by chat.
        await chat.say("futian@chatroom", "sim-zhangjianguo", "取消定时 1")
        assert chat.replies("futian@chatroom") == [texts.Schedule.UNKNOWN.format(id=1)]
    # Removed from the config: cancelled, its job gone, and it fires no more.
    clock.set(at(2, 22, 10, 0))
    async with bots.run(recurring=[]) as (app, _chat):
        assert "schedule-1" not in app.scheduler.job_ids()
        async with app.session() as s:
            schedule = (await s.execute(select(NoticeSchedule))).scalar_one()
        assert schedule.cancelled_at is not None
        clock.set(at(2, 22, 18, 0))
        assert await fire(app, schedule.id) == 0
    clock.set(at(2, 22, 18, 30))
    async with bots.run(recurring=[]) as (app, _chat):
        assert await count(app, Notice) == 1 and await count(app, NoticeSchedule) == 1


async def test_a_changed_recurring_notice_is_updated_in_place(settings, transport, clock):
    bots = Restarts(settings, transport, clock)
    async with bots.run() as (app, _chat):
        await load_demo_chain(app)
    async with bots.run(recurring=[RECURRING]) as (app, _chat):
        pass
    changed = RECURRING.model_copy(update={"time": "19:30", "text": "请检查消毒记录",
                                           "kinds": ["team_landlords"]})
    async with bots.run(recurring=[changed]) as (app, _chat):
        async with app.session() as s:
            schedule = (await s.execute(select(NoticeSchedule))).scalar_one()
        assert (schedule.hour, schedule.minute, schedule.text) == (19, 30, "请检查消毒记录")
        clock.set(at(2, 21, 19, 30))
        assert await fire(app, schedule.id) == 1
        assert notice_rooms(transport, "【通知#1】请检查消毒记录") == ["team1-landlords@chatroom"]


async def test_the_bot_starts_with_recurring_notices_before_the_chain_exists(
        settings, transport, clock):
    # A fresh install (or `tierbot demo --fresh`) starts before any chain is imported: the
    # recurring notice cannot be placed yet, but the bot must still start.
    bots = Restarts(settings, transport, clock)
    async with bots.run(recurring=[RECURRING]) as (app, _chat):
        assert await load_demo_chain(app)
    async with bots.run(recurring=[RECURRING]) as (app, _chat):
        assert await count(app, NoticeSchedule, NoticeSchedule.config_key == "disinfect") == 1
