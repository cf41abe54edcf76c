"""End to end through the real gRPC protocol: the bot on the Wechaty transport, against the
Node test gateway (a Wechaty puppet service backed by the mock puppet)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import pytest
from sqlalchemy import select

from bot import chainfile
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import AccountSettings, Settings, WechatySettings
from bot.services import chain as chain_service
from bot.transports.base import IncomingMessage, RoomEvent, TransportError
from bot.transports.wechaty import WechatyTransport
from models import (
    Contact,
    InboundMessage,
    InviteKind,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Role,
    TenantStay,
)
from tests.conftest import count
from tests.transports.conftest import EVENT_TIMEOUT, GatewayDriver, world

T = TypeVar("T")
FULL_MOBILE = re.compile(r"1[3-9]\d{9}")

CHAIN_TOML = """
transport = "wechaty"

[[people]]
key = "zhang"
name = "张建国"
contacts = ["wx-zhang"]

[[people]]
key = "li"
name = "李卫东"
contacts = ["wx-li"]

[[people]]
key = "wu"
name = "吴海峰"
contacts = ["wx-wu"]

[[people]]
key = "liu"
name = "刘芳"
contacts = ["wx-liu"]

[[people]]
key = "dong"
name = "董宝明"
contacts = ["wx-dong"]

[[people]]
key = "pan"
name = "潘先生"
contacts = ["wx-pan"]

[[nodes]]
key = "futian"
name = "福田街道"
kind = "subdistrict"
groups = [{ room = "futian@chatroom", title = "福田街道指挥群" }]
roles = { commander = ["zhang"] }

[[nodes]]
key = "changchun"
name = "长春社区"
kind = "community"
parent = "futian"
groups = [{ room = "changchun@chatroom", title = "长春社区指挥群" }]
roles = { commander = ["li"] }

[[nodes]]
key = "team1"
name = "长春第一作战小组"
kind = "team"
parent = "changchun"
groups = [{ room = "team1@chatroom", title = "长春第一作战小组群" }]
roles = { commander = ["wu"], member = ["liu"] }

[[nodes]]
key = "team1-landlords"
name = "第一小组房东群"
kind = "team_landlords"
parent = "team1"
groups = [{ room = "team1-landlords@chatroom", title = "第一小组房东群" }]
roles = { member = ["liu"] }

[[nodes]]
key = "dong"
name = "董宝明出租房"
kind = "landlord_tenants"
parent = "team1-landlords"
groups = [{ room = "dong@chatroom", title = "董宝明租客群" }]
roles = { landlord = ["dong"], tenant = ["pan"] }

[[nodes]]
key = "ying"
name = "应天喜出租房"
kind = "landlord_tenants"
parent = "team1-landlords"
groups = [{ room = "ying@chatroom", title = "应天喜租客群" }]
"""


class Recorder(Generic[T]):
    """What a transport callback received, with a way to wait for it."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Event()

    async def add(self, item: T) -> None:
        """The transport callback."""
        self.items.append(item)
        self._changed.set()

    async def wait(self, pred: Callable[[T], bool], *, count: int = 1,
                   timeout: float = EVENT_TIMEOUT) -> list[T]:
        """At least `count` items matching pred (all of them)."""
        async with asyncio.timeout(timeout):
            while True:
                hits = [i for i in self.items if pred(i)]
                if len(hits) >= count:
                    return hits
                self._changed.clear()
                await self._changed.wait()


def wechaty_settings(tmp_path: Path, *accounts: tuple[str, GatewayDriver]) -> WechatySettings:
    """Accounts on the given gateways; quick reconnects so a restart test stays short."""
    return WechatySettings(
        accounts=[AccountSettings(name=n, endpoint=g.endpoint, token=g.token)
                  for n, g in accounts],
        cache_dir=str(tmp_path / "wechaty"), reconnect_min_seconds=0.1,
        reconnect_max_seconds=1.0)


# --------------------------------------------------------------------------------------------
# the bot app on the Wechaty transport (SQLite and PostgreSQL)
# --------------------------------------------------------------------------------------------


