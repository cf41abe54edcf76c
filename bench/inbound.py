#!/usr/bin/env python
"""Inbound throughput benchmark: the batched pipeline against one commit per message.

    .venv/bin/python bench/inbound.py [--messages 20000] [--db PATH] [--db-url URL]

Both runs get the same chain (the demo chain plus 200 landlords with bound tenant groups) and
the same seeded messages (60% chatter, 40% commands), all arriving together as in a busy hour.
It prints figures and never asserts timings; the only checks are of correctness (every reply
left after its message's record was committed; both runs stored the same rows). See
bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bulk  # bench/bulk.py: the throwaway keys
from sqlalchemy import event, func, insert, literal, select, text, update

from bot import chainfile, store
from bot.app import BotApp, build_app
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.pipeline import Queued, forget_parsed, preparse
from bot.router import Reply
from bot.transports.base import IncomingMessage
from bot.transports.memory import MemoryTransport
from models import (
    InboundMessage,
    LandlordReport,
    OutboxMessage,
    Person,
    TemperatureReading,
    TenantStay,
)

# The article's time: 21 February 2020, a Friday morning in Yiwu (as in tests/conftest.py).
START = datetime(2020, 2, 21, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TRANSPORT = "sim"  # the demo chain's transport name
COUNTED = {"TenantStay": TenantStay, "TemperatureReading": TemperatureReading,
           "InboundMessage": InboundMessage, "LandlordReport": LandlordReport,
           "OutboxMessage": OutboxMessage, "Person": Person}
MUST_MATCH = ("TenantStay", "TemperatureReading", "InboundMessage")
SENDER = True  # --no-sender: the outbox sender is not started
STEPS = False  # --steps: time every event-loop step
LANES: int | None = None  # --lanes: pipeline.lanes (None: the settings' default)
PEOPLE = 0  # --people: tenants registered before the run

# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏飞宇浩凯晨欣怡佳俊峰斌波宁琳雪梅丹亮婷"
ORIGINS = ["湖南长沙", "湖南邵阳", "湖北孝感", "湖北黄冈", "河南信阳", "河南周口", "江西上饶",
           "江西赣州", "安徽阜阳", "安徽六安", "四川达州", "四川南充", "贵州毕节", "贵州遵义",
           "云南昭通", "广西桂林", "重庆万州", "甘肃天水", "山东菏泽", "福建三明"]
CHATTER = [
    ("收到", 20), ("好的", 14), ("谢谢房东", 8), ("[图片]", 10), ("[表情]", 5), ("好的收到", 6),
    ("今天几点消毒？", 3), ("辛苦了", 5), ("房东什么时候来消毒", 2), ("楼下超市开门了吗", 2),
    ("口罩在哪里领", 2), ("返回的人要登记吗", 2), ("今天测体温了吗？", 2), ("大家注意戴口罩", 2),
    ("体温正常", 2), ("明天回来", 1), ("几点开门", 1), ("快递能送进来吗", 2),
    ("小区门口有人查通行证", 1), ("[语音]", 3), ("哈哈", 3), ("👍", 3), ("谢谢", 5),
    ("我回来了吗", 1), ("楼上太吵了", 1), ("房租可以晚几天交吗", 1),
]
N_TEAMS = 4


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def big_chain(n_landlords: int) -> chainfile.ChainSpec:
    """N_TEAMS more teams under the demo's 长春社区, each with a landlords group, and
    n_landlords tier-5 nodes split between them, each with a bound group and a landlord."""
    rng = random.Random(7)
    people = []
    nodes: list[dict[str, Any]] = [
        {"key": "futian", "name": "福田街道", "kind": "subdistrict"},
        {"key": "changchun", "name": "长春社区", "kind": "community", "parent": "futian"},
    ]
    for t in range(N_TEAMS):
        nodes.append({"key": f"team{t + 2}", "name": f"长春第{t + 2}作战小组", "kind": "team",
                      "parent": "changchun",
                      "groups": [{"room": f"team{t + 2}@chatroom",
                                  "title": f"长春第{t + 2}作战小组群"}]})
        nodes.append({"key": f"team{t + 2}-ll", "name": f"第{t + 2}小组房东群",
                      "kind": "team_landlords", "parent": f"team{t + 2}",
                      "groups": [{"room": f"team{t + 2}-landlords@chatroom",
                                  "title": f"第{t + 2}小组房东群"}]})
    for i in range(n_landlords):
        name = person_name(rng)
        people.append({"key": f"ll{i}", "name": name, "mobile": f"1370000{i:04d}",
                       "contacts": [f"sim-ll-{i:04d}"]})
        nodes.append({"key": f"ll{i}-node", "name": f"{name}出租房{i:03d}",
                      "kind": "landlord_tenants", "parent": f"team{i % N_TEAMS + 2}-ll",
                      "groups": [{"room": f"ll{i:03d}@chatroom", "title": f"{name}租客群"}],
                      "roles": {"landlord": [f"ll{i}"]}})
    return chainfile.ChainSpec.model_validate(
        {"transport": TRANSPORT, "people": people, "nodes": nodes})


async def load_chain(app: BotApp, spec: chainfile.ChainSpec) -> None:
    assert await load_demo_chain(app), "the store already had a chain"
    async with app.session() as session, session.begin():
        await chainfile.import_chain(session, spec, now=app.now())
    if PEOPLE:
        await add_people(app, PEOPLE)


async def add_people(app: BotApp, n: int) -> None:
    """--people: n tenants registered before the run, spread over the landlord nodes (person
    with a sealed mobile, contact, tenant role, a stay both sides reported whose home watch is
    over), with Core
    executemany in chunks; not timed. Index depths and table sizes are a city's, not a demo's."""
    from bot.services import people as people_service
    from models import Contact, Group, Membership, Person, Role, TenantStay

    now = app.now()
    arrived = now - timedelta(days=30)
    async with app.session() as session, session.begin():
        nodes = list((await session.execute(
            select(Group.node_id).where(Group.room_id.like("ll%@chatroom"))
            .order_by(Group.node_id))).scalars())
        first = (await session.execute(select(func.max(Person.id)))).scalar_one() or 0
        tables = [t.__table__ for t in (Person, Contact, Membership, TenantStay)]
        chunk = 5000
        for start in range(0, n, chunk):
            ids = range(first + 1 + start, first + 1 + min(n, start + chunk))
            rows: list[list[dict[str, Any]]] = [[], [], [], []]
            for pid in ids:
                node = nodes[pid % len(nodes)]
                rows[0].append(people_service.person_row(
                    person_id=pid, name=f"租客{pid}", now=now, mobile=f"139{pid:08d}"))
                rows[1].append({"person_id": pid, "transport": TRANSPORT,
                                "contact_id": f"old{pid}", "created_at": now})
                rows[2].append({"person_id": pid, "node_id": node, "role": Role.TENANT,
                                "created_at": now})
                rows[3].append({"tenant_id": pid, "node_id": node, "origin": "湖南长沙",
                                "arrived_at": arrived, "watch_until": arrived + timedelta(days=14),
                                "self_reported_at": arrived, "landlord_reported_at": arrived,
                                "fever": False, "created_at": arrived})
            for table, batch in zip(tables, rows, strict=True):
                await session.execute(insert(table), batch)
        if session.bind.dialect.name == "postgresql":
            for table in tables:
                await session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"))
        await add_history(session, first=first, n=n, now=now)
    await bulk.analyze(app.engine)  # and on PostgreSQL the load's dead rows vacuumed


async def add_history(session: Any, *, first: int, n: int, now: datetime) -> None:
    """What the --people tenants' days left in a store in use: each one's return and a
    reading on record (two inbound rows, two readings) and the reply they got, sent (one
    outbox row, through the bot's writer). Without them the tables the commands write most
    start empty, and a planner that has analyzed them empty plans for empty tables (a scan
    of inbound_message per look-up), as no running city's database would."""
    from bot.services import outbox
    from models import (
        Contact,
        Group,
        InboundMessage,
        OutboxMessage,
        TemperatureReading,
        TenantStay,
    )

    mine = TenantStay.tenant_id.between(first + 1, first + n)
    for k, command in enumerate(("TenantReturn", "Temperature")):
        await session.execute(insert(TemperatureReading).from_select(
            ["stay_id", "value", "taken_at", "by_id"],
            select(TenantStay.id, literal(36.4 + k / 10), TenantStay.arrived_at,
                   TenantStay.tenant_id).where(mine)))
        await session.execute(insert(InboundMessage).from_select(
            ["transport", "message_id", "room_id", "sender_id", "command", "received_at"],
            select(Contact.transport, Contact.contact_id + f"-{k}", literal("old@chatroom"),
                   Contact.contact_id, literal(command), Contact.created_at)
            .where(Contact.person_id.between(first + 1, first + n))))
    rooms = {node: room for node, room in await session.execute(
        select(Group.node_id, Group.room_id).where(Group.room_id.like("ll%@chatroom")))}
    stays = list(await session.execute(select(TenantStay.node_id).where(mine)))
    before = (await session.execute(select(func.max(OutboxMessage.id)))).scalar_one() or 0
    for start in range(0, len(stays), 5000):
        await outbox.queue_replies(session, now=now, replies=[
            outbox.ReplyDraft(TRANSPORT, rooms[node], "", "已登记返回，请居家观察14天")
            for (node,) in stays[start:start + 5000]])
    await session.execute(update(OutboxMessage).where(OutboxMessage.id > before)
                          .values(status="sent", attempts=1, sent_at=now))


# --------------------------------------------------------------------------------------------
# The messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sim:
    """One simulated message: where, who, what, and what kind (for the figures)."""

    room: str
    sender: str
    name: str
    text: str
    kind: str  # chatter | return | temperature | report | list | landlord_return


@dataclass(slots=True)
class Tenant:
    contact: str
    name: str
    room: str


def make_messages(n: int, *, n_landlords: int, tenant_pool: int, seed: int) -> list[Sim]:
    """n messages: 60% chatter, 40% commands (returns, readings, a few landlord commands)."""
    rng = random.Random(seed)
    rooms = [f"ll{i:03d}@chatroom" for i in range(n_landlords)]
    landlord_of = {room: (f"sim-ll-{i:04d}", f"房东{i}") for i, room in enumerate(rooms)}
    chatter_texts = [t for t, _ in CHATTER]
    chatter_weights = [w for _, w in CHATTER]
    mobiles = iter(rng.sample(range(10**8), n))  # unique: at most one per message
    prefixes = ["138", "139", "150", "151", "158", "186", "188", "135", "159", "177"]

    def mobile() -> str:
        return f"{rng.choice(prefixes)}{next(mobiles):08d}"

    waiting = [Tenant(f"sim-t-{j:05d}", person_name(rng), rng.choice(rooms))
               for j in range(tenant_pool)]
    returned: list[Tenant] = []
    out: list[Sim] = []
    for _ in range(n):
        if rng.random() < 0.60:
            # Chatter, mostly from tenants in their landlords' groups.
            if returned and rng.random() < 0.8:
                t = rng.choice(returned)
                room, sender, name = t.room, t.contact, t.name
            else:
                room = rng.choice(rooms)
                sender, name = landlord_of[room]
            out.append(Sim(room, sender, name,
                           rng.choices(chatter_texts, chatter_weights)[0], "chatter"))
            continue
        r = rng.random()
        if r < 0.03:
            room = rng.choice(rooms)
            sender, name = landlord_of[room]
            out.append(Sim(room, sender, name, rng.choice(
                ["房东上报 消毒", "房东上报 消毒 楼道和楼梯扶手已消毒", "已消毒"]), "report"))
        elif r < 0.05:
            room = rng.choice(rooms)
            sender, name = landlord_of[room]
            out.append(Sim(room, sender, name, "我的租客", "list"))
        elif r < 0.07:
            room = rng.choice(rooms)
            sender, name = landlord_of[room]
            out.append(Sim(room, sender, name,
                           f"房东上报 返回 {person_name(rng)} {mobile()} 来自{rng.choice(ORIGINS)}",
                           "landlord_return"))
        elif (r < 0.52 or not returned) and waiting:
            t = waiting.pop()
            returned.append(t)
            origin, temp, m = rng.choice(ORIGINS), round(rng.uniform(36.0, 37.1), 1), mobile()
            if rng.random() < 0.01:
                temp = round(rng.uniform(37.3, 38.5), 1)
            text_ = rng.choice([
                f"我回来了 {origin} {m}",
                f"租客返回 {t.name} {m} 来自{origin} 体温{temp}",
                f"我回来了 从{origin} {m} 体温{temp}",
                f"租客返回 {t.name} {m} 来自{origin} 昨晚10点",
                f"返回登记 {t.name} 手机{m} 来自{origin}",
                f"我已经回来了，从{origin}回来的，电话{m}",
            ])
            out.append(Sim(t.room, t.contact, t.name, text_, "return"))
        else:
            t = rng.choice(returned)
            value = round(rng.uniform(35.9, 37.2), 1)
            if rng.random() < 0.05:
                value = round(rng.uniform(37.3, 39.0), 1)
            out.append(Sim(t.room, t.contact, t.name, rng.choice(
                [f"体温 {value}", f"体温{value}", f"今天体温{value}", f"@小助手 体温 {value}"]),
                "temperature"))
    return out


def count_commands(messages: list[IncomingMessage], bot_names: Any) -> int:
    """Messages the parser takes for a command (with or without valid arguments)."""
    return sum(preparse(m, bot_names) is not None for m in messages)


def to_incoming(sims: list[Sim], now: datetime) -> list[IncomingMessage]:
    return [IncomingMessage(transport=TRANSPORT, message_id=f"sim-in-{k}", room_id=s.room,
                            sender_id=s.sender, sender_name=s.name, text=s.text, at=now)
            for k, s in enumerate(sims)]


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


class Verifier:
    """Checks, outside the bot's engine, that a message's InboundMessage row is committed.

    SQLite: a plain sqlite3 connection in autocommit mode (a WAL reader sees committed data
    only). PostgreSQL: a separate asyncpg connection (read committed)."""

    SQL = "SELECT 1 FROM inbound_message WHERE transport = {0} AND message_id = {1}"

    def __init__(self, url: str):
        self.url = url
        self.spent = 0.0  # seconds spent checking (excluded from the figures)
        self.checked = 0
        self.missing: list[str] = []
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self._turn = asyncio.Lock()

    async def open(self) -> None:
        if self.url.startswith("sqlite"):
            self._sqlite = sqlite3.connect(self.url.split(":///", 1)[1], isolation_level=None)
        else:
            import asyncpg

            self._pg = await asyncpg.connect(self.url.replace("postgresql+asyncpg", "postgresql"))

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    async def committed(self, message_id: str) -> None:
        # One check at a time (the pipeline's lanes reply side by side); the time a check
        # holds the connection is what is excluded.
        async with self._turn:
            t0 = time.perf_counter()
            if self._sqlite is not None:
                row = self._sqlite.execute(self.SQL.format("?", "?"),
                                           (TRANSPORT, message_id)).fetchone()
            else:
                row = await self._pg.fetchrow(self.SQL.format("$1", "$2"), TRANSPORT,
                                              message_id)
            self.checked += 1
            if row is None:
                self.missing.append(message_id)
            self.spent += time.perf_counter() - t0


@dataclass
class Result:
    label: str
    messages: int
    commands: int
    wall: float = 0.0  # seconds, first inject to idle, minus verification time
    cpu: float = 0.0  # process CPU seconds (all threads) over the same span, minus verification
    latencies_ms: list[float] = field(default_factory=list)
    kind_of: dict[str, str] = field(default_factory=dict)  # message id → the Sim's kind
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # latencies per kind
    replies: int = 0
    commits: int = 0
    statements: int = 0
    transactions: int = 0  # transactions that handled commands (batches, or one per message)
    rows: dict[str, int] = field(default_factory=dict)
    rss_mb: float = 0.0
    verified: int = 0
    unverified: list[str] = field(default_factory=list)
    verify_s: float = 0.0
    errors: int = 0
    lag_ms: list[float] = field(default_factory=list)  # the loop ticker's lateness
    control_ms: list[float] = field(default_factory=list)  # a no-work ticker's, meanwhile
    steps: list[tuple[float, str]] = field(default_factory=list)  # longest loop steps
    offered: float | None = None

    def pct(self, q: float, data: list[float] | None = None) -> float:
        data = sorted(self.latencies_ms if data is None else data)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, round(q * (len(data) - 1)))]

    def spread(self, data: list[float]) -> str:
        return (f"p50 {self.pct(0.5, data):.1f}  p99 {self.pct(0.99, data):.1f}  "
                f"max {self.pct(1.0, data):.1f}")

    def show(self) -> None:
        print(f"--- {self.label}")
        print(f"  messages {self.messages}, commands (parsed) {self.commands}, replies {self.replies}, "
              f"wall {self.wall:.3f} s (verification {self.verify_s:.3f} s excluded)")
        print(f"  messages/s {self.messages / self.wall:10.0f}   "
              f"commands/s {self.commands / self.wall:10.0f}")
        print(f"  CPU {self.cpu:.3f} s = {self.cpu / max(self.commands, 1) * 1000:.2f} ms per command "
              f"(process, all threads; {self.cpu / self.wall * 100:.0f}% of wall)")
        print(f"  arrival->reply committed ms: {self.spread(self.latencies_ms)}")
        if self.by_kind:
            print("    p99 by kind: " + ", ".join(
                f"{kind} {self.pct(0.99, data):.1f} ({len(data)})"
                for kind, data in sorted(self.by_kind.items(), key=lambda kv: -len(kv[1]))))
        print(f"  event-loop lag ms (1 ms ticker, {len(self.lag_ms)} ticks): "
              f"{self.spread(self.lag_ms)}; ticks late > 5 ms: "
              f"{sum(1 for x in self.lag_ms if x > 5)}")
        if self.control_ms:
            print(f"  no-work control (own process, same 1 ms ticker, same time, "
                  f"{len(self.control_ms)} ticks): {self.spread(self.control_ms)}; ticks late "
                  f"> 5 ms: {sum(1 for x in self.control_ms if x > 5)}")
        if self.steps:
            print("  longest event-loop steps (one callback, synchronous; wall ms, where the "
                  "task then waited [the loop thread's CPU ms in it]):\n    " + "\n    ".join(
                      f"{ms:.1f} {where}" for ms, where in self.steps))
        print(f"  commits {self.commits} (command transactions {self.transactions}; the rest "
              f"are the outbox sender's), SQL statements {self.statements} "
              f"({self.statements / max(self.commands, 1):.1f} per command)")
        print("  rows: " + ", ".join(f"{k} {v}" for k, v in self.rows.items()))
        print(f"  replies verified committed before sending: {self.verified}/{self.replies}, "
              f"not committed: {len(self.unverified)}; errors logged: {self.errors}")
        print(f"  peak RSS so far (process) {self.rss_mb:.0f} MB")


class ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 3:
            line = record.getMessage().splitlines()[0]
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                line += f" [{type(exc).__name__}: {str(exc).splitlines()[0]}]"
            self.first.append(f"{record.name}: {line}")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fresh_store(url: str) -> None:
    """An empty database: a new SQLite file, or PostgreSQL's public schema dropped and made."""
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    engine = store.create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def prepared_app(url: str, spec: chainfile.ChainSpec, batch_max: int | None
                       ) -> tuple[BotApp, MemoryTransport]:
    await fresh_store(url)
    overrides: dict[str, Any] = {}
    if batch_max is not None:
        overrides["pipeline"] = {"batch_max": batch_max}
    if LANES is not None:
        overrides.setdefault("pipeline", {})["lanes"] = LANES
    settings = Settings(database_url=url, transport="memory", **overrides)
    clock = FakeClock(START)
    transport = MemoryTransport(TRANSPORT, bot_id="sim-bot", now=clock.now)
    app = build_app(settings, transport=transport, clock=clock)
    await app.open_store()
    await load_chain(app, spec)
    return app, transport


def instrument(app: BotApp, result: Result) -> None:
    sync_engine = app.engine.sync_engine

    @event.listens_for(sync_engine, "commit")
    def _commit(_conn: Any) -> None:
        result.commits += 1

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _stmt(*_args: Any) -> None:
        result.statements += 1


