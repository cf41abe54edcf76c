"""The console's pages against the chat: the overview's figures are 统计's, a reveal goes
through personal.reveal into the access log with its reason, and approving or rejecting here
changes the ledger (and tells the landlord) exactly as 核查 in chat does."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.app import BotApp
from bot.services import stats
from models import AccessLog, Node, OutboxMessage, Person, PointsEvent, PointsStatus
from tests.conftest import Chat, DemoChain, count
from tests.web.conftest import Browser

DONG = "sim-dongbaoming"


def _figures(html: str) -> dict[tuple[str, str], int]:
    """(section key, label) -> value, as the overview shows them."""
    out: dict[tuple[str, str], int] = {}
    for section, body in re.findall(r'data-section="([^"]+)">(.*?)</div>\s*(?=<div class="card"|</section>)',
                                    html, re.S):
        for label, value in re.findall(r'<dd data-label="([^"]+)">(-?\d+)</dd>', body):
            out[(section, label)] = int(value)
    return out


def _chat_figures(reply: str, sections: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The same figures read from 统计's chat reply: one line per section, 标签 数字."""
    out: dict[tuple[str, str], int] = {}
    lines = reply.splitlines()[1:]
    for (key, _title), line in zip(sections, lines, strict=True):
        _, _, items = line.partition("：")
        for item in re.split(r"[，,]\s*", items):
            found = re.fullmatch(r"\s*(.+?)\s*(-?\d+)\s*", item)
            if found:
                out[(key, found.group(1))] = int(found.group(2))
    return out


async def test_the_overview_shows_the_figures_of_统计(bot: BotApp, chat: Chat,
                                                     chain: DemoChain, browser: Browser,
                                                     people: dict[str, int]):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙 体温38.2")
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 潘先生 13800138001 来自湖北武汉")
    await chat.say(chain.community_group, chain.community_commander, "统计")
    [reply] = chat.replies(chain.community_group)
    sections = [(s.key, s.title) for s in stats.SECTIONS]
    expected = _chat_figures(reply, sections)
    await browser.login("tier2")
    shown = _figures((await browser.get("/console/")).text)
    assert shown == expected
    assert any(v > 0 for v in shown.values())


async def test_the_overview_of_a_lower_node_is_its_subtree(bot: BotApp, chat: Chat,
                                                          chain: DemoChain, browser: Browser,
                                                          people: dict[str, int]):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    async with bot.session() as s:
        team = (await s.execute(select(Node).where(Node.name == "长春第一作战小组"))).scalar_one()
    await chat.say(chain.team_group, chain.team_commander, "统计")
    [reply] = chat.replies(chain.team_group)
    expected = _chat_figures(reply, [(s.key, s.title) for s in stats.SECTIONS])
    await browser.login("tier1")
    assert _figures((await browser.get(f"/console/?node={team.id}")).text) == expected


async def _watched(bot: BotApp, chat: Chat, chain: DemoChain) -> int:
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 周芳 13800138000 来自湖南长沙")
    async with bot.session() as s:
        return (await s.execute(select(Person.id).where(Person.name == "周芳"))).scalar_one()


async def test_people_under_watch_are_masked(bot: BotApp, chat: Chat, chain: DemoChain,
                                             browser: Browser, people: dict[str, int]):
    await _watched(bot, chat, chain)
    await browser.login("tier3")
    page = (await browser.get("/console/watch")).text
    assert "周*" in page and "138****8000" in page
    assert "周芳" not in page and "13800138000" not in page


async def test_a_reveal_needs_a_reason_and_is_recorded_with_it(
        bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser, people: dict[str, int]):
    person_id = await _watched(bot, chat, chain)
    await browser.login("tier3")
    await browser.get("/console/watch")
    refused = await browser.post(f"/console/watch/{person_id}/reveal",
                                 {"field": "mobile", "reason": " "})
    assert refused.status_code == 422 and "13800138000" not in refused.text
    assert await count(bot, AccessLog) == 0
    shown = await browser.post(f"/console/watch/{person_id}/reveal",
                               {"field": "mobile", "reason": "核实返乡信息"})
    assert shown.status_code == 200 and "13800138000" in shown.text
    async with bot.session() as s:
        [entry] = (await s.execute(select(AccessLog))).scalars()
    assert (entry.who, entry.person_id, entry.field, entry.why, entry.action) == (
        f"person:{people['tier3']}", person_id, "mobile", "核实返乡信息", "reveal")
    # The access log page shows it to the tier-2 commander, not to the tier-3 one.
    assert (await browser.get("/console/access-log")).status_code == 403
    await browser.post("/console/logout")
    await browser.login("tier2")
    log = (await browser.get("/console/access-log")).text
    assert "核实返乡信息" in log and f"data-who=\"person:{people['tier3']}\">吴**" in log


