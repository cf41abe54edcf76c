"""Failover with the fake clock: an account banned mid-broadcast, its groups moved to their
fallback with their pending rows (every group gets the notice, none twice where an echo was
recorded), moved back once it has recovered for a while; `tierbot groups move` by hand."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.services import failover, outbox, watchdog
from bot.transports.base import AccountState
from models import BotAccount, Group, Node, OutboxMessage, OutboxStatus
from schedules.jobs import watch_accounts
from tests.conftest import Chat, DemoChain
from tests.fake_accounts import Accounts
from tests.test_cli import Cli

NOTICE = "【通知#1】"
BELOW = ("changchun@chatroom", "team1@chatroom", "team1-landlords@chatroom", "dong@chatroom",
         "ying@chatroom", "shoprow1@chatroom")


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, transport="memory", api={"token": "test-token"},
                    pacing={"min_gap_seconds": 0, "jitter_seconds": 0}, scheduler=False,
                    watchdog={"failover_after_minutes": 0, "failback_after_minutes": 30,
                              "silent_minutes": 600})


@pytest.fixture
def transport() -> Accounts:
    return Accounts()


async def bind(bot: BotApp, chain: DemoChain) -> None:
    """Tier 1 on the official channel; every other group on wx-a with wx-b as fallback."""
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).values(account="wx-a", fallback_account="wx-b"))
        await s.execute(update(Group).where(Group.room_id == chain.subdistrict_group)
                        .values(account="official", fallback_account=""))


async def tick(bot: BotApp, clock: FakeClock, minutes: float = 1) -> None:
    clock.advance(timedelta(minutes=minutes))
    await watch_accounts(bot)
    await bot.idle()


async def bindings(bot: BotApp) -> dict[str, tuple[str, str, str]]:
    async with bot.session() as s:
        return {room: (account, fallback, moved) for room, account, fallback, moved in (
            await s.execute(select(Group.room_id, Group.account, Group.fallback_account,
                                   Group.moved_from))).tuples()}


def copies(transport: Accounts, head: str) -> dict[str, list[str]]:
    """Per room below tier 1, the accounts that sent a text starting with `head`."""
    out: dict[str, list[str]] = {}
    for s in transport.sent:
        if s.text.startswith(head) and s.room_id in BELOW:
            out.setdefault(s.room_id, []).append(s.account)
    return out


@pytest.mark.parametrize("ban_after", [0, 2, 5])
async def test_a_ban_mid_broadcast_moves_the_groups_and_every_group_gets_the_notice_once(
        bot, chat: Chat, chain: DemoChain, transport: Accounts, clock, ban_after: int):
    await bind(bot, chain)
    # wx-a sends `ban_after` notices, then the next one goes out (and is echoed) but its answer
    # is lost to the ban; everything after that is refused.
    transport.ban_after["wx-a"] = ban_after
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到5级 今晚排查出租房")
    before = copies(transport, NOTICE)
    assert sum(len(v) for v in before.values()) == ban_after + 1
    assert all(accounts == ["wx-a"] for accounts in before.values())

    await tick(bot, clock)
    moved = await bindings(bot)
    assert all(moved[room] == ("wx-b", "wx-a", "wx-a") for room in BELOW)
    assert moved[chain.subdistrict_group] == ("official", "", "")
    # Retries wait their back-off, then go through wx-b, checked against echoes first.
    for _ in range(5):
        await tick(bot, clock, 2)
    sent = copies(transport, NOTICE)
    assert sorted(sent) == sorted(BELOW)
    assert all(len(accounts) == 1 for accounts in sent.values()), sent
    assert len(transport.sent_by("wx-a")) == ban_after + 1
    async with bot.session() as s:
        states = set((await s.execute(select(OutboxMessage.status).where(
            OutboxMessage.notice_id == 1))).scalars())
    assert states == {OutboxStatus.SENT}
    # The operator was told, through the official channel, never through wx-a.
    told = [(x.room_id, x.account, x.text) for x in transport.sent
            if x.text.startswith(("【账号告警】", "【通道切换】"))]
    assert [t[:2] for t in told] == [(chain.subdistrict_group, "official")] * 2
    assert "6 个群" in told[1][2] and "wx-b" in told[1][2]


async def test_groups_move_back_once_the_account_has_recovered_for_a_while(
        bot, chat: Chat, chain: DemoChain, transport: Accounts, clock):
    await bind(bot, chain)
    transport.down["wx-a"] = "账号被封禁"
    await tick(bot, clock)
    assert (await bindings(bot))[chain.team_group] == ("wx-b", "wx-a", "wx-a")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    assert copies(transport, NOTICE) == {chain.community_group: ["wx-b"],
                                         chain.team_group: ["wx-b"]}

    del transport.down["wx-a"]
    await tick(bot, clock)
    await tick(bot, clock, 20)
    assert (await bindings(bot))[chain.team_group] == ("wx-b", "wx-a", "wx-a")
    await tick(bot, clock, 10)
    back = await bindings(bot)
    assert all(back[room] == ("wx-a", "wx-b", "") for room in BELOW)
    switched = [x for x in transport.sent if x.text.startswith("【通道切换】")]
    assert len(switched) == 2 and "切回原通道" in switched[1].text
    assert switched[1].account == "official"
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 散会")
    assert copies(transport, "【通知#2】") == {chain.community_group: ["wx-a"],
                                             chain.team_group: ["wx-a"]}
    # Nothing moves again while it stays healthy.
    await tick(bot, clock, 60)
    assert len([x for x in transport.sent if x.text.startswith("【通道切换】")]) == 2


@pytest.mark.parametrize(("pause", "moves"), [(timedelta(minutes=30), False),
                                              (timedelta(hours=12), True)])
async def test_a_long_pause_is_down_and_fails_over(bot, chain: DemoChain, clock, pause,
                                                   moves: bool):
    await bind(bot, chain)
    async with bot.session() as s, s.begin():
        s.add(BotAccount(name="wx-a", paused_until=clock.now() + pause,
                         last_rate_limited_at=clock.now(), last_error="操作过于频繁"))
    await tick(bot, clock)
    assert (await bindings(bot))[chain.team_group][0] == ("wx-b" if moves else "wx-a")


async def test_a_fallback_that_is_down_too_is_not_moved_to(bot, chain: DemoChain,
                                                          transport: Accounts, clock):
    await bind(bot, chain)
    transport.down["wx-a"] = "disconnected"
    transport.down["wx-b"] = "disconnected"
    await tick(bot, clock)
    assert all(b[0] == "wx-a" for room, b in (await bindings(bot)).items() if room in BELOW)
    assert [x for x in transport.sent if x.text.startswith("【通道切换】")] == []


async def test_rows_being_sent_are_left_to_their_holder(bot, chain: DemoChain, clock):
    await bind(bot, chain)
    async with bot.session() as s, s.begin():
        team = (await s.execute(select(Group).where(Group.room_id == chain.team_group))
                ).scalar_one()
        for text in ("【提醒】一", "【提醒】二", "【提醒】三"):
            await outbox.queue(s, group_id=team.id, text=text, source="test", now=clock.now())
        ids = list((await s.execute(select(OutboxMessage.id).where(
            OutboxMessage.source == "test").order_by(OutboxMessage.id))).scalars())
        # One is in another process's hands, one has gone out already.
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == ids[0])
                        .values(status=OutboxStatus.SENDING, attempts=1,
                                attempt_at=clock.now()))
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == ids[1])
                        .values(status=OutboxStatus.SENT, sent_at=clock.now()))
        moved = await failover.fail_over(s, account="wx-a", down={"wx-a"})
        assert moved.rows == 1
        rows = dict((await s.execute(select(OutboxMessage.id, OutboxMessage.account).where(
            OutboxMessage.id.in_(ids)))).tuples().all())
    assert rows == {ids[0]: "wx-a", ids[1]: "wx-a", ids[2]: "wx-b"}


async def test_move_groups_by_hand_rebinds_and_pending_rows_follow(bot, chain: DemoChain,
                                                                   clock):
    await bind(bot, chain)
    async with bot.session() as s, s.begin():
        # The landlords' group was failed over already; the tenants' group waits with a row.
        await s.execute(update(Group).where(Group.room_id == chain.landlords_group)
                        .values(account="wx-b", fallback_account="wx-a", moved_from="wx-a"))
        dong = (await s.execute(select(Group).where(Group.room_id == chain.tenant_group))
                ).scalar_one()
        await outbox.queue(s, group_id=dong.id, text="【提醒】测试", source="test",
                           now=clock.now())
        team = (await s.execute(select(Node).where(Node.tier == 3))).scalars().first()
        assert team is not None
        moved = await failover.move_groups(s, source="wx-a", target="wecom-1",
                                           node_id=team.id)
    groups = await bindings(bot)
    assert moved.groups == 5 and moved.rows == 1
    assert groups[chain.team_group] == ("wecom-1", "wx-b", "")
    assert groups[chain.landlords_group] == ("wecom-1", "wx-b", "")
    assert groups[chain.community_group] == ("wx-a", "wx-b", "")       # outside the node
    async with bot.session() as s:
        assert set((await s.execute(select(OutboxMessage.account).where(
            OutboxMessage.source == "test"))).scalars()) == {"wecom-1"}


CHAIN_WITH_ACCOUNTS = """\
[[nodes]]
key = "xc"
name = "稠城街道"
kind = "subdistrict"
groups = [{ room = "xc@chatroom", title = "稠城街道指挥群", account = "wx-a" }]

