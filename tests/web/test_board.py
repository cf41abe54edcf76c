"""The delivery board and the chain page against the chat: the preview, the queued answer and
进度 say what the chat says; a notice sent here is delivered and acknowledged in chat; an invite
code issued here binds a person in chat."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from bot.app import BotApp
from models import InviteCode, Membership, Node, Notice, OutboxMessage
from tests.conftest import Chat, DemoChain, count
from tests.web.conftest import Browser


async def _node(bot: BotApp, name: str) -> int:
    async with bot.session() as s:
        return (await s.execute(select(Node.id).where(Node.name == name))).scalar_one()


def _result(response_text: str) -> str:
    found = re.search(r"<p class=\"(?:note|error)\" data-result>(.*?)</p>", response_text, re.S)
    assert found, response_text
    return html.unescape(found.group(1))


async def test_the_preview_is_预览s(bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser,
                                    people: dict[str, int]):
    await chat.say(chain.community_group, chain.community_commander,
                   "预览 通知 请各房东今日完成楼道消毒")
    [expected] = chat.replies(chain.community_group)
    await browser.login("tier2")
    await browser.get("/console/board")
    response = await browser.post("/console/board/preview", {
        "origin": str(await _node(bot, "长春社区")), "text": "请各房东今日完成楼道消毒"})
    assert response.status_code == 200
    assert _result(response.text) == expected
    assert await count(bot, Notice) == 0


async def test_a_notice_sent_here_is_delivered_acknowledged_and_followed_on_the_board(
        bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser, people: dict[str, int]):
    await browser.login("tier2")
    await browser.get("/console/board")
    response = await browser.post("/console/board/send", {
        "origin": str(await _node(bot, "长春社区")), "text": "请各房东今日完成楼道消毒"})
    assert response.status_code == 200
    queued = _result(response.text)
    assert queued.startswith("【通知#1】已发出：")
    async with bot.session() as s:
        notice = (await s.execute(select(Notice))).scalar_one()
        rows = await s.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.notice_id == notice.id))
    assert notice.sender_id == people["tier2"] and notice.target_count == rows > 0
    await bot.idle()
    assert any("请各房东今日完成楼道消毒" in t for t in chat.all_texts())
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    await chat.say(chain.community_group, chain.community_commander, "进度 1")
    expected = chat.replies(chain.community_group)[0].splitlines()
    page = html.unescape((await browser.get("/console/board")).text)
    for line in expected:
        assert line in page


async def test_only_a_commander_of_the_origin_sends(bot: BotApp, chain: DemoChain,
                                                    browser: Browser, people: dict[str, int]):
    # The secretary sits in the community group but does not command it (通知 is the
    # commander's in chat too); the team commander cannot send from the community.
    for who, origin in (("secretary", "长春社区"), ("tier3", "长春社区"), ("ops", "福田街道")):
        b = browser
        b.client.cookies.clear()
        await b.login(who)
        await b.get("/console/board")
        response = await b.post("/console/board/send", {
            "origin": str(await _node(bot, origin)), "text": "越级通知"})
        assert response.status_code == 404, who
    assert await count(bot, Notice) == 0


async def test_an_empty_notice_or_one_reaching_no_group_is_refused(
        bot: BotApp, chain: DemoChain, browser: Browser, people: dict[str, int]):
    await browser.login("tier5")  # 董宝明 commands his tenants' node: no group below it
    await browser.get("/console/board")
    origin = str(await _node(bot, "董宝明出租房"))
    for text in ("   ", "请注意"):
        response = await browser.post("/console/board/send", {"origin": origin, "text": text})
        assert response.status_code == 422
    assert await count(bot, Notice) == 0


async def test_an_invite_code_issued_here_binds_in_chat(bot: BotApp, chat: Chat,
                                                       chain: DemoChain, browser: Browser,
                                                       people: dict[str, int]):
    await browser.login("tier3")
    page = await browser.get("/console/chain")
    assert "长春第一作战小组" in page.text and "福田街道" not in page.text
    team = await _node(bot, "长春第一作战小组")
    response = await browser.post(f"/console/chain/{team}/invite",
                                  {"kind": "person", "role": "member"})
    assert response.status_code == 200
    code = re.search(r"邀请码 ([A-Z0-9]+)", response.text)
    assert code is not None
    await chat.say(chain.team_group, "sim-newcomer", f"绑定 {code.group(1)}", name="新组员")
    async with bot.session() as s:
        used = (await s.execute(select(InviteCode))).scalar_one()
        assert used.used_at is not None
        joined = await s.scalar(select(func.count()).select_from(Membership).where(
            Membership.node_id == team, Membership.role == "member"))
    assert joined and joined >= 1


async def test_a_team_member_cannot_issue_codes_for_the_team_they_see(
        bot: BotApp, chain: DemoChain, browser: Browser, people: dict[str, int]):
    # The secretary sees the community's subtree but commands nothing there.
    await browser.login("secretary")
    await browser.get("/console/chain")
    response = await browser.post(f"/console/chain/{await _node(bot, '长春第一作战小组')}/invite",
                                  {"kind": "group"})
    assert response.status_code == 404
    assert await count(bot, InviteCode) == 0