def reply_recorder(send: Callable[[IncomingMessage, Reply], Awaitable[None]],
                   verifier: Verifier | None, injected: dict[str, tuple[float, float]],
                   result: Result) -> Callable[[IncomingMessage, Reply], Awaitable[None]]:
    """Wrap the reply path: verify the record is committed, send, note the time."""

    async def send_reply(message: IncomingMessage, reply: Reply) -> None:
        if verifier is not None:
            await verifier.committed(message.message_id)
        await send(message, reply)
        t_sent = time.perf_counter()
        t_in, v_in = injected[message.message_id]
        spent = verifier.spent if verifier else 0.0
        latency = (t_sent - t_in - (spent - v_in)) * 1000
        result.latencies_ms.append(latency)
        result.by_kind.setdefault(result.kind_of.get(message.message_id, "?"), []).append(latency)
        result.replies += 1

    return send_reply


async def count_rows(app: BotApp) -> dict[str, int]:
    async with app.session() as session:
        return {name: (await session.execute(select(func.count()).select_from(model)))
                .scalar_one() for name, model in COUNTED.items()}


async def finish(app: BotApp, result: Result, verifier: Verifier | None,
                 errors: ErrorCounter) -> Result:
    result.rows = await count_rows(app)
    result.rss_mb = rss_mb()
    if verifier is not None:
        result.verified = verifier.checked - len(verifier.missing)
        result.unverified = verifier.missing
        result.verify_s = verifier.spent
        await verifier.close()
    result.errors = errors.count
    await app.stop()
    return result


