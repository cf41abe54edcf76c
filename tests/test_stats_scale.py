"""统计 at city scale: a subtree of more nodes than a statement may bind parameters (asyncpg
takes 32,767; the reads filter with a subquery of ids, not with a list of them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert, select

from bot.api.app import create_api
from bot.app import BotApp
from models import Node, NodeKind, Shop
from tests.conftest import START, Chat, DemoChain
from tests.test_stats import AUTH, _busy_day, _independent, _parse_reply

TEAMS = 16_400  # tier 3, under the community
ROWS = 16_400  # tier 5, under the team's landlords group: 32,800 new nodes in all
SHOPS = 5  # on the last rows: the deepest level counts


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_api(bot)),
                                 base_url="http://t") as c:
        yield c


async def _grow(bot: BotApp) -> None:
    """Core bulk inserts (one statement each): the community's subtree past 32,767 nodes."""
    at = START - timedelta(days=1)
    async with bot.session() as s:
        community = (await s.execute(select(Node).where(Node.name == "长春社区"))).scalar_one()
        landlords = (await s.execute(
            select(Node).where(Node.name == "第一小组房东群"))).scalar_one()
        await s.execute(insert(Node.__table__), [
            {"tier": 3, "kind": NodeKind.TEAM, "name": f"扩展小组{i}",
             "parent_id": community.id, "created_at": at} for i in range(TEAMS)])
        await s.execute(insert(Node.__table__), [
            {"tier": 5, "kind": NodeKind.SHOP_ROW, "name": f"扩展铺{i}",
             "parent_id": landlords.id, "created_at": at} for i in range(ROWS)])
        rows = list((await s.execute(select(Node.id).where(Node.name.like("扩展铺%"))
                                     .order_by(Node.id.desc()).limit(SHOPS))).scalars())
        await s.execute(insert(Shop.__table__), [
            {"node_id": row, "name": f"{i}号", "is_open": False, "created_at": at}
            for i, row in enumerate(rows)])
        await s.commit()


async def test_stats_of_a_city_sized_subtree(bot, chat: Chat, chain: DemoChain, clock, client):
    await _busy_day(chat, chain, clock)
    await chat.say(chain.subdistrict_group, chain.commander, "统计")
    [before] = chat.replies(chain.subdistrict_group)
    await _grow(bot)

    await chat.say(chain.subdistrict_group, chain.commander, "统计")
    [reply] = chat.replies(chain.subdistrict_group)
    assert reply.startswith("【统计 2月21日】福田街道"), reply
    got, old = _parse_reply(reply), _parse_reply(before)
    expected = await _independent(bot, "福田街道")
    assert {k: got[k] for k in expected} == expected, reply
    # The new nodes counted, on both levels; nothing else moved.
    assert got["作战小组"] == old["作战小组"] + TEAMS
    assert got["商铺总数"] == old["商铺总数"] + SHOPS
    assert {k: v for k, v in got.items() if k not in ("作战小组", "商铺总数")} == \
        {k: v for k, v in old.items() if k not in ("作战小组", "商铺总数")}

    # A named node found below the root, and the API, through the same reads.
    await chat.say(chain.subdistrict_group, chain.commander, "统计 长春社区")
    [named] = chat.replies(chain.subdistrict_group)
    assert _parse_reply(named)["作战小组"] == old["作战小组"] + TEAMS
    async with bot.session() as s:
        root = (await s.execute(select(Node).where(Node.name == "福田街道"))).scalar_one()
    response = await client.get(f"/api/stats?node={root.id}", headers=AUTH)
    assert response.status_code == 200, response.text
    flat = {k: v for sec in response.json()["sections"] for k, v in sec["items"].items()}
    assert {k: flat[k] for k in expected} == expected
