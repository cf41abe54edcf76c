"""The daily roll-up: one short text per tier-1..3 group with its subtree's figures, once a day."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select

from bot import texts
from models import Group, JobRun, Node, OutboxMessage
from schedules.jobs import post_daily_rollup
from tests.conftest import SHANGHAI, Chat, DemoChain, count, until

ROLLUP_ROOMS = ["changchun@chatroom", "futian@chatroom", "team1@chatroom", "xicheng@chatroom"]


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2020, month, day, hour, minute, tzinfo=SHANGHAI)


def body(node: str, *, date: str = "2月22日", returned: int = 0, watching: int = 0,
         fevers: int = 0, disinfect: int = 0, errand: int = 0, violation: int = 0,
         mediation: int = 0, opened: int = 0, answered: int = 0, notices: str = "") -> str:
    return texts.Rollup.BODY.format(
        date=date, node=node, returned=returned, watching=watching, fevers=fevers,
        disinfect=disinfect, errand=errand, violation=violation, mediation=mediation,
        opened=opened, answered=answered, notices=notices or texts.Rollup.NO_NOTICES
    ) + "\n" + _more(node)


def _more(node: str) -> str:
    """The numbers of 统计 the roll-up adds: the demo chain's people and shop row (none of
    them in 西城社区, which is empty); it has no enterprise or key project."""
    people, shops = ((1, 2, 1), 10) if node != "西城社区" else ((0, 0, 0), 0)
    return (f"人员：作战小组 {people[0]}，小组成员 {people[1]}，房东 {people[2]}\n"
            f"商铺：商铺总数 {shops}，已复工 0，待审核 0，今日打卡 0，今日营业 0\n"
            "企业和重点工程：企业数 0，企业已复工 0，企业日报今日已报 0，员工已建卡 0，员工已返岗 0，"
            "员工隔离/居家观察 0，员工发热 0，重点工程数 0，工作卡今日已报 0，工程今日在场 0，"
            "工程今日异常 0")


def rate(notice_id: int, acked: int, total: int) -> str:
    return texts.Rollup.NOTICE.format(tag=texts.Notice.TAG.format(id=notice_id), acked=acked,
                                      total=total)


async def _sibling_community(bot) -> None:
    """A second community under 福田街道, with nothing going on in it."""
    async with bot.session() as s, s.begin():
        futian = (await s.execute(select(Node).where(Node.name == "福田街道"))).scalar_one()
        node = Node(tier=2, kind="community", name="西城社区", parent_id=futian.id,
                    created_at=bot.now())
        s.add(node)
        await s.flush()
        s.add(Group(node_id=node.id, transport="sim", room_id="xicheng@chatroom",
                    title="西城社区指挥群", account="", created_at=bot.now()))


async def _rollups(bot, transport, mark: int) -> dict[str, str]:
    await bot.idle()
    out: dict[str, str] = {}
    for sent in transport.sent[mark:]:
        if sent.text.startswith("【每日汇总"):
            assert sent.room_id not in out, f"two roll-ups to {sent.room_id}"
            out[sent.room_id] = sent.text
    return out


async def test_the_daily_rollup(bot, chat: Chat, chain: DemoChain, clock, transport):
    await _sibling_community(bot)
    # Yesterday (21 Feb): a return, a ticket, a mediation late in the evening.
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    await chat.say(chain.tenant_group, chain.tenant, "反馈 楼道灯坏了")
    clock.set(at(2, 21, 23, 30))
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 调解 2楼邻里纠纷")
    # Today (22 Feb), from 07:00 local (still the 21st in UTC).
    clock.set(at(2, 22, 7, 0))
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    clock.set(at(2, 22, 9, 0))
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 37.6")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 代办 帮302租客买菜")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 违规 301租客未居家隔离外出")
    await chat.say(chain.ying_group, chain.ying_tenant, "反馈 垃圾没人清")
    await chat.say(chain.landlords_group, chain.team_member, "答复 1 已安排电工")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请各房东今日完成楼道消毒")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    await chat.say(chain.community_group, chain.community_commander, "收到")
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    clock.set(at(2, 22, 20, 0))
    mark = len(transport.sent)
    assert await post_daily_rollup(bot) == 4
    rollups = await _rollups(bot, transport, mark)
    assert sorted(rollups) == ROLLUP_ROOMS
    figures = {"returned": 1, "watching": 2, "fevers": 1, "disinfect": 1, "errand": 1,
               "violation": 1, "mediation": 0, "opened": 1, "answered": 1}
    assert rollups["futian@chatroom"] == body(
        "福田街道", notices=f"{rate(1, 2, 7)}；{rate(2, 1, 2)}", **figures)
    assert rollups["changchun@chatroom"] == body("长春社区", notices=rate(2, 1, 2), **figures)
    assert rollups["team1@chatroom"] == body("长春第一作战小组", **figures)
    assert rollups["xicheng@chatroom"] == body("西城社区")
    # Nothing below tier 3 gets one.
    assert not any(s.text.startswith("【每日汇总") and s.room_id not in ROLLUP_ROOMS
                   for s in transport.sent)


async def test_once_a_day(bot, chat: Chat, chain: DemoChain, clock, transport):
    clock.set(at(2, 21, 20, 0))
    assert await post_daily_rollup(bot) == 3
    rows = await count(bot, OutboxMessage, OutboxMessage.source == "rollup")
    assert rows == 3
    # A second run the same day (a restart, a misfire, the demo's /time): nothing.
    assert await post_daily_rollup(bot) == 0
    clock.set(at(2, 21, 23, 59))
    assert await post_daily_rollup(bot) == 0
    assert await count(bot, OutboxMessage, OutboxMessage.source == "rollup") == 3
    await bot.idle()
    assert len([s for s in transport.sent if s.text.startswith("【每日汇总")]) == 3
    # The next day works again, with the next day's date.
    clock.set(at(2, 22, 20, 0))
    mark = len(transport.sent)
    assert await post_daily_rollup(bot) == 3
    rollups = await _rollups(bot, transport, mark)
    assert rollups["futian@chatroom"] == body("福田街道", date="2月22日")
    assert await count(bot, JobRun) == 2


async def test_the_day_is_the_local_day(bot, chat: Chat, chain: DemoChain, clock, transport):
    # 00:30 in Shanghai is 16:30 UTC the day before: the roll-up that evening still counts it,
    # and the one of the day before (run at 23:59 local) does not.
    clock.set(at(2, 21, 23, 59))
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    assert await post_daily_rollup(bot) == 3
    clock.set(at(2, 22, 0, 30))
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    clock.set(at(2, 22, 20, 0))
    mark = len(transport.sent)
    assert await post_daily_rollup(bot) == 3
    rollups = await _rollups(bot, transport, mark)
    assert rollups["team1@chatroom"] == body("长春第一作战小组", disinfect=1)


async def test_old_stays_are_watched_not_returned(bot, chat: Chat, chain: DemoChain, clock,
                                                  transport):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 38.0")
    # Ten days later the tenant is still under home watch (14 days), and still flagged.
    clock.set(at(3, 2, 20, 0))
    mark = len(transport.sent)
    await post_daily_rollup(bot)
    rollups = await _rollups(bot, transport, mark)
    assert rollups["futian@chatroom"] == body("福田街道", date="3月2日", watching=1, fevers=1)
    # Past the watch: nobody. (The days in between are caught up, a week back at most, each
    # with its own date; the last one is today's.)
    clock.set(at(3, 20, 20, 0))
    mark = len(transport.sent)
    await post_daily_rollup(bot)
    await bot.idle()
    futian = [s.text for s in transport.sent[mark:]
              if s.text.startswith("【每日汇总") and s.room_id == "futian@chatroom"]
    assert [t[len("【每日汇总 "):].split("】")[0] for t in futian] == [
        f"3月{d}日" for d in range(14, 21)]
    assert futian[-1] == body("福田街道", date="3月20日")


async def test_missed_scheduled_notices_are_not_counted(bot, chat: Chat, chain: DemoChain,
                                                        clock, transport):
    from bot.services import schedule as schedules

    await chat.say(chain.subdistrict_group, chain.commander, "每天 18:00 通知 租客群 消毒")
    async with bot.session() as s, s.begin():
        from models import NoticeSchedule

        schedule = await s.get(NoticeSchedule, 1)
        assert await schedules.record_missed(s, schedule=schedule, fire_at=at(2, 21, 18, 0),
                                             now=bot.now(), zone=bot.settings.zone)
    clock.set(at(2, 21, 20, 0))
    mark = len(transport.sent)
    await post_daily_rollup(bot)
    rollups = await _rollups(bot, transport, mark)
    assert rollups["futian@chatroom"] == body("福田街道", date="2月21日")


async def test_the_rollup_reads_apart_from_the_bot(bot, chat: Chat, chain: DemoChain, clock,
                                                   transport, monkeypatch):
    """A city's roll-up reads for seconds: it reads before its transaction, in a read session
    of its own, so the bot's messages are handled meanwhile; then it queues once."""
    from bot.services import rollup

    release = asyncio.Event()
    sessions: list = []
    original = rollup.daily_texts

    async def held(session, **kwargs):  # type: ignore[no-untyped-def]
        sessions.append(session)
        await release.wait()
        return await original(session, **kwargs)

    monkeypatch.setattr(rollup, "daily_texts", held)
    clock.set(at(2, 21, 20, 0))
    job = asyncio.create_task(post_daily_rollup(bot))
    await until(lambda: bool(sessions), "the roll-up to start reading")
    mark = len(transport.sent)
    await transport.inject(transport.message(chain.tenant_group, chain.landlord, "房东上报 消毒"))
    await until(lambda: any("消毒" in s.text for s in transport.sent[mark:]),
                "the report's answer while the roll-up reads")
    assert not job.done()
    if bot.reader is not None:
        assert sessions[0].bind is bot.reader
    release.set()
    assert await job == 3
    assert await count(bot, OutboxMessage, OutboxMessage.source == "rollup") == 3
    assert await post_daily_rollup(bot) == 0
