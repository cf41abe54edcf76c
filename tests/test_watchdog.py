"""The watchdog on every sending account, with the fake clock: each problem alerted once per
episode through another channel (never the failing one), cleared with a recovery message, and
not repeated after a restart."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import Console
from bot.services import watchdog
from bot.transports.base import AccountState
from models import AccountWatch, Group, InboundMessage, OutboxMessage
from schedules.jobs import watch_accounts
from tests.conftest import Chat, DemoChain, count
from tests.fake_accounts import Accounts

ALERT = "【账号告警】"
RECOVERED = "【账号恢复】"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, transport="memory", api={"token": "test-token"},
                    pacing={"min_gap_seconds": 0, "jitter_seconds": 0}, scheduler=False,
                    watchdog={"failover": False, "silent_minutes": 30, "min_expected": 2,
                              "test_rooms": {"wx-a": "selftest-a@chatroom"},
                              "self_test_every_minutes": 30, "self_test_timeout_minutes": 5})


@pytest.fixture
def transport() -> Accounts:
    return Accounts()


async def bind(bot: BotApp, chain: DemoChain, *, top: tuple[str, str] = ("official", ""),
               rest: tuple[str, str] = ("wx-a", "wx-b")) -> None:
    """Every group on `rest` (active, fallback), the tier-1 group on `top`."""
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).values(account=rest[0], fallback_account=rest[1]))
        await s.execute(update(Group).where(Group.room_id == chain.subdistrict_group)
                        .values(account=top[0], fallback_account=top[1]))


async def tick(bot: BotApp, clock: FakeClock, minutes: float = 1) -> watchdog.Report:
    """Time passes, the watchdog runs, the sender drains what it queued."""
    clock.advance(timedelta(minutes=minutes))
    report = await watch_accounts(bot)
    await bot.idle()
    return report


def said(transport: Accounts, head: str) -> list[tuple[str, str, str]]:
    """(room, account, text) of every operator message starting with `head`."""
    return [(s.room_id, s.account, s.text) for s in transport.sent if s.text.startswith(head)]


def about(account: str, messages: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The operator messages about one account."""
    return [m for m in messages if f"「{account}」" in m[2]]


async def health_of(bot: BotApp, name: str) -> tuple[str, tuple[str, ...]]:
    for a in await bot.account_status():
        if a.name == name:
            return a.health, a.problems
    raise AssertionError(name)


@pytest.mark.parametrize(("state", "problems"), [
    (AccountState("a", connected=True), []),
    (AccountState("a", connected=False, last_error="disconnected: UNAVAILABLE: refused"),
     ["unreachable"]),
    (AccountState("a", connected=False, last_error="UNAUTHENTICATED: invalid token"),
     ["token_rejected"]),
    (AccountState("a", connected=False, last_error="gateway error: token expired"),
     ["token_rejected"]),
    (AccountState("a", connected=False, last_error="账号被封禁"), ["banned"]),
    (AccountState("a", connected=False, last_error="logged out"), ["unreachable"]),
    # A connected account with an old error on record is not a problem.
    (AccountState("a", connected=True, last_error="UNAUTHENTICATED"), []),
])
def test_gateway_state_becomes_problems(state: AccountState, problems: list[str]):
    assert watchdog.state_problems(state) == problems


async def test_a_gateway_down_is_alerted_once_through_another_channel_then_recovered(
        bot, chain: DemoChain, transport: Accounts, clock):
    await bind(bot, chain)
    transport.down["wx-a"] = "disconnected: UNAVAILABLE: connection refused"
    report = await tick(bot, clock)
    assert report.alerted == [("wx-a", ("unreachable",))]
    alerts = said(transport, ALERT)
    assert [(room, account) for room, account, _ in alerts] == [
        (chain.subdistrict_group, "official")]
    assert "wx-a" in alerts[0][2] and "连不上网关" in alerts[0][2]
    assert await health_of(bot, "wx-a") == ("down", ("unreachable",))
    for _ in range(3):
        await tick(bot, clock)
    assert len(said(transport, ALERT)) == 1
    assert said(transport, RECOVERED) == []

    del transport.down["wx-a"]
    await tick(bot, clock)
    await tick(bot, clock)
    recovered = said(transport, RECOVERED)
    assert [(room, account) for room, account, _ in recovered] == [
        (chain.subdistrict_group, "official")]
    assert "wx-a" in recovered[0][2] and "4分钟" in recovered[0][2]
    assert await health_of(bot, "wx-a") == ("ok", ())

    # A new episode is a new alert.
    transport.down["wx-a"] = "disconnected"
    await tick(bot, clock)
    assert len(said(transport, ALERT)) == 2


