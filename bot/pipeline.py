"""Inbound messages -> dedupe -> context -> parse -> authorise -> handler -> reply.

Messages that arrive together are handled in one transaction (one commit, one fsync), each in
its own SAVEPOINT so a failing message rolls back alone; replies leave only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.config import Settings
from bot.domain import UserError
from bot.grammar import Command, ParseError, normalise, parse
from bot.router import Context, Dispatcher, Reply
from bot.services import chain, people
from bot.transports.base import IncomingMessage
from bot.services.notice import digest
from models import Echo, InboundMessage

log = logging.getLogger(__name__)

SendReply = Callable[[IncomingMessage, Reply], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message worth a database visit: a command, or a command with bad arguments."""

    message: IncomingMessage
    command: Command | None
    error: ParseError | None

    @property
    def name(self) -> str:
        if self.command is not None:
            return type(self.command).__name__
        return f"!{self.error.command if self.error else '?'}"


def preparse(message: IncomingMessage, bot_names: Sequence[str]) -> Parsed | None:
    """Pure first step: None for chatter and the bot's own echoes (they never are commands)."""
    if message.is_self:
        return None
    text = normalise(message.text, bot_names=bot_names)
    try:
        command = parse(text)
    except ParseError as exc:
        return Parsed(message, None, exc)
    return Parsed(message, command, None) if command is not None else None


class Handling:
    """The per-message logic, usable in a shared (batched) or an own transaction."""

    def __init__(self, *, settings: Settings, dispatcher: Dispatcher,
                 clock_now: Callable[[], datetime],
                 on_schedule: Callable[[Any], None] | None = None):
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock_now = clock_now
        self.on_schedule = on_schedule

    async def _record(self, session: AsyncSession, item: Parsed, now: datetime) -> int | None:
        msg = item.message
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(InboundMessage).values(
            transport=msg.transport, message_id=msg.message_id, room_id=msg.room_id,
            sender_id=msg.sender_id, command=item.name[:32], received_at=now,
        ).on_conflict_do_nothing(index_elements=["transport", "message_id"]).returning(
            InboundMessage.id)
        return (await session.execute(stmt)).scalar_one_or_none()

    async def handle(self, session: AsyncSession, item: Parsed,
                     after_commit: list[Callable[[], None]] | None = None) -> Reply | None:
        """Run one message inside the caller's transaction; None means: say nothing."""
        now = self.clock_now()
        inbound_id = await self._record(session, item, now)
        if inbound_id is None:
            log.info("duplicate message %s ignored", item.message.message_id)
            return None
        if item.error is not None:
            return Reply(item.error.hint)
        assert item.command is not None
        msg = item.message
        spec = self.dispatcher.spec_for(item.command)
        if spec is None:
            return None
        group = await chain.group_by_room(session, transport=msg.transport, room_id=msg.room_id)
        sender = await people.find_by_contact(session, transport=msg.transport,
                                              contact_id=msg.sender_id)
        held = await people.held_roles(session, person_id=sender.id) if sender else []
        ctx = Context(session=session, message=msg, settings=self.settings,
                      clock_now=self.clock_now, group=group,
                      node=group.node if group else None, sender=sender, memberships=held,
                      inbound_id=inbound_id, specs=self.dispatcher.specs,
                      on_schedule=self.on_schedule)
        if after_commit is not None:
            ctx.after_commit = after_commit
        keyword = getattr(item.command, "keyword", type(item.command).__name__)
        if spec.quiet and not spec.allowed(ctx):
            return None
        if spec.needs_group and ctx.node is None:
            return Reply(texts.General.GROUP_NOT_BOUND)
        if spec.tiers is not None and (ctx.node is None or ctx.node.tier not in spec.tiers):
            where = "、".join(texts.TIER_NAMES[t] for t in sorted(spec.tiers))
            return Reply(texts.General.WRONG_GROUP.format(command=keyword, where=where))
        if not spec.allowed(ctx):
            return Reply(texts.General.NOT_PERMITTED.format(command=keyword))
        try:
            # A failing handler rolls back its own effects only, never the batch's.
            mark = len(ctx.after_commit)
            async with session.begin_nested():
                result = await spec.func(item.command, ctx)
        except UserError as exc:
            del ctx.after_commit[mark:]
            return Reply(exc.text)
        except Exception:
            del ctx.after_commit[mark:]
            log.exception("handler %s failed on message %s", item.name, msg.message_id)
            return Reply(texts.General.INTERNAL_ERROR)
        if result is None:
            return None
        return result if isinstance(result, Reply) else Reply(result)