CONTROL_TICKER = """
import sys, time, asyncio
async def tick():
    out = []
    try:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            out.append((time.perf_counter() - t - 0.001) * 1000)
    except asyncio.CancelledError:
        return out
async def main():
    task = asyncio.ensure_future(tick())
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    task.cancel()
    print(" ".join(f"{x:.3f}" for x in await task))
asyncio.run(main())
"""


class Control:
    """A no-work control: the same 1 ms ticker in a process of its own, doing nothing else,
    over the same span. What it sees is the machine's share (other processes' load)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", CONTROL_TICKER],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> list[float]:
        if self._proc is None:
            return []
        out, _ = self._proc.communicate("")
        self._proc = None
        return [float(x) for x in out.split()]


class StepTimer:
    """The event loop's longest synchronous steps (each callback a Handle runs), with where
    each came from: what holds the loop (--steps; it adds a little CPU to every step)."""

    KEEP = 6

    def __init__(self) -> None:
        self.longest: list[tuple[float, str]] = []
        self._orig: Any = None

    def start(self) -> None:
        import asyncio.events as events

        self._orig = events.Handle._run
        orig, longest, keep = self._orig, self.longest, self.KEEP

        def _run(handle: Any) -> None:
            t, c = time.perf_counter(), time.thread_time()
            orig(handle)
            ms = (time.perf_counter() - t) * 1000
            if len(longest) < keep or ms > longest[-1][0]:
                cpu = (time.thread_time() - c) * 1000
                longest.append((ms, f"{_where(handle)} [CPU {cpu:.1f}]"))
                longest.sort(key=lambda x: -x[0])
                del longest[keep:]

        events.Handle._run = _run  # type: ignore[method-assign]

    def stop(self) -> list[tuple[float, str]]:
        import asyncio.events as events

        if self._orig is not None:
            events.Handle._run = self._orig  # type: ignore[method-assign]
            self._orig = None
        return self.longest


def _where(handle: Any) -> str:
    """The coroutine a loop step resumed (its innermost awaiting frame), else the callback."""
    task = getattr(handle._callback, "__self__", None)
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    names: list[str] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and "asyncio" not in frame.f_code.co_filename:
            names.append(f"{frame.f_code.co_name} "
                         f"({Path(frame.f_code.co_filename).name}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None)
    if task is None:
        return str(getattr(handle._callback, "__qualname__", repr(handle)))
    return " < ".join(reversed(names[-2:])) or "?"


async def drive(feed: Callable[[int], Awaitable[None]], ids: list[str],
                injected: dict[str, tuple[float, float]], rate: float | None,
                spent: Callable[[], float] = lambda: 0.0) -> None:
    """Deliver every message: all at once (rate None), or open loop at `rate` a second, each
    on its schedule whatever the bot is doing; a message's arrival is its scheduled time, so
    a late generator (a blocked loop) counts against the bot, not for it. With each arrival
    goes the verifier's time spent so far (`spent`): only its time after the arrival is taken
    off that message's latency."""
    t0 = time.perf_counter()
    for k, message_id in enumerate(ids):
        if rate is None:
            injected[message_id] = (time.perf_counter(), spent())
        else:
            due = t0 + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            injected[message_id] = (due, spent())
        await feed(k)