@pytest.mark.parametrize("who", ["tier5", "tier3"])
async def test_a_reveal_of_someone_outside_the_viewers_part_is_404_and_not_recorded(
        bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser, people: dict[str, int],
        who: str):
    # 应天喜's tenant is in another landlord's node: not tier5's (董宝明) to see.
    await chat.say(chain.ying_group, "sim-yingtianxi", "租客返回 赵丽 13800138009 来自湖南长沙")
    async with bot.session() as s:
        ids = dict((await s.execute(select(Person.name, Person.id))).tuples().all())
    await browser.login(who)
    await browser.get("/console/watch")
    targets = [ids["李卫东"]]  # a person of the chain, not under watch
    if who == "tier5":
        targets.append(ids["赵丽"])
    for person_id in targets:
        response = await browser.post(f"/console/watch/{person_id}/reveal",
                                      {"field": "mobile", "reason": "好奇"})
        assert response.status_code == 404
    assert await count(bot, AccessLog) == 0


async def _pending_event(bot: BotApp, chat: Chat, chain: DemoChain) -> int:
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 帮302租客买菜")
    async with bot.session() as s:
        return (await s.execute(select(PointsEvent.id))).scalar_one()


async def _ledger(bot: BotApp) -> list[tuple[object, ...]]:
    async with bot.session() as s:
        rows = (await s.execute(select(PointsEvent).order_by(PointsEvent.id))).scalars()
        return [(e.id, e.status, e.counts, e.decided_by_id, e.decision_reason) for e in rows]


async def _told(bot: BotApp) -> list[str]:
    async with bot.session() as s:
        return list((await s.execute(select(OutboxMessage.text).where(
            OutboxMessage.source == "points").order_by(OutboxMessage.id))).scalars())


@pytest.mark.parametrize("decision,chat_line,reason", [
    ("approve", "核查 {id} 通过", ""), ("reject", "核查 {id} 驳回 未见记录", "未见记录")])
async def test_verifying_here_changes_the_ledger_as_核查_in_chat(
        bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser, people: dict[str, int],
        decision: str, chat_line: str, reason: str):
    # Two like events: the first decided in chat, the second here; the rows and what the
    # landlord is told must differ only by the event's id.
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 帮302租客买菜")
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 帮303租客买菜")
    first, second = (row[0] for row in await _ledger(bot))
    await chat.say(chain.community_group, chain.secretary, chat_line.format(id=first))
    await browser.login("secretary")
    page = await browser.get("/console/points")
    assert f"event-{second}" in page.text and f"event-{first}" not in page.text
    response = await browser.post(f"/console/points/{second}/verify",
                                  {"decision": decision, "reason": reason})
    assert response.status_code == 200
    by_chat, by_console = await _ledger(bot)
    assert by_chat[1:] == by_console[1:]
    status = PointsStatus.APPROVED if decision == "approve" else PointsStatus.REJECTED
    assert by_console[1] == status
    told_chat, told_console = (await _told(bot))[-2:]
    # The score told is the landlord's after each decision: 13 after the first, 14 after both.
    expected = told_chat.replace(f"#{first}", f"#{second}").replace(f" {first} ", f" {second} ")
    if decision == "approve":
        expected = expected.replace("当前 13 分", "当前 14 分")
    assert told_console == expected
    # Twice: refused as in chat, nothing changes.
    again = await browser.post(f"/console/points/{second}/verify",
                               {"decision": "reject", "reason": "again"})
    assert again.status_code == 409
    assert (await _ledger(bot))[1] == by_console