[[nodes]]
key = "xm"
name = "下车门社区"
kind = "community"
parent = "xc"
groups = [{ room = "xm@chatroom", title = "下车门社区指挥群", account = "wx-a" }]

[[nodes]]
name = "下车门第三作战小组"
kind = "team"
parent = "xm"
groups = [{ room = "xm3@chatroom", title = "第三作战小组群", account = "wx-a" }]
"""

CONFIG = """\
[[wechaty.accounts]]
name = "wx-a"
endpoint = "127.0.0.1:1"
token = "not-a-real-token"

[[wechaty.accounts]]
name = "wecom-1"
endpoint = "127.0.0.1:2"
token = "not-a-real-token"
"""


def test_groups_move_cli(tmp_path: Path, db_url: str):
    cli = Cli(tmp_path)
    (tmp_path / "chain.toml").write_text(CHAIN_WITH_ACCOUNTS, encoding="utf-8")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    env = {"TIERBOT_DATABASE_URL": db_url}
    assert cli("chain", "import", "chain.toml", **env).returncode == 0
    refused = cli("groups", "move", "--from", "wx-a", "--to", "wx-zz", **env)
    assert refused.returncode == 2 and "wx-zz" in refused.stderr and "未知" in refused.stderr
    assert cli("groups", "move", "--from", "wx-a", "--to", "wx-a", **env).returncode == 2
    assert cli("groups", "move", "--from", "wx-a", "--to", "wecom-1", "--node", "无此节点",
               **env).returncode == 2
    moved = cli("groups", "move", "--from", "wx-a", "--to", "wecom-1", "--node", "下车门社区",
                **env)
    assert moved.returncode == 0, moved.stderr
    assert "已将 2 个群" in moved.stdout and "moved 2 groups from wx-a to wecom-1" in moved.stdout
    again = cli("groups", "move", "--from", "wx-a", "--to", "wecom-1", **env)
    assert again.returncode == 0 and "moved 1 groups" in again.stdout
    status = cli("status", **env)
    assert status.returncode == 0 and "not-a-real-token" not in status.stdout + status.stderr


async def test_the_default_account_is_one_account_under_two_names(bot, chain: DemoChain,
                                                                  clock):
    """Groups naming "" are on the default account ("main"): when it is banned they fail
    over, and no alert goes out through "" (which is "main" again)."""
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).values(account="", fallback_account="wx-b"))
        await s.execute(update(Group).where(Group.room_id == chain.subdistrict_group)
                        .values(account="", fallback_account=""))
        report = await watchdog.run(
            s, settings=bot.settings.watchdog, seen={}, transport="sim", now=clock.now(),
            zone=bot.settings.zone, default_account="main", states=[
                AccountState("main", connected=False, last_error="账号被封禁"),
                AccountState("wx-b", connected=True), AccountState("official", True)])
        alerts = (await s.execute(select(OutboxMessage.account).where(
            OutboxMessage.source == "watchdog"))).scalars().all()
    assert "" not in {h.name for h in report.health}
    assert report.moved == len(BELOW)
    groups = await bindings(bot)
    assert all(groups[room] == ("wx-b", "main", "main") for room in BELOW)
    assert groups[chain.subdistrict_group] == ("", "", "")
    assert alerts and set(alerts) <= {"official", "wx-b"}


class Gated(Accounts):
    """wx-a's sends wait at a gate: a send is in flight while the watchdog fails it over."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def send(self, room_id, text, *, mentions=(), account=""):  # type: ignore[no-untyped-def]
        if account == "wx-a" and not self.gate.is_set() and account not in self.down:
            self.waiting.set()
            await self.gate.wait()
            return await self._send(room_id, text, mentions, account)
        return await super().send(room_id, text, mentions=mentions, account=account)


