"""The sender through official channels: the row's binding picks the channel, the channel
renders and sends, and each classified result does what the sender promises (delivered, retry
after, rate-limited pause, permanent with an alert, unknown reconciled by echo or counted
once). A retry goes the way the first attempt went even if the group moved since."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot import ack_texts
from bot.app import BotApp
from bot.channels.base import Capabilities, Limits, Outcome, SendResult
from bot.channels.sim import SimOfficialChannel
from bot.clock import FakeClock
from bot.services import notice as notices
from bot.transports.memory import MemoryTransport
from models import BotAccount, Echo, Group, OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain

NOTICE = "通知 请各社区今晚8点前上报返回人员"
TAG1 = "【通知#1】"
# What a notice to a send-only channel's group ends with (no ack link base configured).
SUFFIX_1 = ack_texts.SUFFIX_WECHAT.format(id=1)
STAFF_BELOW = {"changchun@chatroom", "team1@chatroom"}
WECHAT_BELOW = {"team1-landlords@chatroom", "dong@chatroom", "ying@chatroom",
                "shoprow1@chatroom"}


def notice_rooms(sent: list[tuple[str, str]], tag: str = TAG1) -> list[str]:
    """Where the notice itself went (not the notes to its sender in the origin group)."""
    return sorted(room for room, text in sent
                  if text.startswith(tag) and room != "futian@chatroom")


def robot_sent(robot: SimOfficialChannel) -> list[tuple[str, str]]:
    return [(s.room_id, s.text) for s in robot.sent]


def wechat_sent(transport: MemoryTransport) -> list[tuple[str, str]]:
    return [(s.room_id, s.text) for s in transport.sent]


async def rows(bot: BotApp, account: str) -> list[OutboxMessage]:
    async with bot.session() as s:
        return list((await s.execute(select(OutboxMessage).where(
            OutboxMessage.account == account, OutboxMessage.notice_id.is_not(None))
            .order_by(OutboxMessage.id))).scalars())


async def test_staff_tiers_go_through_the_robot_the_rest_through_wechat(
        bot: BotApp, chat: Chat, chain: DemoChain, transport, robot, staff_on_robot):
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    assert notice_rooms(robot_sent(robot)) == sorted(STAFF_BELOW)
    assert notice_rooms(wechat_sent(transport)) == sorted(WECHAT_BELOW)
    assert chat.replies(chain.subdistrict_group)[0].startswith(f"{TAG1}已发出：6 个群")
    assert all(r.status == OutboxStatus.SENT for r in await rows(bot, "robot"))


async def test_retry_after_waits_then_sends_once(bot: BotApp, chat: Chat, chain: DemoChain,
                                                 clock: FakeClock, robot, staff_on_robot):
    robot.then(SendResult(Outcome.RETRY_AFTER, retry_after=120, code="5xx", detail="busy"))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    [waiting] = [r for r in await rows(bot, "robot") if r.status == OutboxStatus.PENDING]
    assert waiting.attempts == 1 and waiting.error == "5xx busy"
    assert waiting.next_attempt_at == clock.now() + timedelta(seconds=120)
    assert len(notice_rooms(robot_sent(robot))) == 1
    clock.advance(timedelta(seconds=119))
    await bot.idle()
    assert len(notice_rooms(robot_sent(robot))) == 1
    clock.advance(timedelta(seconds=1))
    await bot.idle()
    assert notice_rooms(robot_sent(robot)) == sorted(STAFF_BELOW)
    assert all(r.status == OutboxStatus.SENT for r in await rows(bot, "robot"))


async def test_rate_limited_pauses_the_credential_for_its_penalty(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, transport,
        staff_on_robot):
    robot.then(SendResult(Outcome.RETRY_AFTER, retry_after=60, code="130101",
                          detail="send too fast", rate_limited=True))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    async with bot.session() as s:
        paused = await s.get(BotAccount, "robot")
    assert paused is not None and paused.last_error is not None
    # The platform said 60 s; the credential's penalty (600 s) is longer and wins.
    assert paused.paused_until == clock.now() + timedelta(seconds=600)
    # Not an attempt: the rows wait, unattempted; WeChat groups were not held up.
    assert notice_rooms(wechat_sent(transport)) == sorted(WECHAT_BELOW)
    assert notice_rooms(robot_sent(robot)) == []
    assert {r.attempts for r in await rows(bot, "robot")} == {0}
    clock.advance(timedelta(seconds=599))
    await bot.idle()
    assert notice_rooms(robot_sent(robot)) == []
    clock.advance(timedelta(seconds=1))
    await bot.idle()
    assert notice_rooms(robot_sent(robot)) == sorted(STAFF_BELOW)


async def test_permanent_fails_and_alerts_tier_one_through_another_channel(
        bot: BotApp, chat: Chat, chain: DemoChain, robot, transport, staff_on_robot):
    robot.then(SendResult(Outcome.PERMANENT, code="93000", detail="invalid webhook url"))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    failed = [r for r in await rows(bot, "robot") if r.status == OutboxStatus.FAILED]
    assert len(failed) == 1 and failed[0].attempts == 1
    assert failed[0].error == "93000 invalid webhook url"
    # Through the tier-1 group's binding (WeChat, not the failing robot), mentioning the
    # subdistrict's commander.
    alerts = [s for s in transport.sent if "渠道告警" in s.text]
    assert [(a.room_id, a.mentions) for a in alerts] == [
        (chain.subdistrict_group, (chain.commander,))]
    assert "robot" in alerts[0].text and "93000" in alerts[0].text
    assert "example.invalid" not in alerts[0].text
    # The notice's sender is told too, in the origin group.
    told = [s for s in transport.sent if s.room_id == chain.subdistrict_group
            and s.mentions == (chain.commander,) and "渠道告警" not in s.text]
    assert len(told) == 1 and "长春" in told[0].text or "小组" in told[0].text


async def test_unknown_without_echoes_is_counted_sent_once(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, staff_on_robot):
    robot.then(SendResult(Outcome.UNKNOWN, detail="read timeout"))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    assert all(r.status == OutboxStatus.SENT and r.attempts == 1
               for r in await rows(bot, "robot"))
    clock.advance(timedelta(hours=1))
    await bot.idle()
    # The platform posted it (the timeout came after): each group saw it exactly once.
    assert notice_rooms(robot_sent(robot)) == sorted(STAFF_BELOW)


async def test_an_adapter_that_raises_counts_as_unknown(
        bot: BotApp, chat: Chat, chain: DemoChain, robot, staff_on_robot):
    robot.then(RuntimeError("connection reset after the request left"))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    statuses = [r.status for r in await rows(bot, "robot")]
    assert statuses == [OutboxStatus.SENT] * len(STAFF_BELOW)


async def test_unknown_where_the_channel_receives_is_reconciled_by_echo(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, staff_on_robot):
    robot.capabilities = Capabilities(receive=True, ack_in_chat=True, mention_user=True,
                                      mention_all=True, markdown=False, cards=False)
    seen: list[str] = []

    def timeout(room: str, payload) -> SendResult:
        seen.append(room)
        return SendResult(Outcome.UNKNOWN, detail="timeout")

    robot.then(timeout, timeout)
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    pending = [r for r in await rows(bot, "robot") if r.status == OutboxStatus.PENDING]
    assert {r.attempts for r in pending} == {1} and len(pending) == 2
    # The first one's echo came back (the platform posted it); the second's did not.
    echoed, lost = sorted(pending, key=lambda r: r.id)
    async with bot.session() as s, s.begin():
        group = await s.get(Group, echoed.group_id)
        assert group is not None
        s.add(Echo(transport=group.transport, room_id=group.room_id,
                   digest=notices.digest(f"{TAG1}{NOTICE[3:]}"), message_id="e1",
                   at=clock.now()))
    clock.advance(timedelta(seconds=30))
    await bot.idle()
    after = {r.id: r for r in await rows(bot, "robot")}
    assert after[echoed.id].status == OutboxStatus.SENT and after[echoed.id].attempts == 1
    assert after[lost.id].status == OutboxStatus.SENT and after[lost.id].attempts == 2
    # Posted twice in all for the lost one (the unknown attempt and the retry), once for
    # the echoed one.
    posted = notice_rooms(robot_sent(robot))
    assert len(posted) == 3


async def test_a_retry_goes_through_the_recorded_binding_after_the_group_moved(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, robot2,
        staff_on_robot):
    robot.then(SendResult(Outcome.RETRY_AFTER, retry_after=30, code="-1", detail="busy"))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    [waiting] = [r for r in await rows(bot, "robot") if r.status == OutboxStatus.PENDING]
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).where(Group.id == waiting.group_id)
                        .values(account="robot2", moved_from="robot"))
    clock.advance(timedelta(seconds=30))
    await bot.idle()
    async with bot.session() as s:
        row = await s.get(OutboxMessage, waiting.id)
        room = (await s.get(Group, waiting.group_id)).room_id  # type: ignore[union-attr]
    assert row is not None and row.status == OutboxStatus.SENT and row.account == "robot"
    assert room in notice_rooms(robot_sent(robot))
    assert notice_rooms(robot_sent(robot2)) == []
    # New rows for that group now go through robot2.
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 明早开会")
    assert notice_rooms(robot_sent(robot2), "【通知#2】") == ["changchun@chatroom"] or (
        notice_rooms(robot_sent(robot2), "【通知#2】") == ["team1@chatroom"])


async def test_a_crash_mid_send_on_a_channel_without_echoes_is_not_resent(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, staff_on_robot):
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    [first, *_] = await rows(bot, "robot")
    # As a crash leaves it: marked sending with the attempt started, no outcome recorded.
    async with bot.session() as s, s.begin():
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == first.id).values(
            status=OutboxStatus.SENDING, attempt_at=clock.now(), sent_at=None))
    before = len(robot.sent)
    confirmed, resent = await bot.sender.reconcile()
    assert (confirmed, resent) == (1, 0)
    await bot.idle()
    assert len(robot.sent) == before
    async with bot.session() as s:
        row = await s.get(OutboxMessage, first.id)
    assert row is not None and row.status == OutboxStatus.SENT


async def test_oversize_text_is_split_by_bytes_with_the_tag_on_each_part(
        bot: BotApp, chat: Chat, chain: DemoChain, robot, staff_on_robot):
    long = "请各社区于今晚八点前完成楼道消毒并上报。" * 120  # 2,400 chars, 7,200 bytes
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 " + long)
    parts = [text for room, text in robot_sent(robot) if room == chain.community_group]
    assert len(parts) == 4
    assert all(p.startswith(f"{TAG1}(") and len(p.encode()) <= 2048 for p in parts)


async def test_the_credentials_minute_limit_holds_a_broadcast_back(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, transport):
    from tests.channels.conftest import bind_staff

    robot.limits = Limits(per_minute=2, max_body_bytes=2048, penalty_seconds=600.0)
    bot.sender.pacers.pop("robot", None)
    await bind_staff(bot, tiers=(2, 3, 4, 5))
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    assert len(notice_rooms(robot_sent(robot))) == 2
    clock.advance(timedelta(seconds=59))
    await bot.idle()
    assert len(notice_rooms(robot_sent(robot))) == 2
    clock.advance(timedelta(seconds=1))
    await bot.idle()
    assert len(notice_rooms(robot_sent(robot))) == 4
    clock.advance(timedelta(seconds=60))
    await bot.idle()
    assert notice_rooms(robot_sent(robot)) == sorted(STAFF_BELOW | WECHAT_BELOW)
    # Nothing of the robot's groups went through WeChat meanwhile.
    assert notice_rooms(wechat_sent(transport)) == []


async def test_one_group_per_second_holds_that_group_only(
        bot: BotApp, chat: Chat, chain: DemoChain, clock: FakeClock, robot, staff_on_robot):
    robot.limits = Limits(per_minute=1000, per_second=50, per_group_per_second=1,
                          max_body_bytes=2048)
    bot.sender.pacers.pop("robot", None)
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 第一条")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 第二条")
    assert robot.texts(chain.community_group) == ["【通知#1】第一条" + SUFFIX_1]
    async with bot.session() as s:
        row = (await s.execute(select(OutboxMessage).where(OutboxMessage.notice_id == 2))
               ).scalar_one()
    # Put back unattempted until the group's second is over.
    assert row.status == OutboxStatus.PENDING and row.attempts == 0
    assert row.next_attempt_at == clock.now() + timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    await bot.idle()
    assert robot.texts(chain.community_group) == [
        "【通知#1】第一条" + SUFFIX_1, "【通知#2】第二条" + ack_texts.SUFFIX_WECHAT.format(id=2)]


async def test_a_fault_before_the_send_is_retried_not_counted_sent(
        bot: BotApp, chain: DemoChain, clock: FakeClock, robot, staff_on_robot):
    from bot import faults
    from bot.services import notice as notices_service
    from models import Node

    faults.arm("sender.send", times=1)
    try:
        # Written directly (no command, so no reply): the robot's first send takes the fault.
        async with bot.session() as s, s.begin():
            root = (await s.execute(select(Node).where(Node.tier == 1))).scalar_one()
            await notices_service.create(
                s, origin=root, origin_group_id=None, sender_id=None, text=NOTICE[3:],
                urgent=False, scope=notices_service.Scope(down_to_tier=3), now=clock.now())
        bot.sender.wake()
        await bot.idle()
    finally:
        faults.disarm()
    # Nothing left for one row: it waits for its retry (the robot shows no echoes, and yet
    # it is not counted sent: nothing was posted).
    assert len(notice_rooms(robot_sent(robot))) == 1
    [waiting] = [r for r in await rows(bot, "robot") if r.status == OutboxStatus.PENDING]
    assert waiting.attempts == 1 and "InjectedFault" in (waiting.error or "")
    clock.advance(timedelta(seconds=30))
    await bot.idle()
    assert notice_rooms(robot_sent(robot)) == sorted(STAFF_BELOW)


async def test_a_text_the_channel_cannot_render_fails_for_good(
        bot: BotApp, chat: Chat, chain: DemoChain, robot, transport, staff_on_robot):
    robot.limits = Limits(per_minute=1000, max_body_bytes=16)
    bot.sender.pacers.pop("robot", None)
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    assert robot.sent == []
    statuses = {r.status for r in await rows(bot, "robot")}
    assert statuses == {OutboxStatus.FAILED}
    assert [s.room_id for s in transport.sent if "渠道告警" in s.text] == [
        chain.subdistrict_group]
