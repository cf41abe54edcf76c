"""Input hygiene (issue 8): NUL, other controls, lone surrogates and bidi/zero-width controls
are dropped before anything parses or stores a text or a display name, alike on SQLite and
PostgreSQL (which rejects NUL in text); the sender never gets 抱歉 for them."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.grammar import normalise
from bot.grammar.normalise import scrub
from bot.services import chain as chain_service
from models import InviteKind, Notice, Person, Role, TenantStay, Ticket
from tests.conftest import Chat, DemoChain

UNSAFE = ("\x00\x01\x07\x1b\x7f\x85\ud800\udfff\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
          "\u2066\u2067\u2068\u2069\ufeff\u061c")


def test_scrub_drops_every_unsafe_character():
    assert scrub("开\x00会\u202e请\ud800到\u2066") == "开会请到"
    assert scrub("第一行\n第二行\t完") == "第一行\n第二行\t完"


@given(st.text())
def test_normalised_text_holds_no_unsafe_character(text: str):
    out = normalise(text)
    assert not any(c in UNSAFE for c in out)
    out.encode("utf-8")  # no lone surrogate left


async def test_a_notice_with_nul_and_bidi_goes_out_clean(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 开会\x00请\u202e到\ud800齐")
    [reply] = chat.replies(chain.subdistrict_group)
    assert "抱歉" not in reply and "已发出" in reply
    assert chat.replies(chain.community_group) == ["【通知#1】开会请到齐"]
    async with bot.session() as s:
        assert (await s.execute(select(Notice.text))).scalar_one() == "开会请到齐"


async def test_feedback_with_a_lone_surrogate_is_stored_clean(bot, chat: Chat,
                                                              chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "反馈 楼道\ud83d灯坏了\x00")
    [reply] = chat.replies(chain.tenant_group)
    assert "抱歉" not in reply
    async with bot.session() as s:
        assert (await s.execute(select(Ticket.text))).scalar_one() == "楼道灯坏了"


async def test_a_bidi_control_inside_a_number_does_not_change_the_command(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王小明 1380013\u202e8999 来自湖南长沙")
    [reply] = chat.replies(chain.tenant_group)
    assert reply.startswith("已登记 王** 返回")
    async with bot.session() as s:
        assert (await s.execute(select(TenantStay.id))).scalars().all()


async def test_a_display_name_with_controls_is_stored_clean(bot, chat: Chat, chain: DemoChain):
    async with bot.session() as s, s.begin():
        node = await chain_service.find_node(s, ref="应天喜出租房")
        code = (await chain_service.issue_invite(
            s, node=node, kind=InviteKind.PERSON, role=Role.LANDLORD, now=bot.now(),
            ttl=timedelta(days=7))).code
    await chat.say(chain.ying_group, "sim-new", f"绑定 {code}", name="应\x00天\u202e喜\ud800")
    assert chat.replies(chain.ying_group) == [
        "绑定成功：应天喜，应天喜出租房 房东。发送“帮助”查看可用命令。"]
    async with bot.session() as s:
        assert "应天喜" in (await s.execute(select(Person.name))).scalars().all()
