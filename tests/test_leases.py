"""Sender leases: each account is driven by one sender at a time under a fencing epoch.

Several senders share one database here (the app's own is stopped first), each as another
process would be: its own holder id, leases not exclusive (as on PostgreSQL; on SQLite the
file lock makes the app's sender exclusive, so these senders say `exclusive=False`). The
clock is fake, the database real (both kinds)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.app import BotApp
from bot.sender import Claimed, OutboxSender, Outcome
from bot.services import notice as notices
from models import AccountLease, Echo, Group, OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain

NOTICE = "【通知#1】开会"
TARGETS = ["changchun@chatroom", "team1@chatroom"]


def sender(bot: BotApp, holder: str) -> OutboxSender:
    """Another process's sender on the same database and platform."""
    return OutboxSender(sessions=bot.sessions, transport=bot.outbound, clock=bot.clock,
                        pacing=bot.settings.pacing, zone=bot.settings.zone, holder=holder,
                        exclusive=False)


async def settle(*senders: OutboxSender) -> None:
    """Let every worker of these senders run until none can do anything more now."""
    for _ in range(3):
        for s in senders:
            s.wake()
        await asyncio.sleep(0)
        for s in senders:
            await s.idle()


async def notice_rows(bot: BotApp) -> list[tuple[str, str, bool, str | None]]:
    async with bot.session() as s:
        return [tuple(r) for r in (await s.execute(
            select(Group.room_id, OutboxMessage.status, OutboxMessage.resend,
                   OutboxMessage.attempt_id).join(Group)
            .where(OutboxMessage.notice_id.is_not(None))
            .order_by(Group.room_id))).all()]


async def lease_row(bot: BotApp, account: str = "") -> tuple[str, int] | None:
    async with bot.session() as s:
        row = (await s.execute(select(AccountLease.holder, AccountLease.epoch).where(
            AccountLease.account == account))).first()
    return None if row is None else (row.holder, row.epoch)


def deliveries(transport) -> list[str]:
    return sorted(s.room_id for s in transport.sent if s.text.startswith("【通知#1】")
                  and "已发出" not in s.text)


async def queued(bot: BotApp, chat: Chat, chain: DemoChain) -> None:
    """The app's sender stopped (its lease released) and a notice to two groups queued."""
    await bot.sender.stop()
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    assert [r[1] for r in await notice_rows(bot)] == [OutboxStatus.PENDING] * 2


async def test_the_app_sender_holds_its_account_and_releases_it_on_stop(bot: BotApp):
    holder, epoch = await lease_row(bot) or ("", 0)
    assert holder == bot.sender.holder and bot.sender.held() == {"": epoch}
    await bot.sender.stop()
    assert bot.sender.held() == {}
    async with bot.session() as s:
        expires = (await s.execute(select(AccountLease.expires_at))).scalar_one()
    # Released: another process may take it over at once.
    assert expires <= bot.clock.now()
    other = sender(bot, "other")
    await other.start()
    try:
        assert other.held() == {"": epoch + 1}
    finally:
        await other.stop()


