"""The sender under database faults: every database step is a named fault point; whichever
fails, what was claimed is released or settled, the worker backs off, every group gets the
notice once, nothing is marked 补发 that was never sent, and a long outage is reported."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot import faults, texts
from bot.sender import FAULT_POINTS
from bot.transports.base import TransportError
from models import OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain, count

NOTICE = "【通知#1】开会"
# The groups 通知 到3级 reaches from the subdistrict (demo chain).
TARGETS = ["changchun@chatroom", "team1@chatroom"]


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    faults.disarm()
    yield
    faults.disarm()


def deliveries(transport) -> Counter[str]:
    return Counter(s.room_id for s in transport.sent if s.text.startswith("【通知#1】")
                   and "提示" not in s.text and "已发出" not in s.text)


async def drain(bot, clock, *, steps: int = 12, step: float = 70.0) -> None:
    """Move time in steps long enough for any back-off and retry, letting the sender run."""
    for _ in range(steps):
        clock.advance(timedelta(seconds=step))
        await bot.idle()


async def statuses(bot) -> list[tuple[str, bool]]:
    async with bot.session() as s:
        return [tuple(r) for r in (await s.execute(
            select(OutboxMessage.status, OutboxMessage.resend)
            .where(OutboxMessage.notice_id.is_not(None)).order_by(OutboxMessage.id))).all()]


@pytest.mark.parametrize("point", [p for p in FAULT_POINTS
                                   if p not in ("sender.load", "sender.reconcile")])
@pytest.mark.parametrize("times", [1, 3])
async def test_a_failing_step_delays_but_never_loses_or_doubles(
        bot, chat: Chat, chain: DemoChain, clock, transport, point, times):
    faults.arm(point, times=times)
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    await drain(bot, clock)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]
    assert await statuses(bot) == [(OutboxStatus.SENT, False)] * len(TARGETS)
    assert not any("补发" in s.text for s in transport.sent)


@pytest.mark.parametrize("point", ["sender.claim", "sender.claim_mark"])
async def test_a_failed_claim_leaves_nothing_sending_and_later_sends_work(
        bot, chat: Chat, chain: DemoChain, clock, transport, point):
    """The reported stall: after one failed claim every later send raised, rows stayed
    `sending`, and a restart 补发-ed all of them."""
    faults.arm(point)
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.SENDING) == 0
    await drain(bot, clock, steps=2, step=2)
    assert sorted(deliveries(transport)) == TARGETS
    # A second notice after the fault: it goes out too.
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 再开会")
    assert sorted(s.room_id for s in transport.sent if s.text == "【通知#2】再开会") == TARGETS


async def test_a_failed_mark_keeps_the_outcome_and_never_resends(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    faults.arm("sender.settle", times=4)
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    # Sent, but the database does not know yet: the rows are still `sending`, none resent.
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.SENDING) >= 1
    await drain(bot, clock)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]
    assert await statuses(bot) == [(OutboxStatus.SENT, False)] * len(TARGETS)


async def test_killed_with_marks_unwritten_the_restart_uses_the_echoes(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    bot.settings.pacing.min_gap_seconds = 3
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    faults.arm("sender.settle", times=-1)
    await drain(bot, clock, steps=3, step=3)
    sent_before = deliveries(transport)
    # One went out; its mark never reached the database, so the worker claims nothing more.
    assert sum(sent_before.values()) == 1
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.SENDING) == 1
    # The "kill": the worker's memory is gone, the database still says `sending`.
    bot.sender._unsettled.clear()
    await bot.sender.stop()
    faults.disarm()
    await bot.sender.start()
    await drain(bot, clock, steps=4, step=3)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]
    assert not any("补发" in s.text for s in transport.sent)


@pytest.mark.parametrize("point", ["sender.load", "sender.reconcile"])
async def test_a_start_that_fails_can_be_retried(bot, chat: Chat, chain: DemoChain, clock,
                                                 transport, point):
    await bot.sender.stop()
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    faults.arm(point)
    with pytest.raises(faults.InjectedFault):
        await bot.sender.start()
    await bot.sender.start()
    await drain(bot, clock, steps=2)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]


async def test_a_long_outage_is_reported_to_the_operator_and_the_sender(
        bot, chat: Chat, chain: DemoChain, clock, transport, caplog):
    faults.arm("sender.claim", times=-1)
    with caplog.at_level(logging.ERROR, logger="bot.sender"):
        await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
        await drain(bot, clock, steps=8)
    assert any("stuck since" in r.getMessage() for r in caplog.records)
    assert deliveries(transport) == Counter()
    faults.disarm()
    await drain(bot, clock, steps=2)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]
    notes = [s for s in transport.sent if s.room_id == chain.subdistrict_group
             and "数据库故障" in s.text]
    assert len(notes) == 1 and notes[0].text.startswith("【通知#1】提示：")
    assert notes[0].mentions == (chain.commander,)
    assert texts.Notice.STUCK.split("{duration}")[1] in notes[0].text


async def test_killed_inside_a_claimed_batch_the_restart_sends_each_once(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    """Paced with a short gap, one claim takes several rows, each waiting its turn in
    `sending`. Killed between two of them (the first sent, its mark unwritten): the restart
    confirms the first by its echo and sends the rest once, keeping the gap."""
    bot.settings.pacing.min_gap_seconds = 0.1
    bot.settings.pacing.jitter_seconds = 0
    times: list[datetime] = []
    send = transport.send

    async def timed(room_id, text, **kwargs):  # type: ignore[no-untyped-def]
        sent = await send(room_id, text, **kwargs)
        times.append(clock.now())
        return sent

    transport.send = timed
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    # The reply to the commander went first; one gap later, the notice's first row.
    clock.advance(timedelta(seconds=0.1))
    await bot.idle()
    first = [room for room, n in deliveries(transport).items() if n]
    assert len(first) == 1
    # Both rows were claimed by one claim: the second waits its turn, still `sending`.
    assert await count(bot, OutboxMessage,
                       OutboxMessage.status == OutboxStatus.SENDING) == len(TARGETS)
    sender = bot.sender
    tasks = [*sender._workers.values(), *sender._helpers]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task
    sender._workers.clear()
    sender._wakes.clear()
    sender._unsettled.clear()
    sender._busy.clear()
    sender._started = False
    sender.pacers.clear()
    await sender.start()
    await drain(bot, clock, steps=3, step=0.5)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]
    assert not any("补发" in s.text for s in transport.sent if s.room_id == first[0])
    assert len(times) == len(transport.sent)
    assert all((b - a).total_seconds() >= 0.1 - 1e-6 for a, b in itertools.pairwise(times))
    assert [status for status, _ in await statuses(bot)] == [OutboxStatus.SENT] * len(TARGETS)


@pytest.mark.parametrize("error", [TransportError("connection lost"), RuntimeError("boom")])
async def test_a_failed_attempt_inside_a_batch_keeps_the_gap_before_the_next_send(
        bot, chat: Chat, chain: DemoChain, clock, transport, error: Exception):
    """A send that failed may still have gone out (connection lost after the request left):
    the next row of the same claimed batch waits a whole gap after it, as after a send."""
    bot.settings.pacing.min_gap_seconds = 0.1
    bot.settings.pacing.jitter_seconds = 0
    attempts: list[datetime] = []
    send = transport.send

    async def failing_first(room_id, text, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(clock.now())
        if text.startswith("【通知#1】") and len(attempts) == 2:
            raise error  # the first notice row (the reply to the commander went first)
        return await send(room_id, text, **kwargs)

    transport.send = failing_first
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    for _ in range(6):
        clock.advance(timedelta(seconds=0.05))
        await bot.idle()
    # The reply, the failed attempt, then the second row: each a whole gap after the last.
    assert len(attempts) >= 3
    assert all((b - a).total_seconds() >= 0.1 - 1e-6
               for a, b in itertools.pairwise(attempts)), attempts
    await drain(bot, clock, steps=3, step=30.0)
    assert sorted(deliveries(transport).items()) == [(room, 1) for room in TARGETS]
