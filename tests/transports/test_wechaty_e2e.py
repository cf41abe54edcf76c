"""End to end through the real gRPC protocol: the bot on the Wechaty transport, against the
Node test gateway (a Wechaty puppet service backed by the mock puppet)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import pytest
from sqlalchemy import func, select

from bot import chainfile
from bot.app import BotApp, build_app, running
from bot.clock import Clock, FakeClock, SystemClock
from bot.config import AccountSettings, PacingSettings, Settings, WechatySettings
from bot.services import chain as chain_service
from bot.transports.base import IncomingMessage, RoomEvent, TransportError
from bot.transports.wechaty import WechatyTransport
from models import (
    Contact,
    InboundMessage,
    InviteKind,
    Membership,
    NoticeRead,
    OutboxMessage,
    OutboxStatus,
    Role,
    TenantStay,
)
from tests.conftest import count
from tests.transports.conftest import EVENT_TIMEOUT, GatewayDriver, world
from tests.wechaty_gateway.smoke_client import GatewayError

pytestmark = pytest.mark.e2e

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


@contextlib.asynccontextmanager
async def start_bot(settings: Settings, gateway: GatewayDriver, tmp_path: Path, clock: Clock,
                    chain_toml: str = CHAIN_TOML) -> AsyncIterator[Harness]:
    """The bot built by build_app with transport = wechaty on the gateway, the chain loaded."""
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
    chain_file.write_text(chain_toml, encoding="utf-8")
    async with running(app):
        async with app.session() as s, s.begin():
            await chainfile.import_chain(s, chainfile.load(chain_file), now=app.now())
        await cast(WechatyTransport, app.transport).wait_connected(timeout=EVENT_TIMEOUT)
        await gateway.cmd("wait_client")
        yield Harness(app, gateway, delivered)


@pytest.fixture
async def harness(settings: Settings, gateway: GatewayDriver, tmp_path: Path,
                  clock: FakeClock) -> AsyncIterator[Harness]:
    """The bot on the test gateway, the test chain loaded."""
    async with start_bot(settings, gateway, tmp_path, clock) as h:
        yield h


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
    # The tenant's own return mentions the landlord (the deadline to confirm it).
    registered = await harness.ask("dong@chatroom", "wx-pan", "我回来了 江西上饶 13905791234",
                                   expect="@董宝明 已登记")
    assert registered["mentions"] == ["wx-dong"]
    mark = harness.gw.mark()
    await harness.gw.say("dong@chatroom", "wx-pan", "体温 37.8")
    reply = await harness.gw.bot_message("dong@chatroom", since=mark)
    assert reply["mentions"] == ["wx-dong"]
    assert reply["text"] == ("@董宝明 潘先生 体温 37.8℃ 偏高（≥37.3℃），已通知房东和网格员，"
                             "请保持居家，等候联系。")
    # The alert goes through the outbox and the sender to the tier-4 group.
    alert = await harness.gw.bot_message("team1-landlords@chatroom", since=mark,
                                         startswith="【发热提醒】")
    assert alert["text"] == "【发热提醒】董宝明出租房 租客 潘先生 2月21日10:00 体温 37.8℃，请尽快上门跟进。"
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
# notices down a generated 5-tier chain (one room per node)
# --------------------------------------------------------------------------------------------

NOTICE_BODY = "请各房东今日完成楼道消毒"
NOTICE_TEXT = "【通知#1】" + NOTICE_BODY


@dataclass(frozen=True)
class TierChain:
    """A 5-tier chain (subdistrict → community → team → team_landlords → landlord_tenants
    rooms), each node with its room, and the gateway world to match."""

    toml: str
    setup: dict[str, Any]
    origin: str
    commander: str
    # Every room below the origin, with whoever acknowledges a notice there (the commander at
    # tiers 2–3, the team member at tier 4, the landlord at tier 5).
    responsible: dict[str, str]
    # Each tier-5 room's tenant: a plain member, whose 收到 is a read.
    tenants: dict[str, str]

    @property
    def targets(self) -> list[str]:
        """The rooms a notice from the origin goes to."""
        return list(self.responsible)


def tier_chain(landlords: int) -> TierChain:
    """The chain with `landlords` tier-5 rooms (a landlord and a tenant in each)."""
    people: dict[str, tuple[str, str]] = {  # key -> (name, contact id)
        "zhang": ("张建国", "wx-zhang"), "li": ("李卫东", "wx-li"), "wu": ("吴海峰", "wx-wu"),
        "liu": ("刘芳", "wx-liu")}
    # key, name, kind, parent, room, title, {role: [person keys]}, other members of the room
    nodes: list[tuple[str, str, str, str | None, str, str, dict[str, list[str]], list[str]]] = [
        ("futian", "福田街道", "subdistrict", None, "futian@chatroom", "福田街道指挥群",
         {"commander": ["zhang"]}, []),
        ("changchun", "长春社区", "community", "futian", "changchun@chatroom", "长春社区指挥群",
         {"commander": ["li"]}, []),
        ("team1", "长春第一作战小组", "team", "changchun", "team1@chatroom",
         "长春第一作战小组群", {"commander": ["wu"], "member": ["liu"]}, []),
        ("team1-landlords", "第一小组房东群", "team_landlords", "team1",
         "team1-landlords@chatroom", "第一小组房东群", {"member": ["liu"]},
         [f"ll{i:02d}" for i in range(1, landlords + 1)]),
    ]
    for i in range(1, landlords + 1):
        people[f"ll{i:02d}"] = (f"房东{i:02d}", f"wx-ll{i:02d}")
        people[f"t{i:02d}"] = (f"租客{i:02d}", f"wx-t{i:02d}")
        nodes.append((f"ll{i:02d}", f"房东{i:02d}出租房", "landlord_tenants", "team1-landlords",
                      f"ll{i:02d}@chatroom", f"房东{i:02d}租客群",
                      {"landlord": [f"ll{i:02d}"], "tenant": [f"t{i:02d}"]}, []))

    def q(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string

    lines = ['transport = "wechaty"']
    for key, (name, contact) in people.items():
        lines += ["", "[[people]]", f"key = {q(key)}", f"name = {q(name)}",
                  f"contacts = [{q(contact)}]"]
    rooms: dict[str, tuple[str, list[str]]] = {}
    responsible: dict[str, str] = {}
    tenants: dict[str, str] = {}
    acknowledges = {"community": "commander", "team": "commander",
                    "team_landlords": "member", "landlord_tenants": "landlord"}
    for key, name, kind, parent, room, title, roles, others in nodes:
        lines += ["", "[[nodes]]", f"key = {q(key)}", f"name = {q(name)}", f"kind = {q(kind)}"]
        if parent:
            lines.append(f"parent = {q(parent)}")
        lines.append(f"groups = [{{ room = {q(room)}, title = {q(title)} }}]")
        lines.append("roles = { " + ", ".join(
            f"{role} = [{', '.join(q(k) for k in keys)}]" for role, keys in roles.items()) + " }")
        holders = [k for keys in roles.values() for k in keys]
        rooms[room] = (title, [people[k][1] for k in dict.fromkeys([*holders, *others])])
        if kind in acknowledges:
            responsible[room] = people[roles[acknowledges[kind]][0]][1]
        if "tenant" in roles:
            tenants[room] = people[roles["tenant"][0]][1]
    contacts = [{"id": contact, "name": name} for name, contact in people.values()]
    return TierChain(toml="\n".join(lines) + "\n", setup=world(rooms=rooms, contacts=contacts),
                     origin="futian@chatroom", commander="wx-zhang", responsible=responsible,
                     tenants=tenants)


async def until(pred: Callable[[], Any], *, timeout: float = EVENT_TIMEOUT,
                every: float = 0.005) -> None:
    """Poll pred (sync or async) until it is true."""
    async with asyncio.timeout(timeout):
        while True:
            result = pred()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(every)


TierGateway = Callable[[int], Awaitable[tuple[TierChain, GatewayDriver]]]


@pytest.fixture
async def tier_gateway(gateway_dir: Path) -> AsyncIterator[TierGateway]:
    """Start a gateway with the world of tier_chain(n); stopped after the test."""
    started: list[GatewayDriver] = []

    async def launch(landlords: int) -> tuple[TierChain, GatewayDriver]:
        chain = tier_chain(landlords)
        started.append(await GatewayDriver.launch(chain.setup))
        return chain, started[-1]

    try:
        yield launch
    finally:
        for gw in started:
            with contextlib.suppress(GatewayError):
                await gw.stop()


async def test_a_notice_reaches_every_room_of_a_five_tier_chain_and_acks_are_counted(
        settings: Settings, tier_gateway: TierGateway, tmp_path: Path, clock: FakeClock):
    chain, gw = await tier_gateway(2)
    assert len(chain.targets) == 5
    async with start_bot(settings, gw, tmp_path, clock, chain.toml) as h:
        mark = gw.mark()
        await gw.say(chain.origin, chain.commander, "通知 " + NOTICE_BODY)
        queued = await gw.bot_message(chain.origin, since=mark)
        assert queued["text"].startswith("【通知#1】已发出：5 个群（2级 1，3级 1，4级 1，5级 2）")
        for room in chain.targets:
            await gw.bot_message(room, since=mark, startswith="【通知#1】")
        await h.app.idle()  # every row marked sent: acknowledgements find it
        assert {room: [m["text"] for m in gw.bot_messages(room, since=mark)]
                for room in [chain.origin, *chain.targets]} == {
            chain.origin: [queued["text"]], **{room: [NOTICE_TEXT] for room in chain.targets}}
        assert await count(h.app, OutboxMessage,
                           OutboxMessage.status == OutboxStatus.SENT) == 5

        acks = gw.mark()
        for room, contact in chain.responsible.items():
            await gw.say(room, contact, "收到")
        # A tenant is no landlord: a read, not the group's acknowledgement.
        tenant_room, tenant = next(iter(chain.tenants.items()))
        await gw.say(tenant_room, tenant, "收到")
        # Events are handled in order: the answer to 进度 comes after every 收到 is counted.
        progress = await h.ask(chain.origin, chain.commander, "进度", expect="【通知#1】进度")
        assert progress["text"].splitlines() == [
            "【通知#1】进度：送达 5/5，确认 5/5，其他成员已读 1 人次",
            "2级：送达 1/1，确认 1/1",
            "3级：送达 1/1，确认 1/1",
            "4级：送达 1/1，确认 1/1",
            "5级：送达 2/2，确认 2/2",
        ]
        # 收到 is silent.
        assert [m["room"] for m in gw.bot_messages(since=acks)] == [chain.origin]
        assert await count(h.app, NoticeRead) == 1
        assert await count(h.app, OutboxMessage, OutboxMessage.acked_at.is_not(None)) == 5


@dataclass
class SendCall:
    """One transport.send of the sender, timed."""

    room_id: str
    text: str
    started: float
    ended: float | None = None
    error: str = ""


async def test_a_gateway_restart_mid_broadcast_still_delivers_the_notice_once_per_room(
        settings: Settings, tier_gateway: TierGateway, tmp_path: Path):
    chain, gw = await tier_gateway(30)
    targets = set(chain.targets)
    assert len(targets) == 33
    # A small gap so that the broadcast takes a while (about 2 s) and the kill lands in it;
    # quick retries; room for the attempts a restart of the gateway costs.
    settings = settings.model_copy(update={"pacing": PacingSettings(
        min_gap_seconds=0.05, jitter_seconds=0, retry_base_seconds=0.2, max_attempts=8)})
    async with start_bot(settings, gw, tmp_path, SystemClock(), chain.toml) as h:
        transport = h.transport
        original = transport.send
        calls: list[SendCall] = []

        async def timed(room_id: str, text: str, *, mentions: Any = (),
                        account: str = "") -> Any:
            call = SendCall(room_id, text, time.monotonic())
            calls.append(call)
            try:
                return await original(room_id, text, mentions=mentions, account=account)
            except TransportError as exc:
                call.error = str(exc)
                raise
            finally:
                call.ended = time.monotonic()

        transport.send = timed  # type: ignore[method-assign]

        def delivered() -> list[dict[str, Any]]:
            return [m for m in gw.bot_messages_all_processes()
                    if m["room"] in targets and m["text"].startswith("【通知#1】")]

        started = time.monotonic()
        await gw.say(chain.origin, chain.commander, "通知 " + NOTICE_BODY)
        await until(lambda: len(delivered()) >= len(targets) // 3)
        kill_from = time.monotonic()
        await gw.kill()
        kill_to = time.monotonic()
        before_kill = {m["room"] for m in delivered()}
        await gw.restart()
        restarted = time.monotonic()

        async def done() -> bool:
            return ({m["room"] for m in delivered()} == targets
                    and await count(h.app, OutboxMessage,
                                    OutboxMessage.status != OutboxStatus.SENT) == 0)

        await until(done, every=0.05)
        finished = time.monotonic()
        await h.app.idle()

        texts = [m["text"] for m in delivered()]
        assert set(texts) == {NOTICE_TEXT}  # retries are the same text (no 补发: not resent)
        per_room = {room: 0 for room in targets}
        for m in delivered():
            per_room[m["room"]] += 1
        duplicates = {room: n - 1 for room, n in per_room.items() if n > 1}
        # Sends to a room in flight while the gateway died: the only ones that can have gone
        # out without our learning it (neither the reply nor the echo came back).
        in_flight = [c for c in calls if c.text == NOTICE_TEXT and c.started <= kill_to
                     and (c.ended is None or c.ended >= kill_from)]
        failed = [c for c in calls if c.error]
        # For each duplicate: the copy the killed gateway stored, and whether its echo ever
        # reached the bot (the retry looks for it in the Echo table before sending again).
        old_ids = {m["id"]: m["room"] for g in gw.previous for m in g.events
                   if m.get("event") == "message" and m.get("self") is True}
        echoed = {m.message_id for m in h.delivered.items if m.is_self}
        lost = {room: [i for i, r in old_ids.items() if r == room and i not in echoed]
                for room in duplicates}
        flight = [(c.room_id, round(c.started - started, 3),
                   round((c.ended or 0) - started, 3), c.error) for c in in_flight]
        print(f"\nrestart mid-broadcast: {len(before_kill)}/{len(targets)} rooms before the "
              f"kill at {kill_from - started:.3f}-{kill_to - started:.3f} s, restarted at "
              f"{restarted - started:.2f} s, all sent at {finished - started:.2f} s; "
              f"{len(calls)} sends, {len(failed)} failed; in flight at the kill (room, "
              f"start, end, error): {flight}; "
              f"duplicates: {duplicates}; their unechoed copies on the killed gateway: {lost}")
        # The kill really fell in the middle: some rooms before, some after, sends failed and
        # were retried on the new gateway.
        assert 0 < len(before_kill) < len(targets)
        assert gw.bot_messages() and failed
        assert len(calls) > len(targets)  # rows were retried on the new gateway
        # A send refused for want of a connection cost no attempt (it cannot have gone out).
        async with h.app.session() as session:
            attempts = (await session.execute(select(func.sum(OutboxMessage.attempts))
                                              .where(OutboxMessage.notice_id.is_not(None)))
                        ).scalar_one()
        not_sent = [c for c in failed if "not connected" in c.error]
        assert not_sent and attempts <= len(calls) - len(not_sent)
        # Every room got it; nothing is left pending, sending or failed.
        assert all(n >= 1 for n in per_room.values()), per_room
        assert await count(h.app, OutboxMessage, OutboxMessage.status != OutboxStatus.SENT) == 0
        # Once per room, except where a send reached the dying gateway but neither its reply nor
        # its echo made it back: then the retry cannot know and sends again (at most the rows in
        # flight at the kill: one, paced).
        assert set(duplicates) <= {c.room_id for c in in_flight if c.error}, (duplicates, in_flight)
        # ... and only when the echo of the first copy never came back (had it come, the retry
        # would have found it and marked the row sent).
        assert all(len(ids) == 1 for ids in lost.values()), lost
        assert sum(duplicates.values()) <= len(in_flight) <= 1


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
    assert (left.room_id, left.account) == ("ying@chatroom", "main")
    # Someone else leaving is a member_left event (the bot tells their commander).
    [member] = [e for e in client.events.items if e.kind == "member_left"]
    assert (member.room_id, member.member_id, member.account) == (
        "dong@chatroom", "wx-pan", "main")
    assert [e.kind for e in client.events.items] == ["renamed", "member_left", "left"]


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
