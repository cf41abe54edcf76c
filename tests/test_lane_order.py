"""The lanes' order, attacked with random traffic (Pipeline._next_batch): several lanes, rooms
in each, questions that read other rooms' writes among ordinary messages and the bot's own
echoes, batches that take random turns to finish. Whatever the interleaving, every message is
handled once, each room's in arrival order, every question only after everything that arrived
before it, and nothing waits forever. Only the batch's work is replaced (by a recorder):
this is the scheduler alone, without a database, so no store is faked."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from bot.config import Settings
from bot.pipeline import Handling, Parsed, Pipeline
from bot.router import Dispatcher
from bot.transports.base import IncomingMessage
from bot.transports.memory import MemoryTransport
from handlers import ROUTERS

GUARD = 10.0
DISPATCHER = Dispatcher(ROUTERS)

# (room, kind): kind 0 an ordinary message, 1 a question (进度), 2 the bot's own echo
traffic = st.lists(st.tuples(st.integers(0, 7), st.sampled_from([0, 0, 0, 1, 2])),
                   min_size=1, max_size=60)


class Recording(Pipeline):
    """A pipeline whose batches only record what they took, finishing after random turns."""

    def __init__(self, *, lanes: int, batch_max: int, linger: float, seed: int):
        super().__init__(handling=Handling(settings=Settings(), dispatcher=DISPATCHER,
                                           clock_now=datetime.now),
                         sessions=None,  # type: ignore[arg-type]
                         send_reply=None,  # type: ignore[arg-type]
                         bot_names=(), batch_max=batch_max, echo_linger=linger, lanes=lanes)
        self.rng = random.Random(seed)
        self.order: dict[str, int] = {}  # message id → arrival number (echoes: none)
        self.rooms: dict[str, str] = {}
        self.started: list[str] = []
        self.finished: set[str] = set()
        self.broken: list[str] = []

    async def process(self, batch: Sequence[IncomingMessage],
                      parsed: Sequence[Parsed | None] | None = None) -> None:
        for k, message in enumerate(batch):
            ident = message.message_id
            self.started.append(ident)
            if ident not in self.order:
                continue  # an echo: nothing waits for it
            arrival = self.order[ident]
            earlier = [i for i, n in self.order.items() if n < arrival]
            # Handled: committed, or before it in its own batch (one transaction).
            before = {m.message_id for m in batch[:k]}
            if any(i not in self.finished and i not in before for i in earlier
                   if self.rooms[i] == self.rooms[ident]):
                self.broken.append(f"{ident} before an earlier message of its room")
            # A question sees every earlier write.
            if message.text == "进度" and any(i not in self.finished and i not in before
                                              for i in earlier):
                self.broken.append(f"question {ident} before an earlier message")
        for _ in range(self.rng.randrange(6)):
            await asyncio.sleep(0)
        self.finished |= {m.message_id for m in batch}


async def _run(messages: list[tuple[int, int]], lanes: int, batch_max: int, linger: float,
               seed: int) -> Recording:
    pipeline = Recording(lanes=lanes, batch_max=batch_max, linger=linger, seed=seed)
    transport = MemoryTransport("sim", bot_id="sim-bot")
    running = asyncio.create_task(pipeline.run())
    try:
        for k, (room, kind) in enumerate(messages):
            message = transport.message(f"room{room}@chatroom", f"person{room}",
                                        ["收到", "进度", "【通知#1】x"][kind],
                                        message_id=f"m{k}")
            if kind == 2:
                message = dataclasses.replace(message, is_self=True, sender_id="sim-bot")
            else:
                pipeline.order[message.message_id] = len(pipeline.order)
                pipeline.rooms[message.message_id] = message.room_id
            await pipeline.submit(message)
            for _ in range(pipeline.rng.randrange(3)):
                await asyncio.sleep(0)
        await asyncio.wait_for(pipeline.idle(), GUARD)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    return pipeline


@given(traffic, st.integers(1, 4), st.integers(1, 8), st.sampled_from([0.0, 0.001]),
       st.integers(0, 2**32))
@examples(max_examples=150, deadline=None)
def test_every_message_is_handled_once_in_its_rooms_order_questions_after_all_before(
        messages: list[tuple[int, int]], lanes: int, batch_max: int, linger: float,
        seed: int) -> None:
    pipeline = asyncio.run(_run(messages, lanes, batch_max, linger, seed))
    assert pipeline.broken == []
    assert sorted(pipeline.started) == sorted(f"m{k}" for k in range(len(messages)))
    assert pipeline.queued() == 0 and not pipeline.has_pending()


def test_a_question_waits_but_its_lane_goes_on_with_other_rooms() -> None:
    """Two lanes; the question's lane takes the later messages of its other rooms before
    the question, which waits for the other lane's earlier message."""

    async def scenario() -> list[str]:
        pipeline = Recording(lanes=2, batch_max=8, linger=0.0, seed=0)
        transport = MemoryTransport("sim", bot_id="sim-bot")
        go = asyncio.Event()
        process = pipeline.process

        async def holding(batch: Any, parsed: Any = None) -> None:
            if any(m.message_id == "early" for m in batch):
                await go.wait()
            await process(batch, parsed)

        pipeline.process = holding  # type: ignore[method-assign]
        lane_of = {room: pipeline._lane_index(transport.message(room, "x", "x"))
                   for room in (f"room{k}@chatroom" for k in range(20))}
        other = next(r for r, lane in lane_of.items() if lane == 1)
        [asked, beside] = [r for r, lane in lane_of.items() if lane == 0][:2]
        running = asyncio.create_task(pipeline.run())
        for room, words, ident in ((other, "收到", "early"), (asked, "进度", "question"),
                                   (asked, "收到", "behind"), (beside, "收到", "beside")):
            message = transport.message(room, "p", words, message_id=ident)
            pipeline.order[ident] = len(pipeline.order)
            pipeline.rooms[ident] = room
            await pipeline.submit(message)
        for _ in range(20):
            await asyncio.sleep(0)
        seen = list(pipeline.started)
        go.set()
        await asyncio.wait_for(pipeline.idle(), GUARD)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert pipeline.broken == []
        assert pipeline.started.index("question") < pipeline.started.index("behind")
        return seen

    assert asyncio.run(scenario()) == ["beside"]  # "early" still held
