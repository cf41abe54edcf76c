"""The bot's own echoes (issue 13): a batch of nothing but echoes waits a little for more, so a
paced broadcast records them a few to a commit; a command ends the wait at once; stopping
records what waits. The linger is set to an hour here: a test that passed by waiting it out
would hang (and fail on its guard) instead."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import event

from bot.app import BotApp, build_app
from bot.clock import FakeClock
from bot.config import Settings
from bot.transports.base import IncomingMessage
from bot.transports.memory import MemoryTransport
from models import Echo
from tests.conftest import Chat, DemoChain, count

HOUR = 3600.0
GUARD = 60.0  # seconds before a wait that should end at once is called a hang

_ids = itertools.count(1)


def echo(app: BotApp, room: str) -> IncomingMessage:
    """The platform handing back a notice the bot sent to `room`."""
    return IncomingMessage(transport="sim", message_id=f"echo-{next(_ids)}", room_id=room,
                           sender_id="sim-bot", sender_name="bot",
                           text="【通知#7】请各房东今晚20:00前完成楼道消毒。", at=app.now(),
                           is_self=True)


async def taken(app: BotApp) -> None:
    """Until the pipeline has taken everything queued (it is lingering or handling it)."""
    async def wait() -> None:
        while app.pipeline.queued():
            await asyncio.sleep(0)
    await asyncio.wait_for(wait(), GUARD)
    for _ in range(5):
        await asyncio.sleep(0)


def commits_of(app: BotApp) -> list[int]:
    commits: list[int] = []
    event.listen(app.engine.sync_engine, "commit", lambda conn: commits.append(1))
    return commits


def test_the_linger_is_a_pipeline_setting_with_a_short_default():
    assert 0 < Settings().pipeline.echo_linger_ms <= 100
    assert Settings(pipeline={"echo_linger_ms": 0}).pipeline.echo_linger_ms == 0


async def test_echoes_arriving_one_by_one_share_one_commit(bot: BotApp, chain: DemoChain,
                                                           transport: MemoryTransport):
    bot.pipeline.echo_linger = HOUR
    bot.sender.wake = lambda: None  # type: ignore[method-assign]  # its commits are not ours
    commits = commits_of(bot)
    for room in (chain.tenant_group, chain.ying_group, chain.landlords_group):
        # Each arrives after the pipeline took the one before: without the linger, each
        # would be a batch, a transaction and a commit of its own.
        await transport.inject(echo(bot, room))
        await taken(bot)
    assert await count(bot, Echo) == 0  # still gathering
    commits.clear()
    bot.pipeline.hurry()  # instead of waiting the hour out
    await asyncio.wait_for(bot.pipeline.idle(), GUARD)
    assert len(commits) == 1
    assert await count(bot, Echo) == 3


async def _return_answered_during_a_linger(bot: BotApp, chain: DemoChain,
                                           transport: MemoryTransport) -> None:
    """An echo taken into a batch that lingers for an hour; then a return in its room,
    until the return is answered."""
    bot.pipeline.echo_linger = HOUR
    await transport.inject(echo(bot, chain.tenant_group))
    await taken(bot)
    mark = len(transport.sent)
    await transport.inject(transport.message(chain.tenant_group, chain.landlord,
                                             "租客返回 王明 13800138000 来自湖南长沙"))

    async def replied() -> None:
        while not [s for s in transport.sent[mark:] if s.text.startswith("已登记")]:
            await asyncio.sleep(0)
    await asyncio.wait_for(replied(), GUARD)


@pytest.mark.lanes(1)  # the echoes' lane is every room's
async def test_a_command_during_the_linger_is_handled_at_once(bot: BotApp, chat: Chat,
                                                              chain: DemoChain,
                                                              transport: MemoryTransport):
    await _return_answered_during_a_linger(bot, chain, transport)
    # The echo that was waiting went into the command's transaction, committed before the
    # reply left.
    assert await count(bot, Echo) == 1


async def test_a_command_in_another_lane_is_not_held_by_the_linger(
        bot: BotApp, chain: DemoChain, transport: MemoryTransport) -> None:
    """The default lanes (PostgreSQL: 4; the tenants' group is not in the echoes' lane): the
    return is answered while the echo goes on waiting for company in its own lane; the echo
    is recorded once nothing waits any more (here: hurried). On SQLite (one lane) the echo
    joins the return's batch."""
    await _return_answered_during_a_linger(bot, chain, transport)
    bot.pipeline.hurry()
    await asyncio.wait_for(bot.idle(), GUARD)
    assert await count(bot, Echo) == 1