@pytest.mark.parametrize(("down", "via"), [
    # The tier-1 group's own channel is the failing one: its fallback.
    ({"wx-a"}, {"wx-b"}),
    # Its fallback is down too: any healthy account.
    ({"wx-a", "wx-b"}, {"official"}),
    # Nothing healthy is left: nothing is queued (and nothing goes through a failing one).
    ({"wx-a", "wx-b", "official"}, set()),
])
async def test_an_alert_never_goes_through_a_failing_account(
        bot, chain: DemoChain, transport: Accounts, clock, down: set[str], via: set[str]):
    await bind(bot, chain, top=("wx-a", "wx-b"), rest=("wx-a", "wx-b"))
    for name in down:
        transport.down[name] = "gateway error: token expired"
    await tick(bot, clock)
    alerts = said(transport, ALERT)
    assert {account for _, account, _ in alerts} == via
    assert all(account not in down for _, account, _ in alerts)
    if via:
        assert {text.split("「")[1].split("」")[0] for _, _, text in alerts} == down
    else:
        assert await count(bot, OutboxMessage, OutboxMessage.source == "watchdog") == 0


async def test_a_restart_does_not_repeat_an_alert(bot, chain: DemoChain, transport: Accounts,
                                                  clock, settings: Settings):
    await bind(bot, chain)
    transport.down["wx-b"] = "UNAUTHENTICATED: token rejected"
    await tick(bot, clock)
    assert len(said(transport, ALERT)) == 1
    await bot.stop()

    again = Accounts()
    again.down["wx-b"] = "UNAUTHENTICATED: token rejected"
    restarted = build_app(settings, transport=again, clock=clock)
    again._now = clock.now
    async with running(restarted):
        for _ in range(3):
            await tick(restarted, clock)
        assert said(again, ALERT) == []
        assert await health_of(restarted, "wx-b") == ("down", ("token_rejected",))
        del again.down["wx-b"]
        await tick(restarted, clock)
        await tick(restarted, clock)
        assert len(said(again, RECOVERED)) == 1


async def _history(bot: BotApp, chain: DemoChain, clock: FakeClock, *, per_day: int) -> None:
    """Commands from the team group at this time of day on each of the last seven days."""
    async with bot.session() as s, s.begin():
        for day in range(1, 8):
            for i in range(per_day):
                s.add(InboundMessage(transport="sim", message_id=f"old-{day}-{i}",
                                     room_id=chain.team_group, sender_id=chain.team_member,
                                     command="report",
                                     received_at=clock.now() + timedelta(minutes=20)
                                     - timedelta(days=day, minutes=i)))


@pytest.mark.parametrize(("per_day", "rate", "alerted"), [
    (3, 0.0, True),     # normally busy at this hour: silence is a problem
    (1, 0.0, False),    # normally quiet: silence is normal
    (0, 0.0, False),    # no history at all
    (0, 6.0, True),     # a configured minimum rate stands for the history
])
async def test_silence_is_a_problem_only_where_the_groups_normally_talk(
        bot, chat: Chat, chain: DemoChain, transport: Accounts, clock, per_day: int,
        rate: float, alerted: bool):
    bot.settings.watchdog.min_rate_per_hour = rate
    await bind(bot, chain)
    await _history(bot, chain, clock, per_day=per_day)
    await tick(bot, clock)          # first sight: silence counted from now
    await tick(bot, clock, 29)
    assert said(transport, ALERT) == []
    await tick(bot, clock, 2)
    alerts = about("wx-a", said(transport, ALERT))
    assert len(alerts) == (1 if alerted else 0)
    if not alerted:
        return
    assert alerts[0][1] != "wx-a" and "收不到群消息" in alerts[0][2]
    await tick(bot, clock, 10)
    assert len(about("wx-a", said(transport, ALERT))) == 1

    # Someone talks on wx-a (chatter: no command, nothing stored but the activity).
    message = transport.message(chain.team_group, chain.team_member, "大家辛苦了")
    await transport.inject(dataclasses.replace(message, account="wx-a"))
    await bot.idle()
    await tick(bot, clock)
    assert len(about("wx-a", said(transport, RECOVERED))) == 1
    assert await health_of(bot, "wx-a") == ("ok", ())


