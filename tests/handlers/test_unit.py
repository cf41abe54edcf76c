"""企业登记, 员工登记, workers' 体温, 企业日报 and 工作卡 through the whole pipeline, as
transcripts on the demo chain with its enterprise and key project (bot/demo/units.toml)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from bot import crypto, texts, unit_texts
from bot.app import BotApp
from bot.console import load_demo_chain
from bot.grammar.unit import USAGE
from bot.transports.memory import MemoryTransport
from models import (
    Enterprise,
    EnterpriseReport,
    Group,
    Node,
    NodeKind,
    Person,
    Ticket,
    WorkCard,
    WorkerCard,
    WorkerReading,
)
from tests.conftest import Chat, DemoChain, count

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")
FULL_ID = re.compile(r"\d{17}[\dXx]")
# A valid resident ID (check digit right) for the worker cards.
ID_NUMBER = "11010519491231002X"


@dataclass
class Units(DemoChain):
    """The demo chain with its enterprise (two workshops) and key project."""

    enterprise_group: str = "huaxin@chatroom"
    workshop1: str = "huaxin-w1@chatroom"
    workshop2: str = "huaxin-w2@chatroom"
    project_group: str = "road@chatroom"
    liaison: str = "sim-suntao"
    worker: str = "sim-zhangwei"
    lead: str = "sim-zhoulei"


@pytest.fixture
async def units(bot: BotApp) -> Units:
    assert await load_demo_chain(bot, units=True)
    return Units()


async def say_mentioning(chat: Chat, transport: MemoryTransport, room: str, contact: str,
                         text: str, mentions: tuple[str, ...]) -> None:
    """A message that @-mentions contacts (the platform gives their ids)."""
    message = dataclasses.replace(transport.message(room, contact, text), mention_ids=mentions)
    chat._mark = len(transport.sent)
    await transport.inject(message)
    await chat.app.idle()


def no_numbers(chat: Chat) -> None:
    sent = chat.all_texts()
    assert not any(FULL_MOBILE.search(t) or FULL_ID.search(t) for t in sent), sent


# --- 企业登记 ----------------------------------------------------------------------------------


async def test_community_opens_an_enterprise_file_with_codes_for_its_group_and_liaison(
        bot, chat: Chat, units: Units):
    await chat.say(units.community_group, units.community_commander,
                   "企业登记 新华五金 地址：长春路8号，联络员：钱进 13957900777；员工30人 "
                   "车间：装配车间 宿舍：一号宿舍 已备案")
    [reply] = chat.replies(units.community_group)
    assert reply.startswith(unit_texts.Enterprise.CREATED.format(
        name="新华五金", summary="地址 长春路8号，联络员 钱*，员工 30 人，已备案待复工；"
                              "车间/宿舍：装配车间、一号宿舍"))
    assert "绑定群 " in reply and "绑定 " in reply
    no_numbers(chat)
    async with bot.session() as s:
        node = (await s.execute(select(Node).where(Node.name == "新华五金"))).scalar_one()
        community = (await s.execute(select(Node).where(Node.name == "长春社区"))).scalar_one()
        assert (node.kind, node.tier, node.parent_id) == ("enterprise", 3, community.id)
        kids = (await s.execute(select(Node.name, Node.kind, Node.tier)
                                .where(Node.parent_id == node.id))).all()
        assert sorted(kids) == [("一号宿舍", "workgroup", 4), ("装配车间", "workgroup", 4)]
        file = (await s.execute(select(Enterprise).where(Enterprise.node_id == node.id))
                ).scalar_one()
        assert (file.address, file.headcount, file.status) == ("长春路8号", 30, "filed")
        # The liaison's mobile is held on a Person row only (the encrypted column).
        liaison = await s.get(Person, file.liaison_id)
        assert liaison is not None and (liaison.name, liaison.mobile_bidx) == (
            "钱进", crypto.blind_index("mobile", "13957900777"))

    # Registering the same name again updates the one file (reopened now), no second node.
    await chat.say(units.community_group, units.secretary, "企业登记 新华五金 已复工 员工32人")
    assert chat.replies(units.community_group) == [unit_texts.Enterprise.UPDATED.format(
        name="新华五金", summary="地址 长春路8号，联络员 钱*，员工 32 人，已复工；"
                              "车间/宿舍：装配车间、一号宿舍")]
    assert await count(bot, Node, Node.name == "新华五金") == 1
    assert await count(bot, Enterprise, Enterprise.status == "reopened") == 2


async def test_the_liaison_updates_only_their_own_file(bot, chat: Chat, units: Units):
    await chat.say(units.enterprise_group, units.liaison, "企业登记 员工118人 宿舍:二号宿舍")
    [reply] = chat.replies(units.enterprise_group)
    assert reply.startswith("已更新「华鑫针织」企业档案：地址 长春路12号，联络员 孙*，员工 118 人")
    assert reply.endswith("车间/宿舍：华鑫一车间、华鑫二车间、二号宿舍")
    # Another enterprise's name from this group: refused, nothing created.
    await chat.say(units.enterprise_group, units.liaison, "企业登记 新华五金 已复工")
    assert chat.replies(units.enterprise_group) == [
        unit_texts.Enterprise.OTHER_NAME.format(name="华鑫针织")]
    assert await count(bot, Node, Node.name == "新华五金") == 0


async def test_who_may_not_register_an_enterprise(bot, chat: Chat, units: Units):
    # A worker in the enterprise's group, a team commander in his team's group (tier 3 but
    # not a community), the landlord in the team's group: refused, nothing stored.
    await chat.say(units.enterprise_group, units.worker, "企业登记 员工1人")
    await chat.say(units.team_group, units.team_commander, "企业登记 新华五金 已复工")
    await chat.say(units.landlords_group, units.landlord, "企业登记 新华五金 已复工")
    for room in (units.enterprise_group, units.team_group, units.landlords_group):
        last = [m.text for m in chat.transport.sent if m.room_id == room][-1]
        assert "没有权限" in last, last
    assert await count(bot, Node, Node.name == "新华五金") == 0
    async with bot.session() as s:
        file = (await s.execute(select(Enterprise))).scalar_one()
    assert file.headcount == 120


async def test_a_liaison_mobile_of_someone_else_is_refused_without_saying_whose(
        bot, chat: Chat, units: Units):
    # 13757912345 is the landlord 董宝明's.
    await chat.say(units.community_group, units.community_commander,
                   "企业登记 新华五金 联络员:钱进 13757912345")
    [reply] = chat.replies(units.community_group)
    assert "董" not in reply and "已经登记" in reply
    assert await count(bot, Node, Node.name == "新华五金") == 0


# --- 员工登记 and workers' temperatures --------------------------------------------------------


async def test_liaison_cards_a_worker_who_then_reports_their_own_temperature(
        bot, chat: Chat, units: Units, transport: MemoryTransport):
    await say_mentioning(chat, transport, units.enterprise_group, units.liaison,
                         f"员工登记 @张伟 张伟 13905790001 来自安徽阜阳 2月18日返岗 华鑫一车间 "
                         f"身份证{ID_NUMBER} 居家观察", mentions=(units.worker,))
    assert chat.replies(units.enterprise_group) == [
        unit_texts.Worker.REGISTERED.format(
            name="张*", origin="安徽阜阳", returned="2月18日", group="，华鑫一车间",
            health="，居家观察至 3月3日") + unit_texts.Worker.LINKED]
    async with bot.session() as s:
        card = (await s.execute(select(WorkerCard))).scalar_one()
        person = await s.get(Person, card.person_id)
        assert person is not None
        assert (person.name, person.mobile_bidx, person.id_number_bidx) == (
            "张伟", crypto.blind_index("mobile", "13905790001"),
            crypto.blind_index("id_number", ID_NUMBER))
        w1 = (await s.execute(select(Node).where(Node.name == "华鑫一车间"))).scalar_one()
        assert card.workgroup_node_id == w1.id and str(card.returned_on) == "2020-02-18"
    # The worker (now known by the mention) reports in the workshop's group.
    await chat.say(units.workshop1, units.worker, "体温 36.5")
    assert chat.replies(units.workshop1) == [
        unit_texts.Worker.TEMP_OK.format(name="张*", value=36.5)]
    await chat.say(units.workshop1, units.worker, "体温38.2")
    assert chat.replies(units.workshop1) == [unit_texts.Worker.TEMP_FEVER.format(
        name="张*", value=38.2, threshold=bot.settings.tenants.fever_threshold)]
    # The community follows up (masked name); the liaison is mentioned in the group.
    assert chat.replies(units.community_group) == [unit_texts.Worker.FEVER_TO_COMMUNITY.format(
        node="华鑫针织", name="张*", when="2月21日10:00", value=38.2)]
    assert chat.mentions(units.workshop1) == [(units.liaison,)]
    assert await count(bot, WorkerReading) == 2
    assert await count(bot, WorkerCard, WorkerCard.health == "fever") == 1
    no_numbers(chat)


async def test_the_liaison_reports_for_a_named_worker_and_a_stranger_fever_is_never_dropped(
        bot, chat: Chat, units: Units):
    await chat.say(units.enterprise_group, units.liaison,
                   "员工登记 李娜 13905790002 来自江西上饶 华鑫二车间")
    await chat.say(units.workshop2, units.liaison, "体温 李娜 36.7")
    assert chat.replies(units.workshop2) == [
        unit_texts.Worker.TEMP_OK.format(name="李*", value=36.7)]
    await chat.say(units.workshop2, units.liaison, "体温 王五 36.7")
    assert chat.replies(units.workshop2) == [
        unit_texts.Worker.TEMP_NAME_UNKNOWN.format(name="王*")]
    # Someone without a card: a normal reading gets the hint, a fever reaches the community.
    await chat.say(units.workshop2, "sim-stranger", "体温 36.4", name="赵六")
    assert chat.replies(units.workshop2) == [unit_texts.Worker.TEMP_NO_CARD]
    await chat.say(units.workshop2, "sim-stranger", "体温 38.6", name="赵六")
    [reply] = chat.replies(units.workshop2)
    assert reply.startswith("赵* 可能发热") and unit_texts.Worker.TEMP_NO_CARD in reply
    [alert] = chat.replies(units.community_group)
    assert alert.startswith("【可能发热】华鑫针织 赵* ")
    await chat.say(units.workshop2, "sim-stranger", "我有点发烧", name="赵六")
    assert chat.replies(units.community_group) and chat.replies(units.workshop2)
    assert await count(bot, WorkerReading) == 1


async def test_a_workshop_by_its_short_name(bot, chat: Chat, units: Units):
    """一车间 (as the usage example writes it) is 华鑫一车间, the only group ending so."""
    await chat.say(units.enterprise_group, units.liaison,
                   "员工登记 李强 13905790002 来自安徽阜阳 一车间")
    [reply] = chat.replies(units.enterprise_group)
    assert "华鑫一车间" in reply, reply
    async with bot.session() as s:
        card = (await s.execute(select(WorkerCard))).scalar_one()
        w1 = (await s.execute(select(Node).where(Node.name == "华鑫一车间"))).scalar_one()
        assert card.workgroup_node_id == w1.id
    no_numbers(chat)


@pytest.mark.parametrize(("line", "problem"), [
    ("员工登记 张伟 13905790001 来自安徽阜阳 三车间", "本企业没有「三车间」"),
    ("员工登记 张伟 来自安徽阜阳", "缺少手机号"),
    ("员工登记 张伟 13905790001 来自安徽阜阳 居家观察 隔离", "只能写一个"),
    ("员工登记 张伟 13905790001 来自安徽阜阳 身份证110105194912310021", "身份证号不正确"),
    # The landlord's mobile under another name: refused without saying whose.
    ("员工登记 张伟 13757912345 来自安徽阜阳", "已经登记"),
])
async def test_bad_worker_cards_get_a_hint_and_store_nothing(bot, chat: Chat, units: Units,
                                                              line: str, problem: str):
    persons = await count(bot, Person)
    await chat.say(units.enterprise_group, units.liaison, line)
    [reply] = chat.replies(units.enterprise_group)
    assert problem in reply and "董" not in reply, reply
    assert await count(bot, WorkerCard) == 0
    assert await count(bot, Person) == persons
    no_numbers(chat)


async def test_only_the_liaison_cards_workers_and_a_mention_cannot_take_anothers_contact(
        bot, chat: Chat, units: Units, transport: MemoryTransport):
    await chat.say(units.enterprise_group, units.worker, "员工登记 张伟 13905790001 来自安徽阜阳")
    [reply] = chat.replies(units.enterprise_group)
    assert "企业联络员" in reply and "没有权限" in reply
    # Mentioning the landlord (already someone else) does not make him this worker.
    await say_mentioning(chat, transport, units.enterprise_group, units.liaison,
                         "员工登记 @董宝明 张伟 13905790001 来自安徽阜阳",
                         mentions=(units.landlord,))
    assert chat.replies(units.enterprise_group) == [
        unit_texts.Worker.CONTACT_TAKEN.format(name="张*")]
    assert await count(bot, WorkerCard) == 0


async def test_worker_tables_hold_no_mobile_or_id_number_columns():
    for model in (WorkerCard, WorkerReading, Enterprise, EnterpriseReport, WorkCard):
        names = {c.key for c in sa_inspect(model).columns}
        assert not names & {"mobile", "id_number", "phone"}, model


# --- 企业日报 ---------------------------------------------------------------------------------


async def test_enterprise_report_is_stored_corrected_and_anomalies_told(
        bot, chat: Chat, units: Units, clock):
    await chat.say(units.enterprise_group, units.liaison, "企业日报 在岗120 返岗3 隔离2 异常0")
    assert chat.replies(units.enterprise_group) == [unit_texts.Report.OK.format(
        name="华鑫针织", date="2月21日", on_duty=120, returned=3, isolated=2, anomalies=0)]
    assert chat.replies(units.community_group) == []
    clock.advance(timedelta(hours=2))
    # A correction from a workshop group: the same day's one row, the community told.
    await chat.say(units.workshop1, units.liaison, "企业日报：在岗118人，返岗3人，隔离2人，异常1")
    assert chat.replies(units.workshop1) == [unit_texts.Report.CORRECTED.format(
        name="华鑫针织", date="2月21日", on_duty=118, returned=3, isolated=2, anomalies=1)
        + unit_texts.Report.ANOMALY_TOLD.format(anomalies=1)]
    assert chat.replies(units.community_group) == [
        unit_texts.Report.ANOMALY_TO_COMMUNITY.format(name="华鑫针织", date="2月21日",
                                                      anomalies=1, on_duty=118, isolated=2)]
    async with bot.session() as s:
        row = (await s.execute(select(EnterpriseReport))).scalar_one()
    assert (row.on_duty, row.anomalies, str(row.day)) == (118, 1, "2020-02-21")


@pytest.mark.parametrize(("line", "problem"), [
    ("企业日报 在岗120 返岗3 隔离2", "缺少异常人数"),
    ("企业日报 在岗一百二十 返岗3 隔离2 异常0", "在岗人数应为"),
    ("企业日报 在岗120 在岗121 返岗3 隔离2 异常0", "在岗写了两次"),
])
async def test_bad_enterprise_reports_get_a_hint_and_store_nothing(
        bot, chat: Chat, units: Units, line: str, problem: str):
    await chat.say(units.enterprise_group, units.liaison, line)
    [reply] = chat.replies(units.enterprise_group)
    assert problem in reply and USAGE["EnterpriseReport"] in reply, reply
    assert await count(bot, EnterpriseReport) == 0


async def test_only_the_liaison_reports_and_only_for_an_enterprise(bot, chat: Chat, units: Units):
    await chat.say(units.enterprise_group, units.worker, "企业日报 在岗120 返岗3 隔离2 异常0")
    await chat.say(units.project_group, units.lead, "企业日报 在岗120 返岗3 隔离2 异常0")
    await chat.say(units.team_group, units.team_commander, "企业日报 在岗120 返岗3 隔离2 异常0")
    assert await count(bot, EnterpriseReport) == 0
    for room in (units.enterprise_group, units.project_group, units.team_group):
        last = [m.text for m in chat.transport.sent if m.room_id == room][-1]
        assert "没有权限" in last, last


# --- 工作卡 -----------------------------------------------------------------------------------


async def test_work_card_problems_become_tickets_to_community_and_subdistrict(
        bot, chat: Chat, units: Units):
    await chat.say(units.project_group, units.lead,
                   "工作卡 在场85 新进5 异常1 问题：口罩缺200个，联系13905797777")
    assert chat.replies(units.project_group) == [unit_texts.Card.OK.format(
        name="长春路改造工程", date="2月21日", on_site=85, arrivals=5, anomalies=1)
        + unit_texts.Card.ANOMALY_TOLD.format(anomalies=1)
        + unit_texts.Card.TICKETS.format(ids="1、#2")]
    problem = unit_texts.Card.TICKET_TEXT.format(problems="口罩缺200个,联系139****7777")
    community = chat.replies(units.community_group)
    assert texts.Ticket.UP.format(id=1, group="长春路改造工程专班", name="周*",
                                  text=problem) in community
    assert any(t.startswith("【工程异常】长春路改造工程") for t in community)
    assert chat.replies(units.subdistrict_group) == [texts.Ticket.UP.format(
        id=2, group="长春路改造工程专班", name="周*", text=problem)]
    async with bot.session() as s:
        targets = [n for (n,) in await s.execute(
            select(Node.name).join(Ticket, Ticket.target_node_id == Node.id).order_by(Ticket.id))]
        card = (await s.execute(select(WorkCard))).scalar_one()
    assert targets == ["长春社区", "福田街道"]
    assert card.problems == "口罩缺200个,联系139****7777"
    no_numbers(chat)
    # The subdistrict answers its ticket; the answer comes back to the task force group.
    await chat.say(units.subdistrict_group, units.commander, "答复 2 明天送300个口罩")
    [down] = chat.replies(units.project_group)
    assert "明天送300个口罩" in down


async def test_only_the_lead_posts_the_work_card(bot, chat: Chat, units: Units):
    await chat.say(units.project_group, units.worker, "工作卡 在场85 新进5 异常0")
    await chat.say(units.enterprise_group, units.liaison, "工作卡 在场85 新进5 异常0")
    assert await count(bot, WorkCard) == 0
    for room in (units.project_group, units.enterprise_group):
        last = [m.text for m in chat.transport.sent if m.room_id == room][-1]
        assert "专班负责人" in last and "没有权限" in last, last


async def test_help_in_the_unit_groups_lists_their_commands(bot, chat: Chat, units: Units):
    await chat.say(units.enterprise_group, units.liaison, "帮助")
    [help_text] = chat.replies(units.enterprise_group)
    assert "企业日报" in help_text and "员工登记" in help_text and "工作卡" not in help_text
    await chat.say(units.project_group, units.lead, "帮助")
    [help_text] = chat.replies(units.project_group)
    assert "工作卡" in help_text and "企业日报" not in help_text
    await chat.say(units.team_group, units.team_commander, "帮助")
    [help_text] = chat.replies(units.team_group)
    assert "企业日报" not in help_text and "工作卡" not in help_text


async def test_kinds_of_the_units(bot, units: Units):
    async with bot.session() as s:
        rows = dict((await s.execute(select(Node.name, Node.kind))).tuples().all())
    assert rows["华鑫针织"] == NodeKind.ENTERPRISE and rows["长春路改造工程"] == NodeKind.PROJECT


async def test_the_liaison_reopening_is_told_to_the_community(bot, chat: Chat, units: Units):
    await chat.say(units.enterprise_group, units.liaison, "企业登记 未复工")
    assert chat.replies(units.community_group) == [
        unit_texts.Enterprise.STATUS_TO_COMMUNITY.format(name="华鑫针织", status="未复工")]
    await chat.say(units.enterprise_group, units.liaison, "企业登记 员工100人")
    assert chat.replies(units.community_group) == []  # no change of status, nothing to tell
    async with bot.session() as s:
        file = (await s.execute(select(Enterprise))).scalar_one()
    assert (file.status, file.reopened_on, file.headcount) == ("closed", None, 100)


async def test_a_card_made_in_a_workshop_group_belongs_to_that_workshop(
        bot, chat: Chat, units: Units):
    await chat.say(units.workshop2, units.liaison, "员工登记 李娜 13905790002 来自江西上饶 隔离")
    assert chat.replies(units.workshop2) == [unit_texts.Worker.REGISTERED.format(
        name="李*", origin="江西上饶", returned="2月21日", group="，华鑫二车间",
        health=unit_texts.Worker.ISOLATED)]
    # Registered again from the enterprise group with another workshop: the one card moves.
    await chat.say(units.enterprise_group, units.liaison,
                   "员工登记 李娜 13905790002 来自江西上饶 华鑫一车间")
    [reply] = chat.replies(units.enterprise_group)
    assert reply.startswith("已更新 李* 的员工卡") and "华鑫一车间" in reply
    async with bot.session() as s:
        card = (await s.execute(select(WorkerCard))).scalar_one()
        w1 = (await s.execute(select(Node).where(Node.name == "华鑫一车间"))).scalar_one()
    # The move keeps the isolation and the return date; 解除隔离 ends it.
    assert card.workgroup_node_id == w1.id and card.health == "isolated"
    assert str(card.returned_on) == "2020-02-21"
    await chat.say(units.workshop1, units.liaison, "员工登记 李娜 13905790002 来自江西上饶 解除隔离")
    [reply] = chat.replies(units.workshop1)
    assert reply == unit_texts.Worker.UPDATED.format(
        name="李*", origin="江西上饶", returned="2月21日", group="，华鑫一车间", health="")
    async with bot.session() as s:
        card = (await s.execute(select(WorkerCard))).scalar_one()
    assert (card.health, card.watch_until) == ("normal", None)


async def test_a_notice_to_the_enterprise_groups_only(bot, chat: Chat, units: Units):
    await chat.say(units.community_group, units.community_commander,
                   "通知 企业群 请各企业今日完成车间消毒")
    assert chat.replies(units.enterprise_group) and not chat.replies(units.workshop1)
    assert not chat.replies(units.project_group) and not chat.replies(units.team_group)
    # The liaison acknowledges for the enterprise (the group's responsible person).
    await chat.say(units.enterprise_group, units.liaison, "收到")
    await chat.say(units.community_group, units.community_commander, "进度")
    [progress] = chat.replies(units.community_group)
    assert "确认 1/1" in progress, progress


async def test_a_new_enterprise_is_bound_by_its_codes_and_its_liaison_reports(
        bot, chat: Chat, units: Units):
    await chat.say(units.community_group, units.community_commander,
                   "企业登记 新华五金 联络员:钱进 13957900777 员工30人 已复工")
    [reply] = chat.replies(units.community_group)
    group_code = re.search(r"绑定群 ([A-Z0-9]+)", reply)
    person_code = re.search(r"(?<!群 )绑定 ([A-Z0-9]+)", reply)
    assert group_code and person_code, reply
    await chat.say("xinhua@chatroom", "sim-qianjin", f"绑定群 {group_code.group(1)}")
    await chat.say("xinhua@chatroom", "sim-qianjin", f"绑定 {person_code.group(1)}",
                   name="钱进")
    [bound] = chat.replies("xinhua@chatroom")
    assert "企业联络员" in bound, bound
    await chat.say("xinhua@chatroom", "sim-qianjin", "企业日报 在岗30 返岗0 隔离0 异常0")
    assert chat.replies("xinhua@chatroom") == [unit_texts.Report.OK.format(
        name="新华五金", date="2月21日", on_duty=30, returned=0, isolated=0, anomalies=0)]
    # The codes are single-use: a second group cannot take the enterprise's code.
    await chat.say("other@chatroom", "sim-other", f"绑定群 {group_code.group(1)}")
    assert await count(bot, EnterpriseReport) == 1
    async with bot.session() as s:
        rooms = (await s.execute(select(Node.name).join(
            Group, Group.node_id == Node.id).where(Group.room_id == "other@chatroom"))).all()
    assert rooms == []


# --- retention and campaign end cover the workers ------------------------------------------


async def test_workers_health_records_are_purged_and_ended_with_the_campaign(
        bot, chat: Chat, units: Units, transport: MemoryTransport):
    from bot.services import retention

    await say_mentioning(chat, transport, units.enterprise_group, units.liaison,
                         f"员工登记 @张伟 张伟 13905790001 来自安徽阜阳 2月18日返岗 华鑫一车间 "
                         f"身份证{ID_NUMBER} 居家观察", mentions=(units.worker,))
    await chat.say(units.workshop1, units.worker, "体温 36.5")
    await chat.say(units.workshop1, units.worker, "体温 36.7")
    assert await count(bot, WorkerReading) == 2
    settings = bot.settings.retention

    async with bot.session() as s:
        watch_until = (await s.execute(select(WorkerCard.watch_until))).scalar_one()
    assert watch_until is not None and watch_until > bot.now()

    async def purge(days: int) -> None:
        async with bot.session() as s, s.begin():
            await retention.purge_due(s, now=watch_until + timedelta(days=days),
                                      settings=settings)

    # Under home watch and then the retention period after it: kept.
    await purge(settings.stay_days - 1)
    assert await count(bot, WorkerReading) == 2
    assert await count(bot, WorkerCard, WorkerCard.origin == "安徽阜阳") == 1
    # Past it: the readings go, the card keeps only where the worker belongs.
    await purge(settings.stay_days + 1)
    assert await count(bot, WorkerReading) == 0
    async with bot.session() as s:
        card = (await s.execute(select(WorkerCard))).scalar_one()
        assert (card.origin, card.returned_on, card.watch_until) == (None, None, None)
        assert card.workgroup_node_id is not None
        card_id, person_id = card.id, card.person_id
    # The campaign's end: the worker is known no more (name, numbers, contact), the card
    # stays for the head counts.
    await chat.say(units.workshop1, units.worker, "体温 36.6")
    async with bot.session() as s, s.begin():
        await retention.end_campaign(s, now=bot.now())
    assert await count(bot, WorkerReading) == 0
    async with bot.session() as s:
        person = await s.get(Person, person_id)
        assert person is not None and person.name != "张伟"
        assert (person.mobile_bidx, person.mobile_enc, person.id_number_bidx) == (
            None, None, None)
        assert (await s.get(WorkerCard, card_id)) is not None


async def test_one_enterprise_registered_twice_at_once_is_made_once(
        bot, units: Units, transport: MemoryTransport, monkeypatch):
    # Two of the community's people at once (two groups, two processes): found by name, made
    # when none is; the second waits for the first's lock and finds what it made.
    from bot.services import chain as chain_service
    from tests.test_side_by_side import side_by_side

    text = "企业登记 新华五金 地址：长春路8号；员工30人 车间：装配车间"
    await side_by_side(
        bot, monkeypatch, chain_service, ("create_node",),
        transport.message(units.community_group, units.community_commander, text),
        transport.message(units.community_group, units.secretary, text))
    assert await count(bot, Node, Node.name == "新华五金") == 1
    assert await count(bot, Node, Node.name == "装配车间") == 1