async def test_a_stale_epochs_marks_are_refused(bot: BotApp, chat: Chat, chain: DemoChain,
                                                clock, transport):
    await queued(bot, chat, chain)
    a, b = sender(bot, "a"), sender(bot, "b")
    lease = await a._acquire("")
    assert lease is not None
    claimed = [c for c in await a._claim("", clock.now(), 50, lease.epoch) if c.notice_id]
    assert sorted(c.room_id for c in claimed) == TARGETS
    # A stops renewing (a long GC pause, a frozen VM); its lease runs out and B takes over.
    clock.advance(timedelta(seconds=bot.settings.pacing.lease_seconds + 1))
    assert await b._acquire("") is not None
    assert await lease_row(bot) == ("b", lease.epoch + 1)
    # B reconciles what A left `sending`: no echo, so both are to be sent again (补发).
    confirmed, resent = await b.reconcile()
    assert confirmed == 0 and resent >= 2
    after_takeover = await notice_rows(bot)
    assert [(r[1], r[2]) for r in after_takeover] == [(OutboxStatus.PENDING, True)] * 2
    # A wakes up and reports both sent: refused, nothing changes, and A lets the account go.
    assert not a._may_send(claimed[0], "", clock.now())
    a._unsettled[""] = [Outcome("sent", c, clock.now()) for c in claimed]
    await a._settle("")
    assert await notice_rows(bot) == after_takeover
    assert a.held() == {} and a._unsettled[""] == []
    # Its claims are refused too (the mark carries the stale epoch): nothing becomes `sending`.
    assert await a._claim("", clock.now(), 50, lease.epoch) == []
    assert await notice_rows(bot) == after_takeover
    # A failure mark and a release under the stale epoch: refused as well.
    b_claimed = [c for c in await b._claim("", clock.now(), 50, lease.epoch + 1)
                 if c.notice_id]
    assert len(b_claimed) == 2
    stale = [replace(c, epoch=lease.epoch) for c in b_claimed]
    a._leases[""] = lease  # as if A still believed it held the account
    a._unsettled[""] = [Outcome("failed", stale[0], clock.now(), error="x"),
                        Outcome("release", stale[1], clock.now())]
    await a._settle("")
    assert [r[1] for r in await notice_rows(bot)] == [OutboxStatus.SENDING] * 2
    assert a.held() == {}
    # A's release (stopping) leaves B's lease alone.
    a._leases[""] = lease
    await a._release()
    async with bot.session() as s:
        row = (await s.execute(select(AccountLease))).scalar_one()
    assert (row.holder, row.epoch) == ("b", lease.epoch + 1) and row.expires_at > clock.now()
    # B's marks go through.
    b._unsettled[""] = [Outcome("sent", c, clock.now()) for c in b_claimed]
    await b._settle("")
    assert [r[1] for r in await notice_rows(bot)] == [OutboxStatus.SENT] * 2
    assert b.held() == {"": lease.epoch + 1}


async def test_a_process_at_start_does_not_touch_rows_of_accounts_it_does_not_hold(
        bot: BotApp, chat: Chat, chain: DemoChain, clock, transport):
    await queued(bot, chat, chain)
    a, b = sender(bot, "a"), sender(bot, "b")
    lease = await a._acquire("")
    assert lease is not None
    claimed = [c for c in await a._claim("", clock.now(), 50, lease.epoch) if c.notice_id]
    # One of A's two sends went out and was echoed; A is then "killed" (no release).
    first = next(c for c in claimed if c.room_id == TARGETS[0])
    await transport.send(first.room_id, NOTICE)
    async with bot.session() as s, s.begin():
        s.add(Echo(transport="sim", room_id=first.room_id, message_id="echo-1",
                   digest=notices.digest(NOTICE),
                   at=clock.now()))
    in_flight = await notice_rows(bot)
    assert [r[1] for r in in_flight] == [OutboxStatus.SENDING] * 2
    await b.start()
    try:
        # A's lease is alive: B holds nothing, resets nothing, sends nothing.
        assert b.held() == {}
        await settle(b)
        assert await notice_rows(bot) == in_flight
        assert deliveries(transport) == [TARGETS[0]]
        # Within the lease time after A's last renewal, B takes over (epoch + 1): the echoed
        # row is confirmed, the other sent once (补发: A had claimed it), none twice.
        clock.advance(timedelta(seconds=bot.settings.pacing.lease_seconds / 2))
        await settle(b)
        assert b.held() == {}
        clock.advance(timedelta(seconds=bot.settings.pacing.lease_seconds / 2 + 0.01))
        await settle(b)
        assert b.held() == {"": lease.epoch + 1}
        assert [r[1] for r in await notice_rows(bot)] == [OutboxStatus.SENT] * 2
        assert deliveries(transport) == TARGETS
        assert [s.text for s in transport.sent if s.room_id == TARGETS[1]
                and "通知#1" in s.text] == ["【通知#1】（补发）开会"]
    finally:
        await b.stop()


