"""The Wechaty transport: one python-wechaty client per bot account, each talking gRPC to its
own Wechaty puppet service (the gateway). The only module that imports wechaty."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from bot.config import AccountSettings, WechatySettings
from bot.transports.base import (
    AccountState,
    InboundHandler,
    IncomingMessage,
    RoomEvent,
    RoomEventHandler,
    SentMessage,
    TransportError,
)

log = logging.getLogger(__name__)

TRANSPORT_NAME = "wechaty"
TEXT_TYPE = "MESSAGE_TYPE_TEXT"
# python-wechaty joins the @names of a mention with U+2005 (what WeChat itself puts after one).
MENTION_SEPARATOR = "\u2005"
# The platform's "too frequent" answers (发送消息过于频繁 / 操作过于频繁 and kin).
RATE_LIMIT_MARKERS = ("过于频繁", "操作频繁", "发送频繁", "too frequent", "rate limit")
# gRPC statuses that a retry cannot fix (bad room id, not a member, bad token, ...).
PERMANENT_STATUSES = frozenset({
    Status.INVALID_ARGUMENT, Status.NOT_FOUND, Status.ALREADY_EXISTS, Status.PERMISSION_DENIED,
    Status.FAILED_PRECONDITION, Status.OUT_OF_RANGE, Status.UNIMPLEMENTED,
    Status.UNAUTHENTICATED,
})
CONNECT_TIMEOUT_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 3.0
# Payload look-ups (message, contact, room) of one inbound event.
LOOKUP_TIMEOUT_SECONDS = 30.0
NAME_CACHE_MAX = 10_000


# --------------------------------------------------------------------------------------------
# pure parts: mapping and error classification (tested without a gateway)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageFields:
    """What the transport reads of one wechaty message: its payload and the talker's name."""

    message_id: str
    room_id: str
    talker_id: str
    talker_name: str
    text: str
    timestamp: float
    self_id: str
    mention_ids: tuple[str, ...] = ()
    room_topic: str = ""
    type_name: str = TEXT_TYPE


def timestamp_to_datetime(timestamp: float | None, default: datetime) -> datetime:
    """A puppet timestamp (seconds or milliseconds since the epoch) as an aware UTC time."""
    if not timestamp or timestamp <= 0:
        return default
    # Puppets disagree on the unit; python-wechaty uses the same cut (2038 in seconds).
    seconds = timestamp / 1000 if timestamp > 2_145_888_000 else timestamp
    return datetime.fromtimestamp(seconds, UTC)


def to_incoming(fields: MessageFields, *, account: str, received_at: datetime,
                transport: str = TRANSPORT_NAME) -> IncomingMessage | None:
    """The inbound model of a wechaty message; None for direct messages and non-text ones."""
    # The bot works in groups only; a direct message has no room and no chain node.
    if not fields.room_id or not fields.message_id or not fields.talker_id:
        return None
    if fields.type_name != TEXT_TYPE:
        return None
    is_self = bool(fields.self_id) and fields.talker_id == fields.self_id
    return IncomingMessage(
        transport=transport, message_id=fields.message_id, room_id=fields.room_id,
        sender_id=fields.talker_id, sender_name=fields.talker_name or fields.talker_id,
        text=fields.text or "", at=timestamp_to_datetime(fields.timestamp, received_at),
        mentions_bot=bool(fields.self_id) and fields.self_id in fields.mention_ids,
        is_self=is_self, account=account, room_topic=fields.room_topic,
        mention_ids=tuple(fields.mention_ids))


def room_left_event(*, room_id: str, removed_ids: Iterable[str], self_id: str,
                    timestamp: float | None, account: str, received_at: datetime,
                    transport: str = TRANSPORT_NAME) -> RoomEvent | None:
    """A 'left' RoomEvent when the bot itself is among the removed; None for other members."""
    if not self_id or self_id not in set(removed_ids):
        return None
    return RoomEvent(transport=transport, room_id=room_id, kind="left",
                     at=timestamp_to_datetime(timestamp, received_at), account=account)