async def own_transaction(app: BotApp, message: IncomingMessage, write_replies: Any,
                          send_reply: Callable[[IncomingMessage, Reply], Awaitable[None]]
                          ) -> bool:
    """The same handler the pipeline runs, the usual bot way: one message, one session, one
    commit (the reply joins the outbox in it), then the reply is let go."""
    item = preparse(message, app.settings.bot_names)
    if item is None:
        return False
    after: list[Callable[[], None]] = []
    async with app.session() as session, session.begin():
        reply = await app.handling.handle(session, item, after)
        if reply is not None:
            await write_replies(session, [(message, reply)])
    for callback in after:
        callback()
    app.sender.wake()
    if reply is not None:
        await send_reply(message, Queued(reply.text, reply.mentions))
    return True


class OfflineRequest:
    """python-telegram-bot's request class without a network: getMe answered locally."""

    def __new__(cls) -> Any:
        from telegram.request import BaseRequest

        class _Offline(BaseRequest):
            @property
            def read_timeout(self) -> float | None:
                return None

            async def initialize(self) -> None:
                return None

            async def shutdown(self) -> None:
                return None

            async def do_request(self, url: str, method: str, request_data: Any = None,
                                 **_timeouts: Any) -> tuple[int, bytes]:
                if url.endswith("/getMe"):
                    return 200, json.dumps({"ok": True, "result": {
                        "id": 1, "is_bot": True, "first_name": "tierbot",
                        "username": "tierbot_bench_bot"}}).encode()
                raise RuntimeError(f"bench: no network ({url.rsplit('/', 1)[-1]})")

        return _Offline()


