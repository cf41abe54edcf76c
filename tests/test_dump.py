"""The database seen by someone holding a copy of it: after the chat scenarios (returns by
tenants and landlords, ID numbers, a link confirmed, readings, reports, tickets and answers,
notices, points and appeals, a chain import) a dump of SQLite (`iterdump`) and PostgreSQL
(`pg_dump`) contains no mobile and no ID number in plain text — checked, not assumed, for the
inbound and outbox rows too. (The scripted demo's dump: tests/test_cli_keys.py.)"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from bot import chainfile, pii
from bot.app import BotApp
from models import OutboxMessage, Person
from tests.conftest import Chat, DemoChain, count
from tests.dump import FULL_ID, FULL_MOBILE, dump_async

DEMO_CHAIN = Path(__file__).resolve().parent.parent / "bot" / "demo" / "chain.toml"


def _id(first17: str) -> str:
    return first17 + pii.id_check_digit(first17)


ID_PAN = _id("36230119850312123")
ID_WANG = _id("43010219920506456")
ID_OTHER = _id("33078219900101123")


def scenario(chain: DemoChain) -> list[tuple[str, str, str]]:
    """(room, speaker, text): every feature that takes a number, in the ways people type."""
    t, ll, tg = chain.tenant_group, chain.landlord, chain.landlords_group
    return [
        (t, chain.tenant, f"我回来了 江西上饶 13905791234 身份证{ID_PAN} 体温36.6"),
        (t, ll, f"租客返回 王明 138 0013 8000 来自湖南长沙 {ID_WANG} 体温37.9"),
        (t, ll, "租客返回 李娜 13611112222 来自安徽阜阳"),
        (t, "sim-new-lina", f"我已返回 安徽阜阳 13611112222 身份证{ID_OTHER}"),
        (t, ll, "确认 1"),
        (t, chain.tenant, "体温 37.8"),
        (t, ll, "体温 李娜 36.5"),
        (t, ll, "房东上报 违规 王明13800138000未居家"),
        (t, ll, "房东上报 代办 帮王明１３８００１３８０００买菜"),
        (t, chain.tenant2, f"反馈 身份证{ID_OTHER}要复印吗"),
        (t, ll, "反馈 302租客 +86 138-0013-8000 发热已送医"),
        (tg, chain.team_member, "答复 1 电工改到后天 联系13611112223"),
        (chain.subdistrict_group, chain.commander, "通知 口罩领取请联系13611112224"),
        (t, ll, "收到"),
        (chain.team_group, chain.team_commander, "扣分 董宝明 1 楼道堆放杂物 举报电话13700002222"),
        (chain.community_group, chain.secretary, "核查 3 通过"),
        (t, ll, "申诉 3 证人电话13700001111可以作证"),
        (chain.community_group, chain.secretary, "核查 3 驳回 联系13700003333核实过"),
        (t, chain.tenant2, "我的电话是13912345678 大家好"),
        (chain.ying_group, "sim-stranger", "我回来了 湖北武汉 13988887777"),
    ]


def numbers_in(texts: list[str]) -> set[str]:
    """Every mobile and ID number in these texts, in its plain spelling."""
    found = set()
    for text in texts:
        plain = re.sub(r"[\s\-]|\+86", "", text).translate(
            str.maketrans("０１２３４５６７８９", "0123456789"))
        found |= set(FULL_MOBILE.findall(plain)) | set(FULL_ID.findall(plain))
    return found


async def test_no_number_in_plain_text_after_the_chat_scenarios(
        bot: BotApp, chat: Chat, chain: DemoChain):
    lines = scenario(chain)
    for room, speaker, text in lines:
        await chat.say(room, speaker, text)
    # A chain import with mobiles, the other way numbers come in.
    spec = chainfile.load(DEMO_CHAIN)
    async with bot.session() as s, s.begin():
        await chainfile.import_chain(s, spec.model_copy(update={"people": [
            *spec.people, chainfile.PersonSpec(key="extra", name="钱主任", mobile="13611119999",
                                               contacts=("sim-qian",))]}), now=bot.now())
    numbers = numbers_in([text for _, _, text in lines]) | {"13757912345", "13611119999"}
    assert {"13905791234", "13800138000", ID_PAN, ID_WANG, ID_OTHER} <= numbers
    assert len(numbers) >= 14

    dumped = await dump_async(bot.settings.database_url)
    leaked = sorted(n for n in numbers if n in dumped)
    assert leaked == [], [ln for ln in dumped.splitlines() if any(n in ln for n in leaked)][:5]
    assert FULL_MOBILE.findall(dumped) == [] and FULL_ID.findall(dumped) == []

    # Not vacuous: the scenarios were stored (sealed, indexed, masked), and went out masked.
    async with bot.session() as s:
        sealed = (await s.execute(select(Person).where(Person.mobile_enc.is_not(None)))
                  ).scalars().all()
        ids = [p for p in sealed if p.id_number_enc is not None]
    assert {p.mobile_mask for p in sealed} >= {"139****1234", "138****8000", "136****2222",
                                               "137****2345", "136****9999"}
    assert len(ids) >= 2 and "138****8000" in dumped and pii.mask_id(ID_WANG) in dumped
    sent = "\n".join(chat.all_texts())
    for step in ("已登记 潘先生", "已登记 王*", "已确认", "已记录 李*", "已记录租客违规", "已记录代办",
                 "已提交反馈#2", "已答复#1", "【通知#1】口罩", "已提交申诉#3"):
        assert step in sent, (step, sent)
    # The outbox rows holding those texts are in the dump, masked.
    assert await count(bot, OutboxMessage, OutboxMessage.text.contains("138****8000")) >= 1
    assert not FULL_MOBILE.search(sent) and not FULL_ID.search(sent)
