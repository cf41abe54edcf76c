"""Acknowledgement where a channel cannot report who wrote 收到: the signed one-click link
(valid, forged, tampered, expired, replayed, another notice's, a group the notice did not go
to), the 收到 #id on WeChat from the group's responsible person, and what 进度 says."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot import crypto, pii
from bot.api import create_api
from bot.app import BotApp
from bot.channels.base import Capabilities
from bot.clock import FakeClock
from bot.config import Settings
from bot.services import ack
from models import Group, NoticeRead, OutboxMessage, OutboxStatus, Person
from schedules.jobs import check_notices
from tests.conftest import Chat, DemoChain, count

BASE = "https://ack.example.cn"
ROBOT = "wecom-robot-1"
# A WeCom group robot: it posts, it hears nothing.
SEND_ONLY = Capabilities(receive=False, ack_in_chat=False, mention_user=True, mention_all=True,
                         markdown=True, cards=False)
LINK = re.compile(r"https://ack\.example\.cn(/ack/([a-p]+))")


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Defaults with the public address links start with."""
    return Settings(database_url=db_url, transport="memory", api={"token": "test-token"},
                    pacing={"min_gap_seconds": 0, "jitter_seconds": 0}, scheduler=False,
                    notices={"ack_link_base": BASE, "ack_link_days": 7})


@pytest.fixture(autouse=True)
def robot_declared() -> Iterator[None]:
    ack.declare(ROBOT, SEND_ONLY)
    yield
    ack.forget_declarations()


@pytest.fixture
async def robot_chain(bot: BotApp, chain: DemoChain) -> DemoChain:
    """The demo chain with the community's group (tier 2) sent to by a group robot."""
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).where(Group.room_id == chain.community_group)
                        .values(account=ROBOT))
    return chain


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(bot))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def _group_id(bot: BotApp, room: str) -> int:
    async with bot.session() as s:
        return (await s.execute(select(Group.id).where(Group.room_id == room))).scalar_one()


async def _row(bot: BotApp, notice_id: int, room: str) -> OutboxMessage:
    async with bot.session() as s:
        return (await s.execute(select(OutboxMessage).join(Group).where(
            OutboxMessage.notice_id == notice_id, Group.room_id == room))).scalar_one()


def _link(transport, room: str) -> str:
    """The path of the link in the notice the robot posted to `room`."""
    text = [s.text for s in transport.sent if s.room_id == room and "【通知#" in s.text][-1]
    found = LINK.search(text)
    assert found, text
    return found.group(1)


async def _notice(chat: Chat, chain: DemoChain, text: str = "今晚8点开视频会") -> None:
    await chat.say(chain.subdistrict_group, chain.commander, f"通知 到3级 {text}")


async def test_the_robot_groups_notice_carries_its_link_and_only_it(bot, chat, robot_chain,
                                                                    transport):
    chain = robot_chain
    await _notice(chat, chain)
    sent = {s.room_id: s for s in transport.sent if s.text.startswith("【通知#1】")}
    # The robot's group: the notice, then how to acknowledge; sent through the robot.
    robot = sent[chain.community_group]
    assert robot.text.startswith("【通知#1】今晚8点开视频会\n\n")
    assert robot.account == ROBOT
    assert "收到 #1" in robot.text and LINK.search(robot.text)
    # A WeChat group, where 收到 is seen: the notice alone.
    assert sent[chain.team_group].text == "【通知#1】今晚8点开视频会"
    # The link names this notice and this group, signed.
    path = _link(transport, chain.community_group)
    claim = ack.verify(path.removeprefix("/ack/"), now=bot.now())
    assert (claim.notice_id, claim.group_id) == (1, await _group_id(bot, chain.community_group))