class Pipeline:
    """Consumes inbound messages in batches: one transaction per batch, then the replies."""

    def __init__(self, *, handling: Handling, sessions: async_sessionmaker[AsyncSession],
                 send_reply: SendReply, bot_names: Sequence[str], batch_max: int,
                 after_commit: Callable[[], None] | None = None):
        self.handling = handling
        self.sessions = sessions
        self.send_reply = send_reply
        self.bot_names = tuple(bot_names)
        self.batch_max = batch_max
        self.after_commit = after_commit
        self._queue: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        self._unfinished = 0

    async def submit(self, message: IncomingMessage) -> None:
        """The transport's callback: queue a message (handled in arrival order)."""
        self._unfinished += 1
        self._queue.put_nowait(message)

    def has_pending(self) -> bool:
        """Whether messages wait to be handled or are being handled."""
        return self._unfinished > 0

    async def idle(self) -> None:
        """Wait until every submitted message has been handled and answered."""
        await self._queue.join()

    async def run(self) -> None:
        """Forever: take what has arrived (up to batch_max), handle it, answer it. Cancelling
        it is safe only while it waits for messages (see BotApp.stop)."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.process(batch)
            except Exception:
                log.exception("batch of %d messages failed", len(batch))
            finally:
                for _ in batch:
                    self._unfinished -= 1
                    self._queue.task_done()

    async def process(self, batch: Sequence[IncomingMessage]) -> None:
        """Handle a batch: echoes recorded, chatter dropped, commands in one transaction."""
        items: list[Parsed] = []
        echoes: list[IncomingMessage] = []
        for message in batch:
            if message.is_self:
                # Only tagged texts (notices, alerts) can be in the outbox; replies are not.
                if message.text.startswith("【"):
                    echoes.append(message)
                continue
            item = preparse(message, self.bot_names)
            if item is not None:
                items.append(item)
        if not items and not echoes:
            return
        started = time.perf_counter()
        after: list[Callable[[], None]] = []
        try:
            replies = await self._in_one_transaction(items, echoes, after)
        except Exception:
            # The shared commit failed: give each message its own transaction, so one
            # bad message cannot take the others down with it.
            log.exception("batch commit failed; retrying %d messages one by one", len(items))
            replies, after = [], []
            for one in [[e] for e in echoes] + [[i] for i in items]:
                try:
                    mine: list[Callable[[], None]] = []
                    if isinstance(one[0], Parsed):
                        replies += await self._in_one_transaction(one, [], mine)  # type: ignore[arg-type]
                    else:
                        await self._in_one_transaction([], one, mine)  # type: ignore[arg-type]
                    after += mine
                except Exception:
                    if isinstance(one[0], Parsed):
                        log.exception("message %s failed", one[0].message.message_id)
                        replies.append((one[0].message, Reply(texts.General.INTERNAL_ERROR)))
                    else:
                        log.exception("echo %s not recorded", one[0].message_id)
        log.debug("handled %d commands, %d echoes in %.1f ms", len(items), len(echoes),
                  (time.perf_counter() - started) * 1000)
        for callback in after:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")
        if self.after_commit is not None:
            self.after_commit()
        for message, reply in replies:
            try:
                await self.send_reply(message, reply)
            except Exception:
                log.exception("reply to message %s could not be sent", message.message_id)

    async def _in_one_transaction(
        self, items: Sequence[Parsed], echoes: Sequence[IncomingMessage],
        after: list[Callable[[], None]],
    ) -> list[tuple[IncomingMessage, Reply]]:
        out: list[tuple[IncomingMessage, Reply]] = []
        async with self.sessions() as session, session.begin():
            if echoes:
                now = self.handling.clock_now()
                await session.execute(insert(Echo.__table__), [
                    {"transport": e.transport, "room_id": e.room_id, "digest": digest(e.text),
                     "message_id": e.message_id, "at": now} for e in echoes])
            for item in items:
                reply = await self.handling.handle(session, item, after)
                if reply is not None:
                    out.append((item.message, reply))
        return out
