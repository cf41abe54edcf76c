"""Wrong invite codes (issue 8, item 9): at most 5 per contact per hour are answered, then
silence until the hour ends, counted in the database (a restart keeps the count, a message
delivered twice counts once), logged with numbers masked."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.app import build_app, running
from bot.pii import find_numbers
from bot.services import chain as chain_service
from bot.services import invite as invites
from models import InviteAttempt, InviteKind, Membership, Role
from tests.conftest import Chat, DemoChain, count

WRONG = "邀请码无效，请核对后重发。"


async def _invite(bot) -> str:
    async with bot.session() as s, s.begin():
        node = await chain_service.find_node(s, ref="应天喜出租房")
        return (await chain_service.issue_invite(
            s, node=node, kind=InviteKind.PERSON, role=Role.LANDLORD, now=bot.now(),
            ttl=timedelta(days=7))).code


async def test_five_wrong_codes_then_silence_until_the_hour_ends(
        bot, chat: Chat, chain: DemoChain, clock, caplog: pytest.LogCaptureFixture):
    code = await _invite(bot)
    guesser = "sim-guesser"
    landlords = await count(bot, Membership, Membership.role == Role.LANDLORD)
    for i in range(5):
        await chat.say(chain.ying_group, guesser, f"绑定 1390579123{i}")
        assert chat.replies(chain.ying_group) == [WRONG]
        clock.advance(timedelta(minutes=1))
    with caplog.at_level(logging.INFO):
        for guess in ("AAAAAA", "BBBBBB", code):  # the right code does not help now
            await chat.say(chain.ying_group, guesser, f"绑定 {guess}")
            assert chat.replies(chain.ying_group) == []
        await chat.say(chain.ying_group, guesser, "绑定群 CCCCCC")
        assert chat.replies(chain.ying_group) == []
    assert "ignored (too many wrong codes)" in caplog.text
    assert find_numbers(caplog.text) == []
    assert await count(bot, Membership, Membership.role == Role.LANDLORD) == landlords
    assert await count(bot, InviteAttempt) == 5
    # Other contacts are not affected.
    await chat.say(chain.ying_group, "sim-other", "绑定 DDDDDD")
    assert chat.replies(chain.ying_group) == [WRONG]
    # An hour after the first wrong code, the contact may try again.
    clock.advance(timedelta(minutes=56))
    await chat.say(chain.ying_group, guesser, f"绑定 {code}", name="应天喜")
    assert chat.replies(chain.ying_group) == [
        "绑定成功：应天喜，应天喜出租房 房东。发送“帮助”查看可用命令。"]


async def test_the_fifth_wrong_code_is_logged_masked(
        bot, chat: Chat, chain: DemoChain, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            await chat.say(chain.ying_group, "sim-13905791234", f"绑定 1390579123{i}")
    assert "sent 5 wrong invite codes within an hour" in caplog.text
    assert "139****1234" in caplog.text and find_numbers(caplog.text) == []


async def test_a_message_delivered_twice_counts_once(bot, chat: Chat, chain: DemoChain):
    for _ in range(3):
        await chat.say(chain.ying_group, "sim-guesser", "绑定 ZZZZZZ", message_id="m-1")
    assert await count(bot, InviteAttempt) == 1
    async with bot.session() as s, s.begin():
        for _ in range(2):
            await invites.record_wrong_code(s, transport="sim", contact_id="sim-guesser",
                                            message_id="m-2", now=bot.now(), limit=5)
    assert await count(bot, InviteAttempt) == 2


async def test_the_count_survives_a_restart(bot, settings, transport, clock, chain: DemoChain):
    chat = Chat(bot, transport)
    for i in range(5):
        await chat.say(chain.ying_group, "sim-guesser", f"绑定 WRONG{i}")
    await bot.stop()
    again = build_app(settings, transport=transport, clock=clock)
    async with running(again):
        chat = Chat(again, transport)
        await chat.say(chain.ying_group, "sim-guesser", "绑定 WRONG9")
        assert chat.replies(chain.ying_group) == []
    await bot.start()  # the fixture stops it again