@dataclass
class Harness:
    """The running bot, its gateway and every message its transport delivered."""

    app: BotApp
    gw: GatewayDriver
    delivered: Recorder[IncomingMessage]

    @property
    def transport(self) -> WechatyTransport:
        """The app's transport."""
        return cast(WechatyTransport, self.app.transport)

    async def ask(self, room: str, contact: str, text: str, *, expect: str = "") -> dict[str, Any]:
        """Say something and wait for the bot's next message in that room."""
        mark = self.gw.mark()
        await self.gw.say(room, contact, text)
        return await self.gw.bot_message(room, since=mark, startswith=expect)


@pytest.fixture
async def harness(settings: Settings, gateway: GatewayDriver, tmp_path: Path,
                  clock: FakeClock) -> AsyncIterator[Harness]:
    """The bot built by build_app with transport = wechaty, the test chain loaded."""
    # The suite's settings (test database, pacing off...), on the Wechaty transport.
    settings = settings.model_copy(update={
        "transport": "wechaty", "wechaty": wechaty_settings(tmp_path, ("main", gateway))})
    app = build_app(settings, clock=clock)
    assert isinstance(app.transport, WechatyTransport)
    delivered: Recorder[IncomingMessage] = Recorder()
    submit = app.pipeline.submit

    async def spy(message: IncomingMessage) -> None:
        await delivered.add(message)
        await submit(message)

    app.pipeline.submit = spy  # type: ignore[method-assign]
    chain_file = tmp_path / "chain.toml"
    chain_file.write_text(CHAIN_TOML, encoding="utf-8")
    async with running(app):
        async with app.session() as s, s.begin():
            await chainfile.import_chain(s, chainfile.load(chain_file), now=app.now())
        await cast(WechatyTransport, app.transport).wait_connected(timeout=EVENT_TIMEOUT)
        await gateway.cmd("wait_client")
        yield Harness(app, gateway, delivered)


async def invite(app: BotApp, node_name: str, role: Role | None) -> str:
    """An invite code for a node (a person's role, or a group when role is None)."""
    async with app.session() as s, s.begin():
        node = await chain_service.find_node(s, ref=node_name)
        assert node is not None
        code = await chain_service.issue_invite(
            s, node=node, kind=InviteKind.PERSON if role else InviteKind.GROUP, role=role,
            now=app.now(), ttl=timedelta(days=7))
        return code.code


async def test_landlord_binds_with_an_invite_code(harness: Harness):
    code = await invite(harness.app, "应天喜出租房", Role.LANDLORD)
    reply = await harness.ask("ying@chatroom", "wx-ying", f"绑定 {code}")
    assert reply["text"] == "绑定成功：应天喜，应天喜出租房 房东。发送“帮助”查看可用命令。"
    async with harness.app.session() as s:
        held = (await s.execute(
            select(Membership.role).join(Contact, Contact.person_id == Membership.person_id)
            .where(Contact.transport == "wechaty", Contact.contact_id == "wx-ying")
        )).scalars().all()
    assert held == [Role.LANDLORD]
    # The reply came back as the bot's own message: delivered, marked self, never a command.
    [echo] = await harness.delivered.wait(lambda m: m.message_id == reply["id"])
    assert echo.is_self and echo.account == "main" and echo.sender_id == "wx-bot"


async def test_tenant_return_is_registered_answered_masked_and_redelivery_has_one_effect(
        harness: Harness):
    gw = harness.gw
    mark = gw.mark()
    said = await gw.say("dong@chatroom", "wx-dong", "租客返回 王明 13800138000 来自湖南长沙")
    reply = await gw.bot_message("dong@chatroom", since=mark)
    assert reply["text"].startswith("已登记 王* 返回（来自湖南长沙")
    [first] = await harness.delivered.wait(lambda m: m.message_id == said)
    assert (first.account, first.sender_name, first.room_topic, first.is_self) == (
        "main", "董宝明", "董宝明租客群", False)

    again = gw.mark()
    await gw.cmd("redeliver", message_id=said)
    await harness.delivered.wait(lambda m: m.message_id == said, count=2)
    # Events are handled in order: once this later command is answered, so is the redelivery.
    await harness.ask("dong@chatroom", "wx-dong", "我的租客", expect="董宝明出租房")
    assert [m for m in gw.bot_messages("dong@chatroom", since=again)
            if m["text"].startswith("已登记")] == []
    assert await count(harness.app, TenantStay) == 1
    assert await count(harness.app, InboundMessage, InboundMessage.message_id == said) == 1
    texts = [m["text"] for m in gw.bot_messages()]
    assert not any(FULL_MOBILE.search(t) for t in texts), texts