async def test_rows_in_flight_during_a_failover_finish_with_their_holder_then_follow(
        settings: Settings, clock):
    transport = Gated()
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock)
    async with running(app):
        assert await load_demo_chain(app)
        chain = DemoChain()
        await bind(app, chain)
        await transport.inject(transport.message(chain.subdistrict_group, chain.commander,
                                                 "通知 到5级 今晚排查出租房"))
        await asyncio.wait_for(transport.waiting.wait(), timeout=30)
        # wx-a has claimed its rows (`sending`) and one send is in the air: it goes down now.
        transport.down["wx-a"] = "账号被封禁"
        await watch_accounts(app)
        async with app.session() as s:
            moving = (await s.execute(select(OutboxMessage.account, OutboxMessage.status)
                                      .where(OutboxMessage.notice_id == 1))).tuples().all()
        assert all(a == "wx-a" for a, status in moving if status == OutboxStatus.SENDING)
        transport.gate.set()
        await app.idle()
        for _ in range(4):
            await tick(app, clock, 2)
        sent = copies(transport, NOTICE)
        assert sorted(sent) == sorted(BELOW)
        assert all(len(accounts) == 1 for accounts in sent.values()), sent
        assert sorted(a for accounts in sent.values() for a in accounts) == (
            ["wx-a"] + ["wx-b"] * (len(BELOW) - 1))


async def test_the_unnamed_account_is_never_failed_over_nor_back(bot, chain: DemoChain):
    """"" in `moved_from` means "not moved": failing back "" must not take every group."""
    await bind(bot, chain)
    before = await bindings(bot)
    async with bot.session() as s, s.begin():
        assert await failover.fail_back(s, account="") == failover.Moved()
        assert await failover.fail_over(s, account="", down={""}) == failover.Moved()
    assert await bindings(bot) == before