@pytest.mark.parametrize("who", ["tier2", "tier3", "tier5", "ops"])
async def test_only_the_verifier_verifies_here_too(bot: BotApp, chat: Chat, chain: DemoChain,
                                                  browser: Browser, people: dict[str, int],
                                                  who: str):
    event_id = await _pending_event(bot, chat, chain)
    before = await _ledger(bot)
    await browser.login(who)
    await browser.get("/console/points")
    response = await browser.post(f"/console/points/{event_id}/verify",
                                  {"decision": "approve"})
    assert response.status_code == 404
    assert await _ledger(bot) == before


async def test_workers_under_watch_are_listed_and_revealed_within_the_enterprises_part(
        bot: BotApp, chain: DemoChain, browser: Browser, people: dict[str, int]):
    from datetime import timedelta

    from bot.services import chain as chains
    from bot.services import people as persons
    from models import NodeKind, WorkerCard

    now = bot.now()
    async with bot.session() as s, s.begin():
        community = (await s.execute(select(Node).where(Node.name == "长春社区"))).scalar_one()
        firm = await chains.create_node(s, name="义乌某袜厂", kind=NodeKind.ENTERPRISE,
                                        parent=community, now=now)
        cards = {}
        for name, mobile, until in (("钱多多", "13900001111", now + timedelta(days=5)),
                                    ("孙少少", "13900002222", now - timedelta(days=1))):
            worker = await persons.create_person(s, name=name, now=now, mobile=mobile)
            s.add(WorkerCard(enterprise_node_id=firm.id, person_id=worker.id, watch_until=until,
                             created_at=now, updated_at=now))
            cards[name] = worker.id
    await browser.login("tier2")
    page = (await browser.get("/console/watch")).text
    assert "钱**" in page and "139****1111" in page
    assert "孙**" not in page  # the watch has ended
    shown = await browser.post(f"/console/watch/{cards['钱多多']}/reveal",
                               {"field": "mobile", "reason": "复工核查"})
    assert "13900001111" in shown.text
    ended = await browser.post(f"/console/watch/{cards['孙少少']}/reveal",
                               {"field": "mobile", "reason": "复工核查"})
    assert ended.status_code == 404
    # The team below the community does not see the enterprise (a sibling of the team).
    browser.client.cookies.clear()
    await browser.login("tier3")
    await browser.get("/console/watch")
    refused = await browser.post(f"/console/watch/{cards['钱多多']}/reveal",
                                 {"field": "mobile", "reason": "复工核查"})
    assert refused.status_code == 404
    assert await count(bot, AccessLog) == 1


@pytest.mark.parametrize("field", ["name", "mobile_enc", ""])
async def test_a_reveal_of_another_field_is_refused_and_not_recorded(
        bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser, people: dict[str, int],
        field: str):
    person_id = await _watched(bot, chat, chain)
    await browser.login("tier3")
    await browser.get("/console/watch")
    response = await browser.post(f"/console/watch/{person_id}/reveal",
                                  {"field": field, "reason": "核实"})
    assert response.status_code == 422
    assert await count(bot, AccessLog) == 0


async def test_an_id_number_reveal_is_recorded_even_when_none_is_on_file(
        bot: BotApp, chat: Chat, chain: DemoChain, browser: Browser, people: dict[str, int]):
    person_id = await _watched(bot, chat, chain)
    await browser.login("tier3")
    await browser.get("/console/watch")
    response = await browser.post(f"/console/watch/{person_id}/reveal",
                                  {"field": "id_number", "reason": "核实身份"})
    assert response.status_code == 200 and "未登记" in response.text
    async with bot.session() as s:
        [entry] = (await s.execute(select(AccessLog))).scalars()
    assert (entry.field, entry.why) == ("id_number", "核实身份")


async def test_the_standing_is_积分s_score(bot: BotApp, chat: Chat, chain: DemoChain,
                                         browser: Browser, people: dict[str, int]):
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 帮302租客买菜")
    await chat.say(chain.community_group, chain.secretary, "核查 1 通过")
    await chat.say(chain.tenant_group, DONG, "积分")
    reply = chat.replies(chain.tenant_group)[0]
    chat_score = int(re.search(r"当前 (\d+) 分", reply).group(1))  # type: ignore[union-attr]
    await browser.login("tier2")
    page = (await browser.get("/console/points")).text
    shown = dict(re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", page))
    assert int(shown["董**"]) == chat_score == 13
    assert len(shown) == 1  # 应天喜 holds no role yet: not a landlord of the chain