def members_left_events(*, room_id: str, removed_ids: Iterable[str], self_id: str,
                        timestamp: float | None, account: str, received_at: datetime,
                        transport: str = TRANSPORT_NAME) -> list[RoomEvent]:
    """A 'member_left' RoomEvent for each removed member other than the bot."""
    at = timestamp_to_datetime(timestamp, received_at)
    return [RoomEvent(transport=transport, room_id=room_id, kind="member_left", at=at,
                      account=account, member_id=member_id)
            for member_id in dict.fromkeys(removed_ids) if member_id and member_id != self_id]


def room_renamed_event(*, room_id: str, old_topic: str, new_topic: str, timestamp: float | None,
                       account: str, received_at: datetime,
                       transport: str = TRANSPORT_NAME) -> RoomEvent:
    """A 'renamed' RoomEvent."""
    return RoomEvent(transport=transport, room_id=room_id, kind="renamed",
                     at=timestamp_to_datetime(timestamp, received_at), account=account,
                     old_topic=old_topic or "", new_topic=new_topic or "")


def mention_text(text: str, names: Sequence[str]) -> str:
    """The text with the @names in front, as python-wechaty's Room.say writes it."""
    names = [n for n in names if n]
    if not names:
        return text
    return MENTION_SEPARATOR.join("@" + n for n in names) + " " + text


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description of an error (gRPC status and message, or the type)."""
    if isinstance(exc, GRPCError):
        return f"{exc.status.name}: {exc.message or ''}".rstrip(": ")
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def classify_error(exc: BaseException) -> TransportError:
    """Turn what a send raised into a TransportError the sender can act on."""
    if isinstance(exc, TransportError):
        return exc
    text = describe_error(exc)
    status = exc.status if isinstance(exc, GRPCError) else None
    message = (exc.message or "") if isinstance(exc, GRPCError) else str(exc)
    if status == Status.RESOURCE_EXHAUSTED or any(
            marker in message.lower() for marker in RATE_LIMIT_MARKERS):
        return TransportError(f"rate limited: {text}", rate_limited=True, retryable=True)
    if status is not None:
        # UNAVAILABLE, DEADLINE_EXCEEDED, UNKNOWN, INTERNAL...: the gateway or the platform
        # hiccuped; the sender retries a bounded number of times.
        return TransportError(text, retryable=status not in PERMANENT_STATUSES)
    if isinstance(exc, OSError | StreamTerminatedError | ProtocolError):  # incl. timeouts
        return TransportError(f"gateway connection: {text}", retryable=True)
    if type(exc).__module__.startswith(("wechaty", "grpclib")):
        # python-wechaty's own state errors ("puppet_stub should not be none") happen while
        # a connection is being replaced: worth another try.
        return TransportError(text, retryable=True)
    return TransportError(text, retryable=False)


def reconnect_delay(failures: int, first: float, longest: float) -> float:
    """Seconds to wait before reconnect attempt number failures+1: first, doubling, capped."""
    return min(first * (2 ** max(failures, 0)), longest)


# --------------------------------------------------------------------------------------------
# loading python-wechaty (shims first)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Library:
    wechaty: Any
    wechaty_options: Any
    puppet_options: Any
    scheduler: Any


_LIBRARY: _Library | None = None


def _load_wechaty(cache_dir: str) -> _Library:
    """Import python-wechaty once, with the environment and shims it needs on Python 3.11."""
    global _LIBRARY
    if _LIBRARY is not None:
        return _LIBRARY
    path = Path(cache_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    # wechaty.config reads CACHE_DIR (process-wide) at import time and creates the directory;
    # otherwise it writes ./.wechaty wherever the bot was started.
    os.environ["CACHE_DIR"] = str(path)
    known_loggers = set(logging.root.manager.loggerDict)
    with warnings.catch_warnings():
        # wechaty-puppet-service and wechaty.plugin import telnetlib (deprecated in 3.11).
        warnings.filterwarnings("ignore", message="'telnetlib' is deprecated",
                                category=DeprecationWarning)
        from wechaty_puppet.schemas.puppet import PuppetOptions

        # WechatyOptions uses a PuppetOptions() as a dataclass default, which Python 3.11
        # rejects for unhashable (eq=True) dataclasses: give it identity hashing.
        if PuppetOptions.__hash__ is None:
            PuppetOptions.__hash__ = object.__hash__  # type: ignore[method-assign]
        import wechaty_puppet_service.puppet as service_module
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from wechaty import Wechaty, WechatyOptions

    # Its endpoint check is a blocking telnet (up to 3 s, in the event loop); we probe the
    # endpoint with an asyncio connection before each start instead.
    service_module.ping_endpoint = lambda end_point: True
    _adopt_loggers(set(logging.root.manager.loggerDict) - known_loggers)
    _LIBRARY = _Library(Wechaty, WechatyOptions, PuppetOptions, AsyncIOScheduler)
    return _LIBRARY


def _adopt_loggers(names: Iterable[str]) -> None:
    """Route python-wechaty's loggers through ours: masking filter, level, one format."""
    for name in names:
        logger = logging.root.manager.loggerDict.get(name)
        # wechaty_puppet.get_logger gives each logger its own stderr handler at INFO (message
        # texts included) and stops propagation, which would bypass the masking filter.
        if isinstance(logger, logging.Logger) and not logger.propagate:
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.WARNING)
    # It warns with the token on every connect ("there are endpoint<..> and token<..>").
    logging.getLogger("PuppetService").setLevel(logging.ERROR)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def _probe(endpoint: str) -> None:
    host, _, port = endpoint.rpartition(":")
    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
        _reader, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


