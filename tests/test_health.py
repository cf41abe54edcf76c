"""Chain health: the bot removed from a bound group, or a group renamed, is told to the parent
group's commander; and the accounts' state (GET /api/accounts, `tierbot status`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot import store, texts
from bot.api import create_api
from bot.app import BotApp, build_app, running
from bot.console import load_demo_chain
from bot.transports.base import RoomEvent
from models import BotAccount, Group, OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain, count

AUTH = {"Authorization": "Bearer test-token"}


def event(transport, room_id: str, kind: str, clock, **topics: str) -> RoomEvent:
    return RoomEvent(transport=transport.name, room_id=room_id, kind=kind, at=clock.now(),
                     **topics)


async def inject(bot: BotApp, transport, ev: RoomEvent) -> list:
    mark = len(transport.sent)
    await transport.room_event(ev)
    await bot.idle()
    return transport.sent[mark:]


async def _title(bot: BotApp, room_id: str) -> str:
    async with bot.session() as s:
        return (await s.execute(select(Group.title).where(Group.room_id == room_id))
                ).scalar_one()


# --- room events -------------------------------------------------------------------------------


async def test_the_bot_removed_from_a_tenant_group(bot, chain: DemoChain, clock, transport):
    sent = await inject(bot, transport, event(transport, chain.tenant_group, "left", clock))
    assert [(s.room_id, s.text, s.mentions) for s in sent] == [(
        chain.landlords_group,
        texts.Health.LEFT.format(group="董宝明租客群", node="董宝明出租房"),
        (chain.team_member,))]


async def test_the_bot_removed_from_a_community_group(bot, chain: DemoChain, clock, transport):
    sent = await inject(bot, transport, event(transport, chain.community_group, "left", clock))
    assert [(s.room_id, s.text, s.mentions) for s in sent] == [(
        chain.subdistrict_group,
        texts.Health.LEFT.format(group="长春社区指挥群", node="长春社区"),
        (chain.commander,))]
    sent = await inject(bot, transport, event(transport, chain.team_group, "left", clock))
    assert [(s.room_id, s.mentions) for s in sent] == [
        (chain.community_group, (chain.community_commander,))]


async def test_a_renamed_group(bot, chain: DemoChain, clock, transport):
    sent = await inject(bot, transport, event(
        transport, chain.tenant_group, "renamed", clock, old_topic="董宝明租客群",
        new_topic="长春四区12幢租客群"))
    assert [(s.room_id, s.text, s.mentions) for s in sent] == [(
        chain.landlords_group,
        texts.Health.RENAMED.format(old="董宝明租客群", new="长春四区12幢租客群",
                                    node="董宝明出租房"),
        (chain.team_member,))]
    assert await _title(bot, chain.tenant_group) == "长春四区12幢租客群"
    # Renamed again, without the old name from the platform: the stored title is the old one.
    sent = await inject(bot, transport, event(
        transport, chain.tenant_group, "renamed", clock, new_topic="12幢租客群"))
    assert [s.text for s in sent] == [texts.Health.RENAMED.format(
        old="长春四区12幢租客群", new="12幢租客群", node="董宝明出租房")]
    assert await _title(bot, chain.tenant_group) == "12幢租客群"


async def test_the_new_title_is_used_afterwards(bot, chat: Chat, chain: DemoChain, clock,
                                                transport):
    await inject(bot, transport, event(transport, chain.ying_group, "renamed", clock,
                                       old_topic="应天喜租客群", new_topic="应家租客群"))
    await chat.say(chain.ying_group, chain.ying_tenant, "反馈 楼下垃圾没人清")
    assert chat.replies(chain.landlords_group)[0].startswith("【反馈#1】应家租客群 ")


async def test_the_top_group_renamed_updates_the_title_and_tells_nobody(bot, chain: DemoChain,
                                                                        clock, transport):
    sent = await inject(bot, transport, event(
        transport, chain.subdistrict_group, "renamed", clock, old_topic="福田街道指挥群",
        new_topic="福田街道疫情防控指挥群"))
    assert sent == []
    assert await _title(bot, chain.subdistrict_group) == "福田街道疫情防控指挥群"
    sent = await inject(bot, transport, event(transport, chain.subdistrict_group, "left", clock))
    assert sent == []


async def test_unbound_rooms_and_other_transports_are_ignored(bot, chain: DemoChain, clock,
                                                              transport):
    assert await inject(bot, transport, event(transport, "nowhere@chatroom", "left", clock)) == []
    assert await inject(bot, transport, event(
        transport, "nowhere@chatroom", "renamed", clock, new_topic="新群")) == []
    other = RoomEvent(transport="wechaty", room_id=chain.tenant_group, kind="left",
                      at=clock.now())
    assert await inject(bot, transport, other) == []
    unknown = event(transport, chain.tenant_group, "joined", clock)
    assert await inject(bot, transport, unknown) == []
    assert await count(bot, OutboxMessage) == 0
    assert await _title(bot, chain.tenant_group) == "董宝明租客群"


async def test_notes_are_durable_outbox_rows(bot, chain: DemoChain, clock, transport):
    await inject(bot, transport, event(transport, chain.tenant_group, "left", clock))
    async with bot.session() as s:
        rows = (await s.execute(select(OutboxMessage.source, OutboxMessage.status))).all()
    assert rows == [("health", OutboxStatus.SENT)]


# --- accounts: GET /api/accounts ---------------------------------------------------------------


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[httpx.AsyncClient]:
    asgi = httpx.ASGITransport(app=create_api(bot))
    async with httpx.AsyncClient(transport=asgi, base_url="http://t") as c:
        yield c


async def test_accounts_need_the_token(bot, client: httpx.AsyncClient):
    assert (await client.get("/api/accounts")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.get("/api/accounts", headers=wrong)).status_code == 401


async def test_the_default_account(bot, chat: Chat, chain: DemoChain, client: httpx.AsyncClient):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 开会")
    response = await client.get("/api/accounts", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"items": [
        {"name": "", "connected": True, "logged_in_as": "sim-bot", "last_error": "",
         "paused_until": None, "pending": 0, "health": "unknown", "problems": [],
         "since": None}], "next_cursor": None}


async def test_a_paused_account_with_rows_waiting(settings, transport, clock):
    transport._now = clock.now
    until = clock.now() + timedelta(hours=2)
    app = build_app(settings, transport=transport, clock=clock)
    async with running(app):
        await load_demo_chain(app)
    # The pause is durable: written as the sender writes it, seen by the next start.
    engine = store.create_engine(settings.database_url)
    sessions = store.sessionmaker(engine)
    async with sessions() as s, s.begin():
        s.add(BotAccount(name="", paused_until=until, last_rate_limited_at=clock.now(),
                         last_error="发送消息过于频繁"))
    await engine.dispose()
    app = build_app(settings, transport=transport, clock=clock)
    async with running(app):
        chat = Chat(app, transport)
        await chat.say("futian@chatroom", "sim-zhangjianguo", "通知 开会")
        assert [s for s in transport.sent if s.text.startswith("【通知#1】")] == []
        asgi = httpx.ASGITransport(app=create_api(app))
        async with httpx.AsyncClient(transport=asgi, base_url="http://t") as client:
            [row] = (await client.get("/api/accounts", headers=AUTH)).json()["items"]
            assert row["name"] == "" and row["connected"] is True
            # The six deliveries, and the reply to 通知: replies wait out a pause too.
            assert row["pending"] == 7
            assert row["last_error"] == "发送消息过于频繁"
            assert datetime.fromisoformat(row["paused_until"]) == until
            # The pause over: sent, nothing waiting, no longer paused.
            clock.advance(timedelta(hours=2))
            await app.idle()
            assert len([s for s in transport.sent if s.text.startswith("【通知#1】")
                        and "已发出" not in s.text]) == 6
            [row] = (await client.get("/api/accounts", headers=AUTH)).json()["items"]
            assert row["pending"] == 0 and row["paused_until"] is None


async def test_a_rate_limit_shows_in_the_accounts(bot, chat: Chat, chain: DemoChain, clock,
                                                  client: httpx.AsyncClient):
    from bot.transports.base import TransportError

    original = chat.transport.send
    limited = [TransportError("操作过于频繁", rate_limited=True)]

    async def limit_once(room_id, text, *, mentions=(), account=""):
        if text.startswith("【通知#1】") and limited:
            raise limited.pop()
        return await original(room_id, text, mentions=mentions, account=account)

    chat.transport.send = limit_once
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    [row] = (await client.get("/api/accounts", headers=AUTH)).json()["items"]
    # The two deliveries, and the note telling the commander (same account: it waits too).
    assert row["pending"] == 3 and row["last_error"] == "操作过于频繁"
    assert datetime.fromisoformat(row["paused_until"]) == clock.now() + timedelta(minutes=30)
    chat.transport.send = original


# --- tierbot status, database only -------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_without_a_running_bot(db_url, monkeypatch, capsys):
    from bot.cli import main

    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

    async def pause() -> None:
        engine = store.create_engine(db_url)
        async with store.sessionmaker(engine)() as s, s.begin():
            s.add(BotAccount(name="", paused_until=until, last_error="发送消息过于频繁"))
        await engine.dispose()

    asyncio.run(pause())
    monkeypatch.delenv("TIERBOT_CONFIG", raising=False)
    monkeypatch.setenv("TIERBOT_API__PORT", str(_closed_port()))
    monkeypatch.setenv("TIERBOT_API__TOKEN", "test-token")
    assert main(["--database-url", db_url, "status"]) == 0
    out = capsys.readouterr().out
    assert "database only" in out
    assert (f"  (default): not connected, paused until {until.isoformat()}, 0 waiting, "
            "last error: 发送消息过于频繁") in out