async def test_a_holder_keeps_its_epoch_while_it_renews(bot: BotApp, clock):
    before = bot.sender.held()
    lease_seconds = bot.settings.pacing.lease_seconds
    for _ in range(6):
        clock.advance(timedelta(seconds=lease_seconds / 3 + 0.01))
        await bot.idle()
    assert bot.sender.held() == before
    async with bot.session() as s:
        expires = (await s.execute(select(AccountLease.expires_at))).scalar_one()
    # Renewed by the worker (not only kept in memory): another sender cannot take it.
    assert expires > clock.now() + timedelta(seconds=lease_seconds / 2)
    other = sender(bot, "other")
    assert await other._acquire("") is None
    # Not renewed for longer than the lease (the database was down, say) but nobody took
    # it: still ours, same epoch.
    async with bot.session() as s, s.begin():
        await s.execute(update(AccountLease).values(expires_at=clock.now()))
    assert await bot.sender._acquire("") is not None
    assert bot.sender.held() == before


async def lease_expiry(bot: BotApp) -> datetime:
    async with bot.session() as s:
        return (await s.execute(select(AccountLease.expires_at))).scalar_one()


async def test_a_dead_holders_lease_written_before_the_clock_went_back_is_taken_in_a_lease_time(
        bot: BotApp, chat: Chat, chain: DemoChain, clock):
    await queued(bot, chat, chain)
    a, b = sender(bot, "a"), sender(bot, "b")
    lease = await a._acquire("")
    assert lease is not None
    # A dies holding the account; the clock had run an hour ahead and NTP steps it back. A's
    # row now says it expires in an hour and 15 s: B must not wait for that.
    lease_seconds = bot.settings.pacing.lease_seconds
    clock.set(clock.now() - timedelta(hours=1))
    assert await b._acquire("") is None
    clock.advance(timedelta(seconds=lease_seconds / 2))
    assert await b._acquire("") is None  # unchanged for half a lease only: A may be alive
    clock.advance(timedelta(seconds=lease_seconds / 2 + 0.01))
    taken = await b._acquire("")
    assert taken is not None and taken.epoch == lease.epoch + 1
    assert await lease_row(bot) == ("b", lease.epoch + 1)
    assert clock.now() < await lease_expiry(bot) <= clock.now() + timedelta(
        seconds=lease_seconds)
    # A's marks under its old epoch are refused (the fence), as for any lease taken over.
    assert await a._claim("", clock.now(), 50, lease.epoch) == []


async def test_a_live_holder_renews_on_time_when_its_clock_goes_back(bot: BotApp, clock):
    before = bot.sender.held()
    lease_seconds = bot.settings.pacing.lease_seconds
    other = sender(bot, "other")
    assert await other._acquire("") is None
    clock.set(clock.now() - timedelta(hours=1))
    for _ in range(6):
        # The worker's loop: renewed a third of a lease after the last renewal, not an hour
        # later (then its row would stay the same and the other sender take the account).
        clock.advance(timedelta(seconds=lease_seconds / 3 + 0.01))
        assert await bot.sender._hold("") is not None
        assert await other._acquire("") is None
    assert bot.sender.held() == before
    assert clock.now() < await lease_expiry(bot) <= clock.now() + timedelta(
        seconds=lease_seconds)


async def test_a_holder_whose_clock_goes_back_stops_sending_when_its_lease_runs_out(
        bot: BotApp, clock):
    lease = await bot.sender._hold("")
    assert lease is not None
    row = Claimed(id=1, room_id="r", group_title="", notice_id=None, text="x", mentions=[],
                  attempts=1, resend=False, urgent=False, epoch=lease.epoch)
    clock.set(clock.now() - timedelta(hours=1))
    assert bot.sender._may_send(row, "", clock.now())
    # Not renewed (its database calls fail, say) for two thirds of a lease: no more sends,
    # though the clock says the lease was taken an hour from now.
    clock.advance(timedelta(seconds=bot.settings.pacing.lease_seconds * 2 / 3 + 0.01))
    assert not bot.sender._may_send(row, "", clock.now())