def telegram_updates(messages: list[IncomingMessage]) -> list[Any]:
    """The messages as Telegram updates (built before timing, PTB's de_json left out)."""
    from telegram import Chat, Message, Update, User

    rooms: dict[str, int] = {}
    users: dict[str, int] = {}
    out = []
    for k, m in enumerate(messages):
        chat = Chat(id=-1000 - rooms.setdefault(m.room_id, len(rooms)), type=Chat.SUPERGROUP,
                    title=m.room_id)
        user = User(id=10 + users.setdefault(m.sender_id, len(users)),
                    first_name=m.sender_name or m.sender_id, is_bot=False)
        out.append(Update(update_id=k + 1, message=Message(
            message_id=k + 1, date=m.at, chat=chat, from_user=user, text=m.text)))
    return out


@dataclass
class Run:
    """One run's set-up: the app, its transport, the messages and what is being measured."""

    app: BotApp
    transport: MemoryTransport
    messages: list[IncomingMessage]
    result: Result
    verifier: Verifier | None
    injected: dict[str, tuple[float, float]]
    send_reply: Callable[[IncomingMessage, Reply], Awaitable[None]]


async def _nothing(*_args: Any, **_kw: Any) -> None:
    return None


async def set_up(label: str, url: str, spec: chainfile.ChainSpec, sims: list[Sim], *,
                 batch_max: int | None, verify: bool) -> Run:
    app, transport = await prepared_app(url, spec, batch_max)
    if not SENDER:
        # Inbound alone: replies and alerts stay in the outbox (the sender's own cost is
        # bench/fanout.py's figure).
        app.sender.start = app.sender.idle = _nothing  # type: ignore[method-assign]
        app.sender.wake = lambda: None  # type: ignore[method-assign]
    messages = to_incoming(sims, app.now())
    result = Result(label, len(messages), count_commands(messages, app.settings.bot_names))
    result.kind_of = {m.message_id: s.kind for m, s in zip(messages, sims, strict=True)}
    verifier = Verifier(url) if verify else None
    if verifier:
        await verifier.open()
    injected: dict[str, tuple[float, float]] = {}
    send_reply = reply_recorder(app._send_reply, verifier, injected, result)
    return Run(app, transport, messages, result, verifier, injected, send_reply)


async def measured(run: Run, feed: Callable[[int], Awaitable[None]],
                   handled: Callable[[], Awaitable[None]], rate: float | None,
                   errors: ErrorCounter, profile: Any = None) -> Result:
    """Feed every message (burst or open loop), wait until all are handled and the outbox is
    drained; wall and CPU over that span, the loop's lag throughout."""
    app, result, verifier = run.app, run.result, run.verifier
    instrument(app, result)
    gc.collect()
    gc.freeze()  # as `tierbot run` does once started
    errors.count = 0
    forget_parsed()  # every run parses from cold (counting the commands warmed the cache)
    lag = bulk.LoopLag()
    control = Control()
    control.start()
    steps = StepTimer() if STEPS else None
    if steps is not None:
        steps.start()
    lag.start()
    if profile is not None:
        profile.start()
    t0, c0 = time.perf_counter(), time.process_time()
    await drive(feed, [m.message_id for m in run.messages], run.injected, rate,
                lambda: verifier.spent if verifier else 0.0)
    await handled()
    await app.idle()
    spent = verifier.spent if verifier else 0.0
    result.wall = time.perf_counter() - t0 - spent
    result.cpu = time.process_time() - c0 - spent
    if profile is not None:
        profile.stop()
    await lag.stop()
    result.lag_ms = lag.samples
    result.control_ms = control.stop()
    if steps is not None:
        result.steps = steps.stop()
    result.offered = rate
    return await finish(app, result, verifier, errors)


async def run_pipeline(url: str, spec: chainfile.ChainSpec, sims: list[Sim], *,
                       batch_max: int | None, verify: bool, errors: ErrorCounter,
                       rate: float | None, profile: Any = None) -> Result:
    run = await set_up("tierbot pipeline (batched)", url, spec, sims, batch_max=batch_max,
                       verify=verify)
    app, result = run.app, run.result
    result.label += (f", batch_max {app.settings.pipeline.batch_max}, "
                     f"lanes {app.pipeline.lanes}")
    app.pipeline.send_reply = run.send_reply
    process = app.pipeline.process

    async def counted_process(batch: Any, parsed: Any = None) -> None:
        if any(not m.is_self for m in batch):
            result.transactions += 1
        await process(batch, parsed)

    app.pipeline.process = counted_process  # type: ignore[method-assign]
    await app.start()
    await app.idle()

    async def feed(k: int) -> None:
        await run.transport.inject(run.messages[k])

    return await measured(run, feed, app.pipeline.idle, rate, errors, profile)