async def test_opening_the_link_acknowledges_nothing_the_post_does_once(
        bot, chat, robot_chain, transport, client):
    chain = robot_chain
    await _notice(chat, chain)
    path = _link(transport, chain.community_group)
    # A link preview or a crawler fetches the page: no acknowledgement.
    for _ in range(3):
        page = await client.get(path)
        assert page.status_code == 200 and "确认收到" in page.text
        assert "长春社区" in page.text and "整体已收到" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert (await _row(bot, 1, chain.community_group)).acked_at is None
    done = await client.post(path)
    assert done.status_code == 200 and "已确认" in done.text
    row = await _row(bot, 1, chain.community_group)
    assert row.acked_at == bot.now() and row.acked_via == "link"
    # The group acknowledged as a whole: nobody's name is put on it.
    assert row.acked_by_id is None
    # Replays (a double tap, a forwarded link, a later GET) change nothing.
    first = row.acked_at
    bot.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    again = await client.post(path)
    assert again.status_code == 200 and "无需再次确认" in again.text
    assert "无需再次确认" in (await client.get(path)).text
    assert (await _row(bot, 1, chain.community_group)).acked_at == first
    assert await count(bot, OutboxMessage, OutboxMessage.acked_at.is_not(None)) == 1


def _flip(token: str, index: int) -> str:
    ch = token[index]
    return token[:index] + ("a" if ch != "a" else "b") + token[index + 1:]


def _reencode(token: str, **fields: int) -> str:
    """The token with some of its signed fields changed and its signature kept."""
    raw = ack._decode(token[1:])
    notice_id, group_id, expiry = ack._FIELDS.unpack(raw[:ack._FIELDS.size])
    values = {"notice_id": notice_id, "group_id": group_id, "expiry": expiry} | fields
    changed = ack._FIELDS.pack(values["notice_id"], values["group_id"], values["expiry"])
    return token[0] + ack._encode(changed + raw[ack._FIELDS.size:])


async def test_forged_and_tampered_links_are_refused(bot, chat, robot_chain, transport, client):
    chain = robot_chain
    await _notice(chat, chain)
    token = _link(transport, chain.community_group).removeprefix("/ack/")
    claim = ack.verify(token, now=bot.now())
    team = await _group_id(bot, chain.team_group)
    forged = [
        _flip(token, len(token) - 1),                                 # signature spoilt
        _flip(token, len(token) - 20),
        _flip(token, 5),                                              # a signed field spoilt
        _reencode(token, group_id=team),                              # another group
        _reencode(token, notice_id=2),                                # another notice
        _reencode(token, expiry=int(claim.expires.timestamp()) + 86400 * 30),   # longer
        "b" + token[1:],                                              # another format
        token[:-2],                                                   # truncated
        token + "aa",
        token.upper(),
        "a" * len(token),
        ack.sign(notice_id=1, group_id=claim.group_id, expires=bot.now() + timedelta(days=1),
                 keyring=crypto.generate()),                          # not our key
        "%2e%2e",
        "v1.1.1.1",
    ]
    for bad in forged:
        for method in (client.get, client.post):
            response = await method(f"/ack/{bad}")
            assert response.status_code == 403, (bad, response.status_code, response.text)
            assert "链接无效" in response.text
    assert await count(bot, OutboxMessage, OutboxMessage.acked_at.is_not(None)) == 0
    # Too long a token is refused before any work.
    assert (await client.post("/ack/" + "a" * 500)).status_code == 422


@examples(max_examples=300, deadline=None)
@given(notice_id=st.integers(1, 2**63 - 1), group_id=st.integers(1, 2**63 - 1),
       expiry=st.integers(0, 2**37), key=st.binary(min_size=32, max_size=32))
def test_the_masking_step_never_touches_a_link(notice_id, group_id, expiry, key):
    """Every text the bot sends is masked for mobiles and ID numbers: a link must come
    through whole whatever its ids, expiry and key (digits joined by dots once did not)."""
    ring = crypto.Keyring(active="k1", keys={"k1": bytes(32)}, index_key=key)
    token = ack.sign(notice_id=notice_id, group_id=group_id,
                     expires=datetime.fromtimestamp(expiry, UTC), keyring=ring)
    text = f"请点击链接确认收到：{BASE}/ack/{token}\n或回复“收到 #{notice_id}”"
    assert pii.mask_text(text).count(token) == 1


async def test_an_expired_link_is_refused_with_the_way_that_still_works(
        bot, chat, robot_chain, transport, client, clock: FakeClock):
    chain = robot_chain
    await _notice(chat, chain)
    path = _link(transport, chain.community_group)
    clock.advance(timedelta(days=7, seconds=1))
    for method in (client.get, client.post):
        response = await method(path)
        assert response.status_code == 410
        assert "已过期" in response.text and "收到 #1" in response.text
    assert (await _row(bot, 1, chain.community_group)).acked_at is None


