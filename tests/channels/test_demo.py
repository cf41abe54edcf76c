"""The demo chain with tiers 1-3 on a simulated official channel beside WeChat for tiers 4-5:
a notice from the subdistrict reaches every tier, each through its own channel, and 进度
counts the acknowledgements typed in both kinds of group."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.app import BotApp, build_app, running
from bot.channels.sim import SimOfficialChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import DEMO_CHANNEL, bind_staff_to_channel, demo_channel, load_demo_chain
from bot.transports.memory import MemoryTransport
from models import Group, OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain, count

STAFF = {"futian@chatroom", "changchun@chatroom", "team1@chatroom"}


@pytest.fixture
def official() -> SimOfficialChannel:
    return demo_channel()


@pytest.fixture
async def bot(settings: Settings, transport: MemoryTransport, clock: FakeClock,
              official: SimOfficialChannel) -> AsyncIterator[BotApp]:
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock,
                    channels={DEMO_CHANNEL: official})
    async with running(app):
        yield app


@pytest.fixture
async def chain(bot: BotApp) -> DemoChain:
    assert await load_demo_chain(bot)
    assert await bind_staff_to_channel(bot) == len(STAFF)
    return DemoChain()


async def test_a_notice_reaches_every_tier_and_acks_count_from_both_kinds(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport,
        official: SimOfficialChannel):
    async with bot.session() as s:
        bindings = dict((await s.execute(select(Group.room_id, Group.account))).tuples().all())
    assert {room for room, account in bindings.items() if account == DEMO_CHANNEL} == STAFF

    await chat.say(chain.subdistrict_group, chain.commander, "通知 请各单位今晚8点前上报返回人员")
    # The confirmation to the subdistrict comes through the official channel, not WeChat.
    [confirmation] = official.texts(chain.subdistrict_group)
    assert confirmation.startswith("【通知#1】已发出：6 个群")
    assert chat.replies(chain.subdistrict_group) == []
    notice = "【通知#1】请各单位今晚8点前上报返回人员"
    assert official.texts(chain.community_group) == [notice]
    assert official.texts(chain.team_group) == [notice]
    wechat = {s.room_id for s in transport.sent if s.text == notice}
    assert wechat == {chain.landlords_group, chain.tenant_group, chain.ying_group,
                      chain.shop_group}
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.SENT,
                       OutboxMessage.notice_id == 1) == 6

    # Typed in a staff group (the channel receives) and in WeChat groups alike.
    await chat.say(chain.community_group, chain.community_commander, "收到")
    await chat.say(chain.team_group, chain.team_commander, "收到")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    await chat.say(chain.landlords_group, chain.team_member, "收到")
    await chat.say(chain.subdistrict_group, chain.commander, "进度 1")
    progress = official.texts(chain.subdistrict_group)[-1]
    assert progress.splitlines()[:4] == [
        "【通知#1】进度：送达 6/6，确认 4/6，其他成员已读 0 人次",
        "2级：送达 1/1，确认 1/1",
        "3级：送达 1/1，确认 1/1",
        "4级：送达 1/1，确认 1/1",
    ]
    assert progress.splitlines()[4].startswith("5级：送达 3/3，确认 1/3")