async def run_batches(url: str, spec: chainfile.ChainSpec, sims: list[Sim]) -> None:
    """What one batch costs, alone: `Pipeline.process` called in a loop on batches of 1 and
    of 4 commands (returns and 体温 only, after 200 alone to warm up), no load generator,
    ticker, verifier or sender; two rounds of 100 batches per size (the first warms that
    size up). Quieter than the open-loop runs, where batch sizes follow the machine."""
    run = await set_up("per batch", url, spec, sims, batch_max=None, verify=False)
    app = run.app
    app.pipeline.send_reply = _nothing  # type: ignore[method-assign]
    await app.start()
    await app.idle()
    commands = [m for m, s in zip(run.messages, sims, strict=True)
                if s.kind in ("return", "temperature")]
    if len(commands) < 1200:
        raise SystemExit("--runs batches: too few returns and readings; raise --messages")
    for message in commands[:200]:
        await app.pipeline.process([message])
    rest = commands[200:]
    print("--- per batch (Pipeline.process in a loop; returns and 体温)")
    for size in (1, 4):
        for round_ in (1, 2):
            batches = [rest[i * size:(i + 1) * size] for i in range(100)]
            rest = rest[100 * size:]
            t0, c0 = time.perf_counter(), time.process_time()
            for batch in batches:
                await app.pipeline.process(batch)
            wall = (time.perf_counter() - t0) / len(batches) * 1000
            cpu = (time.process_time() - c0) / len(batches) * 1000
            print(f"  {size} command{'s' if size > 1 else ''} a batch, round {round_}: "
                  f"wall {wall:.2f} ms, CPU {cpu:.2f} ms a batch")
    await app.stop()


async def run_ptb(url: str, spec: chainfile.ChainSpec, sims: list[Sim], *, verify: bool,
                  errors: ErrorCounter, rate: float | None) -> Result:
    """python-telegram-bot's Application (sequential updates, its default) running the same
    handler with one commit per message."""
    import telegram
    from telegram.ext import Application, MessageHandler, filters

    run = await set_up(f"python-telegram-bot {telegram.__version__} (commit per message)",
                       url, spec, sims, batch_max=None, verify=verify)
    app, result = run.app, run.result
    updates = telegram_updates(run.messages)
    by_update = {u.update_id: m for u, m in zip(updates, run.messages, strict=True)}
    done = asyncio.Event()
    count = 0

    async def on_update(update: Any, _context: Any) -> None:
        nonlocal count
        try:
            if await own_transaction(app, by_update[update.update_id],
                                     app._write_replies, run.send_reply):
                result.transactions += 1
        finally:
            count += 1
            if count == len(updates):
                done.set()

    ptb = (Application.builder().token("1:bench").request(OfflineRequest())
           .get_updates_request(OfflineRequest()).updater(None).build())
    ptb.add_handler(MessageHandler(filters.ALL, on_update))

    async def drop(_message: IncomingMessage) -> None:
        return None  # the bot's own echoes: a Telegram bot does not see its own messages

    await run.transport.start(drop)
    await app.sender.start([""])
    await ptb.initialize()
    await ptb.start()

    async def feed(k: int) -> None:
        ptb.update_queue.put_nowait(updates[k])

    async def handled() -> None:
        await done.wait()

    try:
        return await measured(run, feed, handled, rate, errors)
    finally:
        await ptb.stop()
        await ptb.shutdown()


async def run_naive(url: str, spec: chainfile.ChainSpec, sims: list[Sim], *, verify: bool,
                    errors: ErrorCounter, rate: float | None) -> Result:
    """The same loop without a framework: a queue and one task, one commit per message."""
    run = await set_up("plain loop (commit per message)", url, spec, sims, batch_max=None,
                       verify=verify)
    app, result = run.app, run.result
    queue: asyncio.Queue[IncomingMessage] = asyncio.Queue()

    async def on_message(message: IncomingMessage) -> None:
        queue.put_nowait(message)  # the transport's callback; the bot's echoes arrive too

    async def consume() -> None:
        while True:
            message = await queue.get()
            try:
                if await own_transaction(app, message, app._write_replies,
                                         run.send_reply):
                    result.transactions += 1
            finally:
                queue.task_done()

    await run.transport.start(on_message)
    await app.sender.start([""])
    task = asyncio.create_task(consume())

    async def feed(k: int) -> None:
        await run.transport.inject(run.messages[k])

    try:
        return await measured(run, feed, queue.join, rate, errors)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--people", type=int, default=0,
                   help="tenants registered before the run (not timed): the store's size")
    p.add_argument("--steps", action="store_true",
                   help="time every event-loop step and print the longest (adds CPU per step)")
    p.add_argument("--rate", type=float, default=None,
                   help="open loop: offer this many messages a second (default: all at once)")
    p.add_argument("--db", type=Path, default=None,
                   help="SQLite file of the first run (the others use PATH-ptb, PATH-naive); "
                        "default: a temporary directory")
    p.add_argument("--db-url", default=None,
                   help="postgresql+asyncpg://USER@HOST:PORT/DB instead of SQLite (its public "
                        "schema is dropped and re-created before each run)")
    p.add_argument("--landlords", type=int, default=200)
    p.add_argument("--tenants", type=int, default=5000, help="tenant contact ids available")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--batch-max", type=int, default=None,
                   help="override pipeline.batch_max (default: the settings' default)")
    p.add_argument("--lanes", type=int, default=None,
                   help="override pipeline.lanes (default: the settings' default, 4 on "
                        "PostgreSQL; always 1 on SQLite)")
    p.add_argument("--statement-turn", type=float, default=None,
                   help="override store.STATEMENT_TURN, seconds (SQLite: the longest run of "
                        "statements before the loop is handed back; 1000 = never)")
    p.add_argument("--runs", default="pipeline,ptb",
                   help="comma-separated, in order: pipeline, ptb, naive (default pipeline,ptb);"
                        " or batches: what one batch costs alone (no sender)")
    p.add_argument("--no-sender", action="store_true",
                   help="do not start the outbox sender (replies stay queued): inbound alone")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the committed-before-reply check (it costs one query per reply, "
                        "which is excluded from the figures anyway)")
    p.add_argument("--profile", type=Path, default=None,
                   help="write a pyinstrument profile (text) of the pipeline run to this file")
    args = p.parse_args(argv)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if unknown := set(args.runs) - {"pipeline", "ptb", "naive", "batches"}:
        p.error(f"--runs: unknown {', '.join(sorted(unknown))}")
    return args