async def test_a_signed_link_for_a_group_the_notice_did_not_reach_is_refused(
        bot, chat, robot_chain, client):
    chain = robot_chain
    await _notice(chat, chain)   # 到3级: the tenants' groups got nothing
    tenants = await _group_id(bot, chain.tenant_group)
    expires = bot.now() + timedelta(days=1)
    for notice_id, group_id in ((1, tenants), (99, await _group_id(bot, chain.community_group))):
        token = ack.sign(notice_id=notice_id, group_id=group_id, expires=expires)
        for method in (client.get, client.post):
            response = await method(f"/ack/{token}")
            assert response.status_code == 404, (notice_id, group_id)
            assert "没有" in response.text
    assert await count(bot, OutboxMessage, OutboxMessage.acked_at.is_not(None)) == 0


async def test_another_notices_link_acknowledges_only_its_own(bot, chat, robot_chain,
                                                              transport, client):
    chain = robot_chain
    await _notice(chat, chain, "第一条")
    first = _link(transport, chain.community_group)
    transport.sent.clear()
    await _notice(chat, chain, "第二条")
    assert (await client.post(first)).status_code == 200
    assert (await _row(bot, 1, chain.community_group)).acked_at is not None
    assert (await _row(bot, 2, chain.community_group)).acked_at is None


async def test_the_link_counts_a_row_the_sender_still_holds_as_delivered(
        bot, chat, robot_chain, transport, client):
    chain = robot_chain
    await _notice(chat, chain)
    path = _link(transport, chain.community_group)
    row = await _row(bot, 1, chain.community_group)
    async with bot.session() as s, s.begin():   # as after a crash mid-send
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == row.id)
                        .values(status=OutboxStatus.SENDING))
    assert (await client.post(path)).status_code == 200
    row = await _row(bot, 1, chain.community_group)
    assert row.status == OutboxStatus.SENT and row.acked_via == "link"


async def test_the_responsible_persons_wechat_reply_counts_for_the_robots_group(
        bot, chat, robot_chain):
    chain = robot_chain
    await _notice(chat, chain)
    # The community's commander answers in the subdistrict's WeChat group, where they sit.
    await chat.say(chain.subdistrict_group, chain.community_commander, "收到 #1")
    row = await _row(bot, 1, chain.community_group)
    async with bot.session() as s:
        li = (await s.execute(select(Person.id).where(Person.name == "李卫东"))).scalar_one()
    assert (row.acked_via, row.acked_by_id) == ("wechat", li)
    assert chat.replies(chain.subdistrict_group) == []


async def test_a_wechat_reply_from_an_unbound_room_counts_too(bot, chat, robot_chain):
    chain = robot_chain
    await _notice(chat, chain)
    await chat.say("somewhere-else@chatroom", chain.community_commander, "收到 #1")
    assert (await _row(bot, 1, chain.community_group)).acked_via == "wechat"


async def test_nobody_else_acknowledges_for_the_robots_group(bot, chat, robot_chain):
    chain = robot_chain
    await _notice(chat, chain)
    # A tenant, a landlord, the team's commander, the subdistrict's commander: not the
    # community's responsible person.
    for who in (chain.tenant, chain.landlord, chain.team_commander, chain.commander):
        await chat.say(chain.subdistrict_group, who, "收到 #1")
        await chat.say("somewhere-else@chatroom", who, "收到 #1")
    # Without the notice's number it does not say which group's notice it means.
    await chat.say(chain.subdistrict_group, chain.community_commander, "收到")
    # Another notice's number.
    await chat.say(chain.subdistrict_group, chain.community_commander, "收到 #7")
    assert (await _row(bot, 1, chain.community_group)).acked_at is None
    # A WeChat group's acknowledgement still comes from within it only.
    assert (await _row(bot, 1, chain.team_group)).acked_at is None


async def test_another_member_of_the_robots_group_counts_as_a_read(bot, chat, robot_chain):
    chain = robot_chain
    await _notice(chat, chain)
    # The community's secretary is a member there, not its responsible person.
    await chat.say(chain.subdistrict_group, chain.secretary, "收到 #1")
    await chat.say(chain.subdistrict_group, chain.secretary, "收到 #1")
    assert (await _row(bot, 1, chain.community_group)).acked_at is None
    assert await count(bot, NoticeRead) == 1