async def test_the_self_test_needs_its_echo_back(bot, chain: DemoChain, transport: Accounts,
                                                 clock):
    await bind(bot, chain)
    report = await tick(bot, clock)
    assert report.probes == 1
    probes = [s for s in transport.sent if s.room_id == "selftest-a@chatroom"]
    assert [p.account for p in probes] == ["wx-a"] and probes[0].text.startswith("【自检】")
    await tick(bot, clock)
    async with bot.session() as s:
        watch = await s.get(AccountWatch, "wx-a")
        assert watch is not None and watch.probe_ok_at is not None and not watch.probe_failed

    transport.mute.add("wx-a")      # sends go out, nothing comes back
    await tick(bot, clock, 29)
    assert len([s for s in transport.sent if s.room_id == "selftest-a@chatroom"]) == 2
    await tick(bot, clock, 4)
    assert said(transport, ALERT) == []
    await tick(bot, clock, 1)
    alerts = said(transport, ALERT)
    assert len(alerts) == 1 and alerts[0][1] != "wx-a" and "自检" in alerts[0][2]
    assert await health_of(bot, "wx-a") == ("degraded", ("self_test_failed",))
    await tick(bot, clock, 10)
    assert len(said(transport, ALERT)) == 1

    transport.mute.clear()
    await tick(bot, clock, 20)      # the next probe is due 30 minutes after the last
    await tick(bot, clock)
    assert len(said(transport, RECOVERED)) == 1
    assert await health_of(bot, "wx-a") == ("ok", ())


async def test_a_probe_of_an_account_that_cannot_send_is_withdrawn_not_piled_up(
        bot, chain: DemoChain, transport: Accounts, clock):
    await bind(bot, chain)
    transport.down["wx-a"] = "disconnected"
    await tick(bot, clock)
    for _ in range(12):
        await tick(bot, clock, 5)
    async with bot.session() as s:
        waiting = (await s.execute(select(OutboxMessage.text).where(
            OutboxMessage.room_id == "selftest-a@chatroom",
            OutboxMessage.status == "pending"))).scalars().all()
    assert len(waiting) <= 1
    assert [s for s in transport.sent if s.room_id == "selftest-a@chatroom"] == []
    problems = (await health_of(bot, "wx-a"))[1]
    assert set(problems) == {"unreachable", "self_test_failed"}
    # One alert for each problem of the episode, none repeated.
    assert len(said(transport, ALERT)) == 2


@pytest.mark.parametrize("muted", [True, False])
async def test_sends_without_echo_are_a_problem(bot, chat: Chat, chain: DemoChain,
                                                transport: Accounts, clock, muted: bool):
    bot.settings.watchdog.test_rooms = {}
    await bind(bot, chain)
    if muted:
        transport.mute.add("wx-a")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到5级 今晚排查出租房")
    assert len([t for t in transport.sent_by("wx-a") if t.startswith("【通知#1】")]) >= 3
    await tick(bot, clock, 3)
    assert said(transport, ALERT) == []         # within the grace time
    await tick(bot, clock, 3)
    alerts = said(transport, ALERT)
    if not muted:
        assert alerts == []
        return
    assert len(alerts) == 1 and alerts[0][1] == "official" and "没有回显" in alerts[0][2]
    assert await health_of(bot, "wx-a") == ("degraded", ("no_echo",))
    # Out of the window: the problem clears.
    await tick(bot, clock, 60)
    assert len(said(transport, RECOVERED)) == 1


async def test_the_console_shows_each_accounts_health(bot, chain: DemoChain,
                                                      transport: Accounts):
    await bind(bot, chain)
    transport.down["wx-b"] = "UNAUTHENTICATED: token rejected"
    out = io.StringIO()
    assert await Console(bot, transport, out).handle("/accounts")  # type: ignore[arg-type]
    shown = out.getvalue().splitlines()
    assert "  wx-b: down (token_rejected)" in shown and "  wx-a: ok" in shown


async def test_a_process_that_does_not_drive_the_account_leaves_its_problems_standing(
        bot, chain: DemoChain, transport: Accounts, clock):
    await bind(bot, chain)
    transport.down["wx-a"] = "disconnected: UNAVAILABLE"
    await tick(bot, clock)
    assert len(said(transport, ALERT)) == 1
    # Another process's run (PostgreSQL, several processes): it drives no account and hears
    # nothing, so it neither clears wx-a nor alerts again.
    for _ in range(2):
        clock.advance(MINUTE)
        async with bot.session() as s, s.begin():
            report = await watchdog.run(s, settings=bot.settings.watchdog, states=[], seen={},
                                        transport="sim", now=clock.now(),
                                        zone=bot.settings.zone)
        assert (report.alerts, report.recoveries) == (0, 0)
    assert await health_of(bot, "wx-a") == ("down", ("unreachable",))
    await tick(bot, clock)
    await bot.idle()
    assert len(said(transport, ALERT)) == 1 and said(transport, RECOVERED) == []