async def test_fever_mentions_the_landlord_and_alerts_the_landlords_group(harness: Harness):
    await harness.ask("dong@chatroom", "wx-pan", "我回来了 江西上饶 13905791234",
                      expect="已登记")
    mark = harness.gw.mark()
    await harness.gw.say("dong@chatroom", "wx-pan", "体温 37.8")
    reply = await harness.gw.bot_message("dong@chatroom", since=mark)
    assert reply["mentions"] == ["wx-dong"]
    assert reply["text"] == ("@董宝明 潘先生 体温 37.8℃ 偏高（≥37.3℃），已通知房东和网格员，"
                             "请保持居家，等候联系。")
    # The alert goes through the outbox and the sender to the tier-4 group.
    alert = await harness.gw.bot_message("team1-landlords@chatroom", since=mark,
                                         startswith="【发热提醒】")
    assert alert["text"] == "【发热提醒】董宝明出租房 租客 潘先生 02月21日10:00 体温 37.8℃，请尽快上门跟进。"
    await harness.app.idle()
    assert await count(harness.app, OutboxMessage,
                       OutboxMessage.status != OutboxStatus.SENT) == 0
    assert not any(FULL_MOBILE.search(m["text"]) for m in harness.gw.bot_messages())


async def test_a_restarted_gateway_is_reconnected_and_the_next_message_handled(
        harness: Harness):
    transport = harness.transport
    await harness.gw.kill()
    state = await transport.wait_connected(connected=False, timeout=EVENT_TIMEOUT)
    assert state.last_error.startswith("disconnected:") and state.logged_in_as == ""
    # A send while disconnected fails retryably; the app and the transport keep running.
    with pytest.raises(TransportError) as failed:
        await transport.send("dong@chatroom", "在吗")
    assert failed.value.retryable and not failed.value.rate_limited

    await harness.gw.restart()
    state = await transport.wait_connected(timeout=EVENT_TIMEOUT)
    assert state.logged_in_as == "wx-bot"
    await harness.gw.cmd("wait_client")
    reply = await harness.ask("dong@chatroom", "wx-dong", "租客返回 王明 13800138000 来自湖南长沙")
    assert reply["text"].startswith("已登记 王* 返回")
    assert await count(harness.app, TenantStay) == 1


# --------------------------------------------------------------------------------------------
# the transport alone (no database)
# --------------------------------------------------------------------------------------------


@dataclass
class Client:
    """A started WechatyTransport and what it delivered."""

    transport: WechatyTransport
    inbox: Recorder[IncomingMessage]
    events: Recorder[RoomEvent]


@pytest.fixture
async def client(gateway: GatewayDriver, tmp_path: Path) -> AsyncIterator[Client]:
    """The transport on the gateway, started with both callbacks."""
    transport = WechatyTransport(wechaty_settings(tmp_path, ("main", gateway)))
    inbox: Recorder[IncomingMessage] = Recorder()
    events: Recorder[RoomEvent] = Recorder()
    await transport.start(inbox.add, events.add)
    try:
        await transport.wait_connected(timeout=EVENT_TIMEOUT)
        await gateway.cmd("wait_client")
        yield Client(transport, inbox, events)
    finally:
        await transport.stop()


async def test_room_events_reach_on_event(client: Client, gateway: GatewayDriver):
    await gateway.cmd("topic", room="team1@chatroom", topic="长春第一作战小组群(新)")
    [renamed] = await client.events.wait(lambda e: e.kind == "renamed")
    assert (renamed.room_id, renamed.old_topic, renamed.new_topic, renamed.account) == (
        "team1@chatroom", "长春第一作战小组群", "长春第一作战小组群(新)", "main")
    # Messages after the rename carry the new topic.
    said = await gateway.say("team1@chatroom", "wx-wu", "好的")
    [msg] = await client.inbox.wait(lambda m: m.message_id == said)
    assert msg.room_topic == "长春第一作战小组群(新)"

    await gateway.cmd("remove_member", room="dong@chatroom", contact="wx-pan")
    await gateway.cmd("remove_member", room="ying@chatroom", contact="wx-bot")
    [left] = await client.events.wait(lambda e: e.kind == "left")
    # Someone else leaving is no event (and it came first, so it would be here by now).
    assert (left.room_id, left.account) == ("ying@chatroom", "main")
    assert [e.kind for e in client.events.items] == ["renamed", "left"]


