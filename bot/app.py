"""BotApp: wires settings, store, transport, pipeline and sender; the only place that picks
a concrete transport."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import crypto, hot, pii, store, texts
from bot.channels import registry, sources
from bot.channels.base import InboundSource, OutboundChannel
from bot.clock import Clock, SystemClock
from bot.config import ConfigError, Settings
from bot.outbound import MaskingTransport
from bot.pipeline import Handling, Pipeline, Queued
from bot.router import Dispatcher, Reply
from bot.scheduler import Scheduler
from bot.sender import OutboxSender, ReplyGate
from bot.services import ack, credential, health, outbox, watchdog
from bot.transports.base import IncomingMessage, RoomEvent, Transport
from handlers import ROUTERS
from models import NoticeSchedule

log = logging.getLogger(__name__)

# SIGTERM to exit: a service manager's default stop timeout is longer (systemd 90 s,
# docker 10 s); the bot stays within the shorter one.
STOP_SECONDS = 8.0
# How long a reconcile waits for the pipeline to record the echoes already received.
RECONCILE_WAITS_FOR_ECHOES = 5.0


def make_transport(settings: Settings, clock: Clock) -> Transport:
    """The transport the settings name."""
    from bot.transports.memory import MemoryTransport

    if settings.transport == "memory":
        return MemoryTransport("memory", now=clock.now)
    if settings.transport == "sim":
        from bot.transports.sim import SimTransport

        return SimTransport(now=clock.now)
    if settings.transport == "wechaty":
        if not settings.wechaty.accounts:
            raise ConfigError("wechaty.accounts: the wechaty transport needs at least one bot "
                              "account (name, endpoint, token of its gateway)")
        from bot.transports.wechaty import WechatyTransport

        return WechatyTransport(settings.wechaty, now=clock.now)
    raise ConfigError(f"transport: unknown transport {settings.transport!r}")


# Lanes on PostgreSQL unless the settings say otherwise (PipelineSettings.lanes).
DEFAULT_LANES = 4


def pipeline_lanes(setting: int, engine: AsyncEngine) -> int:
    """The pipeline's lanes: one on SQLite (one writer at a time), else the setting or, for
    0, DEFAULT_LANES."""
    if engine.dialect.name == "sqlite":
        return 1
    return setting or DEFAULT_LANES


class BotApp:
    """One running bot: a store, a transport, the inbound pipeline and the outbox sender."""

    def __init__(self, settings: Settings, *, transport: Transport, clock: Clock,
                 engine: AsyncEngine, channels: Mapping[str, OutboundChannel] | None = None):
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = store.sessionmaker(engine)
        # Long reads (统计 of a city, the console's figures) run here: on SQLite a read-only
        # engine of their own, off the event loop; elsewhere the engine itself.
        self.reader = store.create_reader(engine)
        self.read_sessions: async_sessionmaker[AsyncSession] = store.sessionmaker(
            self.reader or engine)
        self.dispatcher = Dispatcher(ROUTERS)
        self.scheduler = Scheduler(self) if settings.scheduler else None
        self.handling = Handling(settings=settings, dispatcher=self.dispatcher,
                                 clock_now=clock.now, on_schedule=self._schedule_changed)
        accounts = settings.wechaty.accounts if settings.transport == "wechaty" else []
        # Every send passes the masking seam, whatever sends it (replies, notices, notes).
        self.outbound = MaskingTransport(transport)
        self.sender = OutboxSender(sessions=self.sessions, transport=self.outbound, clock=clock,
                                   pacing=settings.pacing, zone=settings.zone,
                                   default_account=accounts[0].name if accounts else "")
        # Every sending credential by name: the transport's WeChat accounts now, the official
        # [[channels]] once their credentials are read at start (`load_channels`); channels
        # given here (tests, the demo) are used as they are.
        self._given_channels = dict(channels or {})
        # App bots' groups whose messages come in beside the transport's ([[sources]]).
        self.sources: list[InboundSource] = []
        self._started_sources: list[InboundSource] = []
        self.channels: dict[str, OutboundChannel] = registry.wechat(
            self.outbound, [a.name for a in accounts] or [""], settings.pacing)
        self.pipeline = Pipeline(handling=self.handling, sessions=self.sessions,
                                 send_reply=self._send_reply, bot_names=settings.bot_names,
                                 batch_max=settings.pipeline.batch_max,
                                 echo_linger=settings.pipeline.echo_linger_ms / 1000,
                                 after_commit=self.sender.wake,
                                 write_replies=self._write_replies,
                                 read_sessions=self.read_sessions,
                                 lanes=pipeline_lanes(settings.pipeline.lanes, engine))
        # An echo still waiting in the pipeline for company is recorded before the sender
        # decides whether a row left `sending` went out (else it would send it again).
        self.sender.before_reconcile = functools.partial(
            self.pipeline.record_echoes_now, RECONCILE_WAITS_FOR_ECHOES)
        # What arrives per account (the watchdog's silence check; the pipeline keeps no chatter).
        self.activity = watchdog.Activity()
        self.reply_gate = ReplyGate(per_minute=settings.pacing.commands_per_minute,
                                    quiet_minutes=settings.pacing.flood_quiet_minutes)
        self._lock: store.FileLock | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def _schedule_changed(self, schedule: NoticeSchedule) -> None:
        if self.scheduler is None:
            return
        if schedule.cancelled_at is not None:
            self.scheduler.remove(schedule.id)
        else:
            self.scheduler.add(schedule)

    async def _on_room_event(self, event: RoomEvent) -> None:
        async with self.session() as session, session.begin():
            queued = await health.room_event(session, event=event, now=self.now())
        log.warning("room %s: %s (%d notes queued)", event.room_id, event.kind, queued)
        if queued:
            self.sender.wake()

    async def account_status(self) -> list[health.AccountStatus]:
        """Each sending account: connected, logged in as, paused until, last error."""
        async with self.session() as session:
            return await health.account_status(
                session, states=self.transport.account_states(), now=self.now())

    def session(self) -> AsyncSession:
        """A new database session (use `async with app.session() as s, s.begin():`)."""
        return self.sessions()

    def read_session(self) -> AsyncSession:
        """A session for a long read that must not hold up the bot (`async with
        app.read_session() as s, s.begin():`): read-only on SQLite, where it runs off the
        event loop and beside the writer; it sees what was committed when it began."""
        return self.read_sessions()

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.clock.now()

    async def _write_replies(self, session: AsyncSession,
                             pairs: list[tuple[IncomingMessage, Reply]]) -> None:
        """Replies join the outbox in the command's transaction (one way out: the paced
        sender). A contact sending too many commands gets one warning, then silence."""
        now = self.now()
        drafts = []
        for message, reply in pairs:
            verdict = self.reply_gate.admit((message.transport, message.sender_id), now)
            if verdict == "quiet":
                log.info("reply to %s withheld: too many commands", message.message_id)
                continue
            text, mentions = reply.text, reply.mentions
            if verdict == "warn":
                text = texts.General.FLOOD.format(
                    minutes=round(self.settings.pacing.flood_quiet_minutes))
                mentions = (message.sender_id,)
            drafts.append(outbox.ReplyDraft(message.transport, message.room_id,
                                            message.account, text, mentions))
        if drafts:
            self.sender.replies_written()
        await outbox.queue_replies(session, replies=drafts, now=now,
                                   known=self.handling.rooms)

    async def _send_reply(self, message: IncomingMessage, reply: Reply) -> None:
        if not isinstance(reply, Queued):
            # A reply made outside a command's transaction (the internal-error apology).
            self.sender.replies_written()
            async with self.session() as session, session.begin():
                await outbox.queue_replies(session, now=self.now(), replies=[outbox.ReplyDraft(
                    message.transport, message.room_id, message.account, reply.text,
                    reply.mentions)])
        self.sender.wake()

    async def open_store(self) -> None:
        """Take the SQLite file lock and bring the schema up to date."""
        path = self.settings.sqlite_path
        if path is not None and self._lock is None:
            lock = store.FileLock(path)
            lock.acquire()
            self._lock = lock
        await store.upgrade(self.engine)

    async def load_channels(self) -> dict[str, OutboundChannel]:
        """Build the official channels from [[channels]] and the inbound sources from
        [[sources]] with their stored credentials (channels given to build_app win), and hand
        the channels to the sender."""
        entries = [e for e in self.settings.channels if e.name not in self._given_channels]
        built: dict[str, OutboundChannel] = {}
        if entries or self.settings.sources:
            async with self.session() as session:
                stored = await credential.open_all(session)
            built = registry.official(entries, stored)
            self.sources = sources.configured(self.settings.sources, stored)
            del stored
        official = {**built, **self._given_channels}
        self.channels.update(official)
        self.sender.channels.update(official)
        # What each binding can do, for the services that word and count acknowledgements
        # (进度, 收到 #id elsewhere, the signed link) by capability.
        for name, channel in self.channels.items():
            ack.declare(name, channel)
        for name, channel in official.items():
            log.info("channel %r: %s, %d/min, %d bytes", name, channel.kind,
                     channel.limits.per_minute, channel.limits.max_body_bytes)
        return official

    async def start_sources(self) -> None:
        """Start delivering the [[sources]]' messages into the pipeline (after load_channels)."""
        for source in self.sources:
            if source not in self._started_sources:
                self._started_sources.append(source)
                await source.start(self._submit, self._on_room_event)

    async def start(self) -> None:
        """Open the store, start the pipeline and sender, then connect the transport."""
        await self.open_store()
        await self.load_channels()
        # Compiled now, not inside the first batches that use them (each held the loop).
        started = time.perf_counter()
        compiled = hot.warm(self.engine.dialect)
        log.info("%d hot statements compiled in %.0f ms", compiled,
                 (time.perf_counter() - started) * 1000)
        self._tasks = [asyncio.create_task(self.pipeline.run(), name="pipeline")]
        await self.transport.start(self._submit, self._on_room_event)
        await self.start_sources()
        # After the transport: reconciliation may ask it for echoes of unfinished sends.
        await self.sender.start([a.name for a in accounts] or [""]
                                if (accounts := self.settings.wechaty.accounts)
                                and self.settings.transport == "wechaty" else [""])
        if self.scheduler is not None:
            await self.scheduler.start()
        log.info("tierbot started: transport=%s store=%s", self.transport.name,
                 self.engine.url.render_as_string(hide_password=True))

    async def idle(self) -> None:
        """Wait until inbound messages are handled and the outbox is drained."""
        while True:
            await self.pipeline.idle()
            self.sender.wake()
            await asyncio.sleep(0)
            await self.sender.idle()
            if not self.pipeline.has_pending():
                return

    async def _submit(self, message: IncomingMessage) -> None:
        self.activity.seen(message)
        if self._stopping:
            # Stopping: the pipeline is draining; what arrives now is not started.
            log.warning("stopping: message %s in %s not handled", message.message_id,
                        message.room_id)
            return
        await self.pipeline.submit(message)

    async def stop(self) -> None:
        """Stop in order, within STOP_SECONDS in all: no new jobs, no new messages, the
        messages in hand answered, the sends in flight finished and marked (no new claims),
        then disconnect and release the store."""
        self._stopping = True
        try:
            if self.scheduler is not None:
                await self.scheduler.stop()
            # A task cancelled inside a transaction would leave its connection to the garbage
            # collector: let the pipeline finish what it has, while the transport still sends.
            self.pipeline.hurry()  # echoes waiting for company are recorded now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pipeline.idle(), timeout=STOP_SECONDS / 2)
            await self.pipeline.cancel_later()  # long reads still going: no answer
            await self.sender.stop(timeout=STOP_SECONDS / 3)
            for source in self._started_sources:
                await source.stop()
            self._started_sources = []
            await self.transport.stop()
            ack.forget_declarations()
            for channel in self.channels.values():
                close = getattr(channel, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks = []
            if self.reader is not None:
                await self.reader.dispose()
            await self.engine.dispose()
        finally:
            self._stopping = False
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def build_app(settings: Settings, *, transport: Transport | None = None,
              clock: Clock | None = None,
              channels: Mapping[str, OutboundChannel] | None = None) -> BotApp:
    """A BotApp for these settings; tests pass a memory transport, a fake clock and (for
    official channels) channels built in memory."""
    clock = clock or SystemClock()
    # No keys, no start: personal numbers are never stored in the clear (MissingKeyError says
    # what to do). The keys are the process's, like the public numbers below.
    keyring = crypto.load(settings.keys)
    if keyring.rotating:
        log.warning("a key rotation to %s is unfinished: run `tierbot keys rotate` again",
                    keyring.active)
    crypto.use(keyring)
    pii.set_public_numbers(settings.privacy.public_numbers)
    pii.mask_log_records()
    if settings.sqlite_path is not None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return BotApp(settings, transport=transport or make_transport(settings, clock), clock=clock,
                  engine=store.create_engine(settings.database_url), channels=channels)


@contextlib.asynccontextmanager
async def running(app: BotApp) -> AsyncIterator[BotApp]:
    """Start the app for the duration of the block."""
    try:
        await app.start()
    except BaseException:
        await app.stop()
        raise
    try:
        yield app
    finally:
        await app.stop()