async def test_stopping_during_the_linger_records_the_echoes(settings: Settings,
                                                             clock: FakeClock):
    transport = MemoryTransport("sim", bot_id="sim-bot")
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock)
    app.pipeline.echo_linger = HOUR
    await app.start()
    try:
        for room in ("a@chatroom", "b@chatroom"):
            await transport.inject(echo(app, room))
            await taken(app)
        assert await count(app, Echo) == 0
    finally:
        await asyncio.wait_for(app.stop(), GUARD)
    again = build_app(settings, transport=MemoryTransport("sim"), clock=clock)
    await again.open_store()
    try:
        assert await count(again, Echo) == 2
    finally:
        await again.stop()


async def test_no_linger_when_it_is_zero(bot: BotApp, chain: DemoChain,
                                         transport: MemoryTransport):
    bot.pipeline.echo_linger = 0
    await transport.inject(echo(bot, chain.tenant_group))

    async def recorded() -> None:
        while await count(bot, Echo) == 0:
            await asyncio.sleep(0.001)
    await asyncio.wait_for(recorded(), GUARD)


async def test_replies_echoes_are_not_waited_for(bot: BotApp, chat: Chat, chain: DemoChain):
    # A reply's echo is recorded nowhere: nothing to gather, so idle() does not wait.
    bot.pipeline.echo_linger = HOUR
    await asyncio.wait_for(chat.say(chain.tenant_group, chain.landlord,
                                    "租客返回 王明 13800138000 来自湖南长沙"), GUARD)
    assert chat.replies(chain.tenant_group)[0].startswith("已登记")
    assert await count(bot, Echo) == 0


async def test_a_reconcile_waits_for_a_lingering_echo_and_no_longer(bot: BotApp,
                                                                    chain: DemoChain,
                                                                    transport: MemoryTransport):
    # The sender, before it decides whether a row left `sending` went out, has this
    # process's echoes recorded: one waiting for company must not be missed (the row would
    # be sent twice), and the wait ends when it is recorded, not after the linger.
    bot.pipeline.echo_linger = HOUR
    bot.sender.wake = lambda: None  # type: ignore[method-assign]
    await transport.inject(echo(bot, chain.tenant_group))
    await taken(bot)
    assert await count(bot, Echo) == 0  # lingering
    assert bot.sender.before_reconcile is not None
    await asyncio.wait_for(bot.sender.before_reconcile(), GUARD)
    assert await count(bot, Echo) == 1
    # The next echo lingers again (the wait changed nothing lasting), and a reconcile
    # itself asks first.
    await transport.inject(echo(bot, chain.ying_group))
    await taken(bot)
    assert await count(bot, Echo) == 1
    await asyncio.wait_for(bot.sender.reconcile(), GUARD)
    assert await count(bot, Echo) == 2
    await asyncio.wait_for(bot.pipeline.record_echoes_now(GUARD), GUARD)  # nothing waiting


async def test_a_reconcile_does_not_wait_long_for_a_stuck_pipeline(bot: BotApp,
                                                                  chain: DemoChain,
                                                                  transport: MemoryTransport):
    bot.pipeline.echo_linger = HOUR
    release = asyncio.Event()
    process = bot.pipeline.process

    async def stuck(batch, parsed=None):  # type: ignore[no-untyped-def]
        await release.wait()
        await process(batch, parsed)

    bot.pipeline.process = stuck  # type: ignore[method-assign]
    await transport.inject(echo(bot, chain.tenant_group))
    await taken(bot)
    await asyncio.wait_for(bot.pipeline.record_echoes_now(0.05), GUARD)  # gives up, no hang
    release.set()
    await asyncio.wait_for(bot.pipeline.idle(), GUARD)
    assert await count(bot, Echo) == 1