async def test_a_wechat_reply_after_the_link_changes_nothing(bot, chat, robot_chain,
                                                             transport, client):
    chain = robot_chain
    await _notice(chat, chain)
    assert (await client.post(_link(transport, chain.community_group))).status_code == 200
    await chat.say(chain.subdistrict_group, chain.community_commander, "收到 #1")
    row = await _row(bot, 1, chain.community_group)
    assert (row.acked_via, row.acked_by_id) == ("link", None)


async def test_progress_says_how_each_tier_acknowledges(bot, chat, robot_chain, transport,
                                                       client):
    chain = robot_chain
    await _notice(chat, chain)
    await client.post(_link(transport, chain.community_group))
    await chat.say(chain.subdistrict_group, chain.commander, "进度")
    [reply] = chat.replies(chain.subdistrict_group)
    assert reply.splitlines()[1:] == [
        "2级：送达 1/1，确认 1/1（点击链接、微信回复）",
        "3级：送达 1/1，确认 0/1（群内回复），未确认：长春第一作战小组群",
    ]


async def test_progress_of_an_all_wechat_notice_is_unchanged(bot, chat, chain):
    await _notice(chat, chain)
    await chat.say(chain.subdistrict_group, chain.commander, "进度")
    [reply] = chat.replies(chain.subdistrict_group)
    assert "回复" not in reply and "链接" not in reply


async def test_without_a_public_address_the_robots_group_is_told_to_reply_on_wechat(
        bot, chat, robot_chain, transport):
    chain = robot_chain
    bot.settings.notices.ack_link_base = ""
    await _notice(chat, chain)
    [text] = [s.text for s in transport.sent if s.room_id == chain.community_group]
    assert "收到 #1" in text and "http" not in text
    await chat.say(chain.subdistrict_group, chain.commander, "进度")
    assert "2级：送达 1/1，确认 0/1（微信回复）" in chat.replies(chain.subdistrict_group)[0]


def test_tokens_are_bound_to_their_purpose_key():
    """A link's signature is not a blind index of the same text, and a keyring with another
    index key does not verify it."""
    ring = crypto.generate()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = ack.sign(notice_id=3, group_id=4, expires=now + timedelta(days=1), keyring=ring)
    assert ack.verify(token, now=now, keyring=ring).group_id == 4
    with pytest.raises(ack.LinkError) as refused:
        ack.verify(token, now=now, keyring=crypto.generate())
    assert refused.value.status == 403
    assert ack._decode(token[1:])[-16:].hex() not in crypto.blind_index("mobile", "3|4", ring)


async def test_the_reminder_in_the_robots_group_carries_a_fresh_link(
        bot, chat, robot_chain, transport, client, clock: FakeClock):
    chain = robot_chain
    await _notice(chat, chain)
    transport.sent.clear()
    clock.advance(timedelta(hours=2, minutes=1))
    reminded, _ = await check_notices(bot)
    await bot.idle()
    assert reminded == 2
    texts_by_room = {s.room_id: s.text for s in transport.sent}
    robot = texts_by_room[chain.community_group]
    assert robot.startswith("【通知#1】提醒：本群还没有确认收到通知。") and LINK.search(robot)
    # In the WeChat group: the usual 收到 reminder, no link.
    assert texts_by_room[chain.team_group] == "【通知#1】提醒：请回复“收到”确认已收到通知。"
    assert (await client.post(_link(transport, chain.community_group))).status_code == 200
    assert (await _row(bot, 1, chain.community_group)).acked_via == "link"


async def test_racing_presses_record_one_acknowledgement(bot, chat, robot_chain, transport,
                                                         client):
    """Five presses at once (a double tap, the link opened on two phones): one records it,
    the others find it recorded."""
    chain = robot_chain
    await _notice(chat, chain)
    path = _link(transport, chain.community_group)
    answers = await asyncio.gather(*(client.post(path) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sum("已确认：" in a.text for a in answers) == 1
    assert sum("无需再次确认" in a.text for a in answers) == 4
    assert await count(bot, OutboxMessage, OutboxMessage.acked_at.is_not(None)) == 1