# --------------------------------------------------------------------------------------------
# the transport
# --------------------------------------------------------------------------------------------


class _Account:
    """One bot account: its Wechaty instance, connection state and ordered event queue."""

    def __init__(self, spec: AccountSettings, bot: Any):
        self.spec = spec
        self.name = spec.name
        self.bot = bot
        self.puppet: Any = None  # the puppet of the live session, None between sessions
        self.self_id = ""
        # Whether the current session got as far as a login (resets the reconnect backoff).
        self.session_logged_in = False
        self.connected = False
        self.last_error = ""
        self.since: datetime | None = None
        # Events of one account are handled one at a time, in the order the gateway sent them
        # (pyee would otherwise run each as its own task, and replies could overtake).
        self.events: asyncio.Queue[tuple[Any, str, Any]] = asyncio.Queue()
        self.names: dict[str, str] = {}
        self.topics: dict[str, str] = {}
        self.tasks: list[asyncio.Task[None]] = []


class WechatyTransport:
    """Bot accounts on WeChat through Wechaty puppet services; reconnects with backoff."""

    def __init__(self, settings: WechatySettings, *, name: str = TRANSPORT_NAME,
                 now: Callable[[], datetime] | None = None, send_timeout_seconds: float = 30.0):
        if not settings.accounts:
            raise ValueError("wechaty.accounts: configure at least one bot account")
        names = [a.name for a in settings.accounts]
        if len(set(names)) != len(names):
            raise ValueError(f"wechaty.accounts: account names must differ (got {names})")
        self.name = name
        self.settings = settings
        self.send_timeout_seconds = send_timeout_seconds
        self._now = now or (lambda: datetime.now(UTC))
        self._specs = list(settings.accounts)
        self._accounts: dict[str, _Account] = {}
        self._on_message: InboundHandler | None = None
        self._on_event: RoomEventHandler | None = None
        self._changed = asyncio.Event()

    # -- protocol ------------------------------------------------------------------------------

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None:
        """Start one client per account; returns at once (logins may take a QR scan)."""
        if self._accounts:
            raise RuntimeError("transport already started")
        self._on_message = on_message
        self._on_event = on_event
        lib = _load_wechaty(self.settings.cache_dir)
        for spec in self._specs:
            options = lib.wechaty_options(
                name=f"tierbot-{spec.name}",
                # Per instance: python-wechaty otherwise reads one endpoint and token from
                # process-wide environment variables; options win over the environment.
                puppet_options=lib.puppet_options(end_point=spec.endpoint, token=spec.token),
                # The plugin web server is never started (we register no plugins and handle
                # login ourselves), but keep it off 0.0.0.0:5000 in case it ever is.
                host="127.0.0.1", port=_free_port(),
                # An in-memory scheduler instead of a job.db in the cache dir.
                scheduler=lib.scheduler())
            account = _Account(spec, lib.wechaty(options))
            self._accounts[spec.name] = account
            account.tasks = [
                asyncio.create_task(self._supervise(account), name=f"wechaty-{spec.name}"),
                asyncio.create_task(self._work(account), name=f"wechaty-{spec.name}-events"),
            ]

    async def stop(self) -> None:
        """Close every session (telling the gateways) and stop delivering."""
        accounts = list(self._accounts.values())
        tasks = [task for account in accounts for task in account.tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a session close waits at most STOP_TIMEOUT_SECONDS for the gateway.
            _done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS + 2)
            for task in pending:
                log.warning("wechaty: task %s did not stop", task.get_name())
        for account in accounts:
            account.tasks = []
        self._accounts = {}
        self._on_message = None
        self._on_event = None

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        """Send to a room by id through the account (default: the first), with mentions."""
        acc = self._account(account)
        puppet = acc.puppet
        if not acc.connected or puppet is None:
            raise TransportError(
                f"wechaty account {acc.name}: not connected"
                + (f" ({acc.last_error})" if acc.last_error else ""), retryable=True,
                not_sent=True)
        try:
            with _grpc_cancels():
                names = [await self._contact_name(acc, puppet, cid) for cid in mentions]
                async with asyncio.timeout(self.send_timeout_seconds):
                    message_id = await puppet.message_send_text(
                        conversation_id=room_id, message=mention_text(text, names),
                        mention_ids=list(mentions))
        except Exception as exc:
            error = classify_error(exc)
            if not error.retryable and not acc.connected:
                # The session ended under the call: the failure says nothing about the send.
                error = TransportError(str(error), retryable=True)
            acc.last_error = str(error)
            log.warning("wechaty account %s: send to %s failed: %s", acc.name, room_id, error)
            raise error from exc
        if not message_id:
            # Sent, but the puppet did not say under which id: echo matching will not work.
            log.warning("wechaty account %s: the gateway returned no message id", acc.name)
        return SentMessage(message_id or "")

    def account_states(self) -> list[AccountState]:
        """Connected (logged in, event stream open), logged in as, last error, since when."""
        states = []
        for spec in self._specs:
            acc = self._accounts.get(spec.name)
            if acc is None:
                states.append(AccountState(name=spec.name, connected=False))
            else:
                states.append(AccountState(name=acc.name, connected=acc.connected,
                                           logged_in_as=acc.self_id if acc.connected else "",
                                           last_error=acc.last_error, since=acc.since))
        return states

    # -- helpers for tests and the CLI ---------------------------------------------------------

    async def wait_connected(self, account: str = "", *, connected: bool = True,
                             timeout: float = 30.0) -> AccountState:
        """Wait until the account's connected state is `connected`; TimeoutError otherwise."""
        name = self._account(account).name
        deadline = time.monotonic() + timeout
        while True:
            state = next(s for s in self.account_states() if s.name == name)
            if state.connected == connected:
                return state
            changed = self._changed
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"wechaty account {name}: still connected={state.connected} "
                                   f"after {timeout} s (last error: {state.last_error or '-'})")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed.wait()

    # -- internals -----------------------------------------------------------------------------

    def _account(self, name: str) -> _Account:
        if not self._accounts:
            raise TransportError("wechaty transport not started", retryable=True, not_sent=True)
        key = name or self._specs[0].name
        acc = self._accounts.get(key)
        if acc is None:
            raise TransportError(f"no wechaty account named {key!r}", retryable=False)
        return acc

    def _set_state(self, acc: _Account, *, connected: bool, error: str | None = None) -> None:
        if error is not None:
            acc.last_error = error
        if acc.connected != connected or acc.since is None:
            acc.connected = connected
            acc.since = self._now()
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _supervise(self, acc: _Account) -> None:
        """Forever: run a session; when it ends, wait (doubling, capped) and start again."""
        failures = 0
        first = self.settings.reconnect_min_seconds
        longest = max(self.settings.reconnect_max_seconds, first)
        while True:
            acc.session_logged_in = False
            try:
                await self._session(acc)
                error = "the gateway closed the event stream"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect later
                error = describe_error(exc)
            if acc.session_logged_in:
                failures = 0
            delay = reconnect_delay(failures, first, longest)
            failures += 1
            self._set_state(acc, connected=False, error=f"disconnected: {error}")
            log.warning("wechaty account %s (%s): %s; reconnecting in %.1f s", acc.name,
                        acc.spec.endpoint, error, delay)
            await asyncio.sleep(delay)

    async def _session(self, acc: _Account) -> None:
        """One connection to the gateway; returns (or raises) when its event stream ends."""
        await _probe(acc.spec.endpoint)
        bot = acc.bot
        # Recreates bot.Room, bot.Contact ... bound to this session's puppet.
        await bot.init_puppet()
        for cls in (bot.Room, bot.Contact, bot.ContactSelf, bot.Tag):
            # Their pools are class attributes of the base classes, shared by every Wechaty
            # instance (other accounts, earlier sessions): give each its own.
            cls._pool = {}
        puppet = bot.puppet
        acc.names = {}
        acc.topics = {}

        def enqueue(kind: str, payload: Any = None) -> None:
            if kind == "login":
                acc.session_logged_in = True
            acc.events.put_nowait((puppet, kind, payload))

        # Our own event bridge instead of Wechaty.start(): it would sleep 60 s after a lost
        # connection, stop the whole event loop on a puppet error, and start the plugin
        # scheduler twice on a re-login.
        for event in ("login", "logout", "message", "room-leave", "room-topic", "scan"):
            puppet.on(event, functools.partial(enqueue, event))
        puppet.on("error", functools.partial(self._puppet_error, acc))
        acc.puppet = puppet
        try:
            # Calls the gateway's stop and start, then reads the event stream until it ends.
            with _grpc_cancels():
                await puppet.start()
        finally:
            # No sends from here on; the supervisor records the state with the reason.
            acc.puppet = None
            await self._close(puppet, graceful=_cancelling())

    async def _close(self, puppet: Any, *, graceful: bool) -> None:
        """Drop the session's listeners and gRPC channel (telling the gateway if we stop)."""
        with contextlib.suppress(Exception):
            puppet._event_stream.remove_all_listeners()
        stub = getattr(puppet, "_puppet_stub", None)
        if graceful and stub is not None:
            # As python-wechaty's bot.stop() does; skipped for a lost connection.
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await stub.stop()
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log.debug("gateway stop failed: %s", describe_error(exc))
        puppet._puppet_stub = None
        channel = getattr(puppet, "channel", None)
        if channel is not None:
            channel.close()
            puppet.channel = None

    def _puppet_error(self, acc: _Account, payload: Any) -> None:
        # Without an 'error' listener pyee raises inside the event stream loop.
        text = getattr(payload, "data", None) or str(payload)
        if text:
            acc.last_error = f"gateway error: {text}"[:500]
            log.warning("wechaty account %s: %s", acc.name, acc.last_error)

    async def _work(self, acc: _Account) -> None:
        """Handle the account's events one at a time; one bad event never stops the rest."""
        while True:
            puppet, kind, payload = await acc.events.get()
            try:
                # asyncio.timeout, never wait_for, in this module: 3.11's wait_for swallows a
                # cancellation that arrives as the awaited call finishes, and stop() would hang.
                with _grpc_cancels():
                    async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):
                        await self._handle(acc, puppet, kind, payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("wechaty account %s: %s event not handled: %s", acc.name, kind,
                            describe_error(exc))

    async def _handle(self, acc: _Account, puppet: Any, kind: str, payload: Any) -> None:
        now = self._now()
        if kind == "message":
            incoming = await self._incoming(acc, puppet, payload.message_id, now)
            if incoming is not None and self._on_message is not None:
                await self._on_message(incoming)
        elif kind == "login":
            acc.self_id = payload.contact_id
            acc.bot.contact_id = payload.contact_id
            self._set_state(acc, connected=True)
            log.info("wechaty account %s logged in as %s", acc.name, acc.self_id)
        elif kind == "logout":
            self._set_state(acc, connected=False, error="logged out")
            log.warning("wechaty account %s logged out", acc.name)
        elif kind == "scan":
            acc.last_error = "waiting for login: scan the QR code"
            # The QR code is how a person logs the account in: it must be seen.
            log.warning("wechaty account %s: scan to log in: https://wechaty.js.org/qrcode/%s",
                        acc.name, getattr(payload, "qrcode", "") or "")
        elif kind == "room-leave":
            event = room_left_event(room_id=payload.room_id,
                                    removed_ids=payload.removed_ids or (),
                                    self_id=acc.self_id, timestamp=payload.timestamp,
                                    account=acc.name, received_at=now, transport=self.name)
            if event is not None:
                await self._emit(event)
            for left in members_left_events(
                    room_id=payload.room_id, removed_ids=payload.removed_ids or (),
                    self_id=acc.self_id, timestamp=payload.timestamp, account=acc.name,
                    received_at=now, transport=self.name):
                await self._emit(left)
        elif kind == "room-topic":
            acc.topics[payload.room_id] = payload.new_topic or ""
            await self._emit(room_renamed_event(
                room_id=payload.room_id, old_topic=payload.old_topic or "",
                new_topic=payload.new_topic or "", timestamp=payload.timestamp,
                account=acc.name, received_at=now, transport=self.name))

    async def _emit(self, event: RoomEvent) -> None:
        if self._on_event is not None:
            await self._on_event(event)

    async def _incoming(self, acc: _Account, puppet: Any, message_id: str,
                        now: datetime) -> IncomingMessage | None:
        payload = await puppet.message_payload(message_id)
        room_id = payload.room_id or ""
        talker_id = payload.from_id or ""
        if not room_id or not talker_id:
            return None
        kind = getattr(payload.type, "name", str(payload.type))
        fields = MessageFields(
            message_id=message_id, room_id=room_id, talker_id=talker_id,
            talker_name=await self._contact_name(acc, puppet, talker_id),
            text=payload.text or "", timestamp=float(payload.timestamp or 0),
            self_id=acc.self_id, mention_ids=tuple(payload.mention_ids or ()),
            room_topic=await self._room_topic(acc, puppet, room_id), type_name=kind)
        return to_incoming(fields, account=acc.name, received_at=now, transport=self.name)

    async def _contact_name(self, acc: _Account, puppet: Any, contact_id: str) -> str:
        return await _cached_label(acc.names, contact_id,
                                   lambda: puppet.contact_payload(contact_id), "name")

    async def _room_topic(self, acc: _Account, puppet: Any, room_id: str) -> str:
        return await _cached_label(acc.topics, room_id,
                                   lambda: puppet.room_payload(room_id), "topic")


async def _cached_label(cache: dict[str, str], key: str,
                        fetch: Callable[[], Awaitable[Any]], field: str) -> str:
    """A contact's name or a room's topic, cached (bounded). A label only: when the puppet
    cannot tell, "" is no reason to drop a message."""
    label = cache.get(key)
    if label is None:
        try:
            with _grpc_cancels():  # caught here, the call's leftover cancel would stay
                label = getattr(await fetch(), field) or ""
        except GRPCError as exc:
            log.debug("%s of %s: %s", field, key, describe_error(exc))
            return ""
        if len(cache) >= NAME_CACHE_MAX:
            cache.clear()
        cache[key] = label
    return label


@contextlib.contextmanager
def _grpc_cancels() -> Iterator[None]:
    """Around gRPC calls: grpclib ends a call whose stream broke (or whose deadline passed) by
    cancelling the task that awaits it and raising its own error in place of the
    CancelledError, without asyncio's uncancel(). The task would count as being cancelled
    for good (Task.cancelling() > 0): the sender's workers take that for a swallowed stop and
    end, and a later asyncio.timeout in the task misreads its own expiry. A call that ends in
    an error other than CancelledError gives back the cancel requests it left behind."""
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException:
        while task is not None and task.cancelling() > before:
            task.uncancel()
        raise


def _cancelling() -> bool:
    """Whether the current task is being cancelled (the transport stops)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