async def test_send_errors_are_classified(client: Client, gateway: GatewayDriver):
    transport = client.transport
    for message, code in (("发送消息过于频繁", "UNKNOWN"), ("操作过于频繁", "UNKNOWN"),
                          ("quota exceeded", "RESOURCE_EXHAUSTED")):
        await gateway.cmd("fail_sends", count=1, message=message, code=code)
        with pytest.raises(TransportError) as limited:
            await transport.send("dong@chatroom", "通知")
        assert limited.value.rate_limited and message in str(limited.value)
    await gateway.cmd("fail_sends", count=1, message="room not found", code="NOT_FOUND")
    with pytest.raises(TransportError) as permanent:
        await transport.send("dong@chatroom", "通知")
    assert not permanent.value.retryable and not permanent.value.rate_limited
    [state] = transport.account_states()
    assert state.connected and "room not found" in state.last_error

    sent = await transport.send("dong@chatroom", "收到", mentions=["wx-dong"])
    echo = await gateway.wait_event(lambda e: e.get("id") == sent.message_id)
    assert (echo["text"], echo["mentions"], echo["self"]) == ("@董宝明 收到", ["wx-dong"], True)
    with pytest.raises(TransportError) as unknown:
        await transport.send("dong@chatroom", "x", account="nobody")
    assert not unknown.value.retryable


async def test_two_accounts_each_on_its_own_gateway(gateway: GatewayDriver, tmp_path: Path):
    second = await GatewayDriver.launch(world(
        bot={"id": "wx-bot2", "name": "小助手二号"},
        rooms={"yiwu2@chatroom": ("二号楼租客群", ["wx-zhao", "wx-ying"])}))
    transport = WechatyTransport(wechaty_settings(tmp_path, ("main", gateway), ("b", second)))
    inbox: Recorder[IncomingMessage] = Recorder()
    try:
        await transport.start(inbox.add)
        await transport.wait_connected("main", timeout=EVENT_TIMEOUT)
        await transport.wait_connected("b", timeout=EVENT_TIMEOUT)
        # Each instance used its own endpoint and token (a wrong token is refused).
        assert [(s.name, s.connected, s.logged_in_as) for s in transport.account_states()] == [
            ("main", True, "wx-bot"), ("b", True, "wx-bot2")]
        await gateway.cmd("wait_client")
        await second.cmd("wait_client")
        said_a = await gateway.say("dong@chatroom", "wx-dong", "一号")
        said_b = await second.say("yiwu2@chatroom", "wx-zhao", "二号", mentions=["wx-bot2"])
        [a] = await inbox.wait(lambda m: m.message_id == said_a)
        [b] = await inbox.wait(lambda m: m.message_id == said_b)
        assert (a.account, a.text, a.mentions_bot) == ("main", "一号", False)
        assert (b.account, b.text, b.mentions_bot, b.sender_name) == ("b", "二号", True, "赵丽")

        sent_b = await transport.send("yiwu2@chatroom", "二号收到", account="b")
        sent_a = await transport.send("dong@chatroom", "一号收到")
        echo_b = await second.wait_event(lambda e: e.get("id") == sent_b.message_id)
        echo_a = await gateway.wait_event(lambda e: e.get("id") == sent_a.message_id)
        assert (echo_b["talker"], echo_b["room"]) == ("wx-bot2", "yiwu2@chatroom")
        assert (echo_a["talker"], echo_a["room"]) == ("wx-bot", "dong@chatroom")
        assert [e["text"] for e in gateway.bot_messages()] == ["一号收到"]
        [echo] = await inbox.wait(lambda m: m.message_id == sent_b.message_id)
        assert echo.is_self and echo.account == "b"
    finally:
        await transport.stop()
        await second.stop()