def ensure_ptb() -> None:
    """python-telegram-bot is a bench-only dependency: install the `bench` extra if missing."""
    try:
        import telegram  # noqa: F401
    except ImportError:
        # The extra's requirements only: installing the project itself would replace an
        # editable install.
        root = Path(__file__).resolve().parent.parent
        with open(root / "pyproject.toml", "rb") as f:
            wanted = tomllib.load(f)["project"]["optional-dependencies"]["bench"]
        print(f"installing the bench extra: {' '.join(wanted)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *wanted], check=True)


async def main(argv: list[str] | None = None) -> int:
    bulk.throwaway_keys()
    args = parse_args(argv)
    if "ptb" in args.runs or args.profile:
        ensure_ptb()
    global SENDER, STEPS, PEOPLE, LANES
    LANES = args.lanes
    SENDER = not args.no_sender and "batches" not in args.runs
    STEPS = args.steps
    PEOPLE = args.people
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.WARNING)
    if args.db_url:
        url = Settings(database_url=args.db_url).database_url
        urls = dict.fromkeys(("pipeline", "ptb", "naive"), url)
        where = url.split("@")[-1]
    else:
        base = args.db or Path(tempfile.mkdtemp(prefix="tierbot-bench-")) / "bench.db"
        urls = {"pipeline": f"sqlite+aiosqlite:///{base}",
                "ptb": f"sqlite+aiosqlite:///{base}-ptb",
                "naive": f"sqlite+aiosqlite:///{base}-naive"}
        where = f"SQLite {base} (+ -ptb, -naive), WAL, synchronous=FULL"

    spec = big_chain(args.landlords)
    sims = make_messages(args.messages, n_landlords=args.landlords, tenant_pool=args.tenants,
                         seed=args.seed)
    kinds: dict[str, int] = {}
    for s in sims:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    stray = sum(1 for s in sims if s.kind == "chatter" and preparse(
        IncomingMessage(TRANSPORT, "x", s.room, s.sender, s.name, s.text, START),
        ("小助手", "tierbot")) is not None)
    print(f"store: {where}")
    print(f"chain: demo chain + {N_TEAMS} teams, {args.landlords} landlord nodes with groups; "
          f"{args.tenants} tenant contact ids; {args.people} tenants registered before")
    print(f"messages: {len(sims)} (seed {args.seed}): " + ", ".join(
        f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
        + f"; chatter the parser takes for a command: {stray} (counted as commands below)")
    print(f"offered: {'all at once' if args.rate is None else f'{args.rate:g} messages/s, open loop'}"
          f"; outbox sender {'running' if SENDER else 'not started'}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, cpus {os.cpu_count()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    results: dict[str, Result] = {}
    for name in args.runs:
        if name == "pipeline":
            profiler = None
            if args.profile:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="disabled")
            results[name] = await run_pipeline(
                urls[name], spec, sims, batch_max=args.batch_max, verify=not args.no_verify,
                errors=errors, rate=args.rate, profile=profiler)
            if profiler is not None:
                args.profile.write_text(profiler.output_text(show_all=False))
                print(f"  profile written to {args.profile}")
        elif name == "batches":
            await run_batches(urls["pipeline"], spec, sims)
            continue
        elif name == "ptb":
            results[name] = await run_ptb(urls[name], spec, sims, verify=not args.no_verify,
                                          errors=errors, rate=args.rate)
        else:
            results[name] = await run_naive(urls[name], spec, sims, verify=not args.no_verify,
                                            errors=errors, rate=args.rate)
        results[name].show()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if errors.first:
        print("first errors logged:\n  " + "\n  ".join(errors.first))
    if "pipeline" in results and len(results) > 1:
        pipe = results["pipeline"]
        print("--- comparison (pipeline against each other run)")
        for name, other in results.items():
            if name == "pipeline":
                continue
            ratio = (pipe.commands / pipe.wall) / (other.commands / other.wall)
            cpu_ratio = (other.cpu / max(other.commands, 1)) / (pipe.cpu / max(pipe.commands, 1))
            print(f"  {name}: commands/s {ratio:.2f}x, CPU per command {cpu_ratio:.2f}x less "
                  f"(goal against ptb: at least 5x)")
            same = {k: (pipe.rows[k], other.rows[k]) for k in COUNTED}
            mismatch = [k for k in MUST_MATCH if same[k][0] != same[k][1]]
            print("    rows pipeline/" + name + ": "
                  + ", ".join(f"{k} {a}/{b}" for k, (a, b) in same.items()))
            print(f"    same TenantStay, TemperatureReading, InboundMessage counts: "
                  f"{'yes' if not mismatch else 'NO: ' + ', '.join(mismatch)}")
        ok_commit = all(r.verified == r.replies and not r.unverified for r in results.values())
        print(f"  every reply left after its record was committed: "
              f"{'yes' if ok_commit else 'NO' if not args.no_verify else 'not checked'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
