"""The outbox sender: per bot account, paced; claims rows, marks them sending, sends, marks
them sent. Nothing about a delivery lives only in memory; after a crash, rows left in
`sending` are checked against the bot's own echoes before anything is sent again."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import random
import socket
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Executable,
    Select,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot import channel_texts, faults, texts
from bot.channels import render
from bot.channels.base import Limits, OutboundChannel, Rendering, SendResult
from bot.channels.base import Outcome as SendOutcome
from bot.clock import Clock, Elapsed
from bot.config import PacingSettings
from bot.outbound import mask_outbound
from bot.services import chain, outbox, people
from bot.services import notice as notices
from bot.transports.base import Transport, TransportError
from models import (
    AccountLease,
    BotAccount,
    Echo,
    Group,
    Node,
    Notice,
    OutboxMessage,
    OutboxStatus,
)
from models.base import insert_for

log = logging.getLogger(__name__)

# Rows claimed at once when an account sends without a gap (benchmarks, tests, a fast
# gateway), and at most with one.
UNPACED_CLAIM = 50
# Paced, a claim takes the rows the pacer will let go in about this many seconds (one row with
# WeChat's real gaps of seconds): each waits its turn in `sending`, and a crash leaves them to
# be reconciled by their echoes like any attempt.
CLAIM_AHEAD = 1.0
# Pending replies read at once to merge those for one room into one message.
REPLY_CLAIM = 50
# Pending texts of one kind for one group merged into one message at most.
MERGE_LIMIT = 50
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Pacer:
    """One account's pace: one send at a time, a gap with jitter, hourly and daily caps, and
    a pause after the platform says "too frequent". The recent sends live in memory (at most
    one cap's worth each), so asking when the next send may go costs O(1) amortised."""

    def __init__(self, name: str, settings: PacingSettings, rng: random.Random):
        self.name = name
        self.settings = settings
        self.rng = rng
        self.lock = asyncio.Lock()
        self.last_send: datetime | None = None
        self.gap = 0.0
        # Sends of the last hour and the last day, oldest first, each trimmed to its cap.
        self.hour: deque[datetime] = deque()
        self.day: deque[datetime] = deque()
        self.paused_until: datetime | None = None
        self.last_rate_limited: datetime | None = None

    @property
    def sent(self) -> deque[datetime]:
        """The sends of the last day that still count against the daily cap."""
        return self.day

    @property
    def paced(self) -> bool:
        """Whether sends wait a gap between them."""
        return self.settings.min_gap_seconds > 0 or self.settings.jitter_seconds > 0

    def _trim(self, now: datetime) -> None:
        hour_ago, day_ago = now - HOUR, now - DAY
        while self.hour and self.hour[0] <= hour_ago:
            self.hour.popleft()
        while self.day and self.day[0] <= day_ago:
            self.day.popleft()

    def caps(self, *, reply: bool) -> tuple[int, int]:
        """The hourly and daily caps for a reply (a share is kept for notices) or a notice."""
        hourly, daily = self.settings.hourly_cap, self.settings.daily_cap
        if not reply:
            return hourly, daily
        share = self.settings.notice_reserve
        return (max(1, hourly - math.ceil(hourly * share)),
                max(1, daily - math.ceil(daily * share)))

    def next_allowed(self, now: datetime, *, reply: bool = False, room: str = "") -> datetime:
        """The earliest time the next send (a reply, or a notice) may start (WeChat paces the
        account as a whole: `room` is for channels limited per group)."""
        self._trim(now)
        at = now
        if self.paused_until is not None and self.paused_until > at:
            at = self.paused_until
        if self.last_send is not None:
            at = max(at, self.last_send + timedelta(seconds=self.gap))
        hourly, daily = self.caps(reply=reply)
        if len(self.hour) >= hourly:
            at = max(at, self.hour[-hourly] + HOUR)
        if len(self.day) >= daily:
            at = max(at, self.day[-daily] + DAY)
        return at

    def reset(self) -> None:
        """Forget every send (the account's state is about to be loaded again)."""
        self.last_send = None
        self.gap = 0.0
        self.hour.clear()
        self.day.clear()
        self.paused_until = None
        self.last_rate_limited = None

    def remember(self, at: datetime) -> None:
        """A past send loaded at start: it counts against the caps."""
        for recent, cap in ((self.hour, self.settings.hourly_cap),
                            (self.day, self.settings.daily_cap)):
            recent.append(at)
            if len(recent) > cap:
                recent.popleft()
        self.last_send = at if self.last_send is None else max(self.last_send, at)
        # The jitter drawn before a restart is unknown: the longest gap it could have been.
        self.gap = self.settings.min_gap_seconds + self.settings.jitter_seconds

    def record(self, at: datetime, room: str = "") -> None:
        """A send happened: the next one waits a fresh random gap."""
        self._trim(at)
        self.remember(at)
        self.last_send = at
        self.gap = self.settings.min_gap_seconds + self.rng.uniform(
            0, self.settings.jitter_seconds)

    def pause(self, now: datetime) -> datetime:
        """Rate-limited: 30 minutes, or 12 hours when it happens again within a day."""
        again = (self.last_rate_limited is not None
                 and now - self.last_rate_limited < timedelta(days=1))
        length = (timedelta(hours=self.settings.repeat_pause_hours) if again
                  else timedelta(minutes=self.settings.pause_minutes))
        self.paused_until = now + length
        self.last_rate_limited = now
        return self.paused_until


class ChannelPacer(Pacer):
    """An official channel's pace, from its platform's Limits: at most `per_minute` sends in
    any minute, `per_second` in any second, `per_group_per_second` to one group in any second,
    none inside the avoid windows (seconds of each hour), and none during the penalty after
    a frequency error. [pacing]'s gap, jitter and caps are WeChat's and do not apply."""

    def __init__(self, name: str, settings: PacingSettings, rng: random.Random,
                 limits: Limits):
        super().__init__(name, settings, rng)
        self.limits = limits
        self.minute: deque[datetime] = deque()
        self.second: deque[datetime] = deque()
        self.rooms: dict[str, deque[datetime]] = {}

    @property
    def sent(self) -> deque[datetime]:
        return self.minute

    @property
    def paced(self) -> bool:
        return True

    def _window(self, at: datetime, recent: deque[datetime], cap: int | None,
                span: timedelta) -> datetime:
        while recent and recent[0] <= at - span - span:
            recent.popleft()
        if cap is not None and len(recent) >= cap:
            at = max(at, recent[-cap] + span)
        return at

    def _avoid(self, at: datetime) -> datetime:
        for _ in range(len(self.limits.avoid) + 1):
            hour = at.replace(minute=0, second=0, microsecond=0)
            offset = (at - hour).total_seconds()
            moved = next((hour + timedelta(seconds=end) for start, end in self.limits.avoid
                          if start <= offset < end), None)
            if moved is None:
                return at
            at = moved
        return at

    def next_allowed(self, now: datetime, *, reply: bool = False, room: str = "") -> datetime:
        at = now
        if self.paused_until is not None and self.paused_until > at:
            at = self.paused_until
        # Each window may move the time past another's: settle in a few rounds.
        for _ in range(4):
            before = at
            at = self._window(at, self.minute, self.limits.per_minute, timedelta(minutes=1))
            at = self._window(at, self.second, self.limits.per_second, timedelta(seconds=1))
            sent_to_room = self.rooms.get(room) if room else None
            if sent_to_room and self.limits.per_group_per_second is not None:
                at = self._window(at, sent_to_room, self.limits.per_group_per_second,
                                  timedelta(seconds=1))
            at = self._avoid(at)
            if at == before:
                break
        return at

    def reset(self) -> None:
        super().reset()
        self.minute.clear()
        self.second.clear()
        self.rooms.clear()

    def remember(self, at: datetime, room: str = "") -> None:
        for recent, cap in ((self.minute, self.limits.per_minute),
                            (self.second, self.limits.per_second)):
            if cap is None:
                continue
            recent.append(at)
            if len(recent) > cap:
                recent.popleft()
        if room and self.limits.per_group_per_second is not None:
            if len(self.rooms) > 10_000:
                second_ago = at - timedelta(seconds=1)
                self.rooms = {k: q for k, q in self.rooms.items() if q and q[-1] > second_ago}
            recent = self.rooms.setdefault(room, deque())
            recent.append(at)
            if len(recent) > self.limits.per_group_per_second:
                recent.popleft()
        self.last_send = at if self.last_send is None else max(self.last_send, at)

    def record(self, at: datetime, room: str = "") -> None:
        self.remember(at, room)

    def pause(self, now: datetime, at_least: float | None = None) -> datetime:
        """Rate-limited: the platform's penalty, or its reset time when that is later."""
        seconds = max(self.limits.penalty_seconds, at_least or 0.0, 1.0)
        self.paused_until = now + timedelta(seconds=seconds)
        self.last_rate_limited = now
        return self.paused_until


class ReplyGate:
    """Per contact: more than `per_minute` commands in a minute get one warning, then no
    replies for `quiet_minutes` (the commands themselves are still handled)."""

    def __init__(self, *, per_minute: int, quiet_minutes: float):
        self.per_minute = per_minute
        self.quiet = timedelta(minutes=quiet_minutes)
        self._recent: dict[tuple[str, str], deque[datetime]] = {}
        self._quiet_until: dict[tuple[str, str], datetime] = {}

    def admit(self, contact: tuple[str, str], now: datetime) -> str:
        """"reply", "warn" (the one warning) or "quiet" for the next reply to `contact`."""
        until = self._quiet_until.get(contact)
        if until is not None:
            if now < until:
                return "quiet"
            del self._quiet_until[contact]
        if len(self._recent) > 10_000:
            minute_ago = now - timedelta(minutes=1)
            self._recent = {k: q for k, q in self._recent.items() if q and q[-1] > minute_ago}
        recent = self._recent.setdefault(contact, deque())
        recent.append(now)
        while recent[0] <= now - timedelta(minutes=1):
            recent.popleft()
        if len(recent) > self.per_minute:
            recent.clear()
            self._quiet_until[contact] = now + self.quiet
            return "warn"
        return "reply"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker marked `sending`, with everything needed to send it (plain values:
    no ORM object outlives the session that loaded it)."""

    id: int
    room_id: str
    group_title: str
    notice_id: int | None
    text: str | None
    mentions: list[str]
    attempts: int
    resend: bool
    urgent: bool
    # Rows merged into this one send (replies that piled up for one group), this one first.
    merged: tuple[int, ...] = ()
    reply: bool = False
    # The lease epoch it was claimed under: its marks are refused once that epoch is gone.
    epoch: int = 0

    @property
    def ids(self) -> list[int]:
        return [self.id, *self.merged]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a claimed row, kept in memory until the database has it."""

    kind: str  # "sent" | "release" | "retry" | "failed"
    row: Claimed
    at: datetime
    error: str = ""
    retry_at: datetime | None = None
    # A channel refused for good (PERMANENT): a person is alerted through another channel.
    alert: bool = False


# Every database step of the sender, each a named fault point (bot.faults).
FAULT_POINTS = ("sender.load", "sender.reconcile", "sender.lease", "sender.claim",
                "sender.claim_mark", "sender.send",
                "sender.settle", "sender.pause", "sender.next_retry", "sender.pending")
# Back-off after a failed database step: doubling from 1 s up to this.
MAX_BACKOFF = 60.0
# A database outage this long is reported to the operator (log) and, once over, to the
# senders of the notices it held up.
STUCK_AFTER = timedelta(minutes=5)


@dataclass(slots=True)
class Lease:
    """This process drives one account until `until` (renewed from `renew_at` on) under
    `epoch`; `reconciled` once the rows a predecessor left `sending` have been settled. Both
    times are on the sender's `Elapsed` time: a clock stepped back neither stretches the
    lease nor delays its renewal."""

    key: str
    epoch: int
    until: datetime
    renew_at: datetime
    reconciled: bool = False


def _count(result: Any) -> int:
    """The rows a statement changed (a CursorResult's rowcount)."""
    return int(result.rowcount or 0)


def holder_id() -> str:
    """This process, as a lease holder: host, pid and a random part (new at every start)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _failed_note(o: Outcome) -> Callable[[Notice], str]:
    def render(n: Notice) -> str:
        return texts.Notice.FAILED.format(tag=notices.tag(n.id, n.urgent),
                                          group=o.row.group_title, attempts=o.row.attempts,
                                          error=o.error[:60])
    return render


def _merged(row: Claimed, more: Sequence[tuple[int, str, Sequence[str]]], limit: int
            ) -> Claimed:
    """`row` and as many of `more` as fit in `limit` characters, one per line."""
    text, ids, mentions = row.text or "", list(row.merged), list(row.mentions)
    for row_id, extra, extra_mentions in more:
        if len(text) + 1 + len(extra) > limit:
            break
        text += "\n" + extra
        ids.append(row_id)
        mentions += [m for m in extra_mentions if m not in mentions]
    return replace(row, text=text, merged=tuple(ids), mentions=mentions)


# -- the hot path's statements, built once (parameters bound at each execution) -------------
# Each is run on the session's connection as plain Core: building a statement, its cache key
# and the ORM's bulk-update bookkeeping cost more CPU than the database work of one send.

# True while the lease named by :lease_key is still at :lease_epoch: every statement marking
# rows carries it, so a holder whose lease was taken over changes nothing.
FENCE = exists().where(AccountLease.account == bindparam("lease_key"),
                       AccountLease.epoch == bindparam("lease_epoch"))


def _claim_columns(*, bound: bool = True) -> Select[Any]:
    """What a claim reads; `bound=False` also reads replies to rooms with no group."""
    room: Any
    title: Any
    transport: Any
    if bound:
        room, title, transport = Group.room_id, Group.title, Group.transport
    else:
        room = func.coalesce(Group.room_id, OutboxMessage.room_id)
        title = func.coalesce(Group.title, OutboxMessage.room_id)
        transport = func.coalesce(Group.transport, OutboxMessage.transport)
    stmt = select(OutboxMessage.id, OutboxMessage.group_id, OutboxMessage.notice_id,
                  OutboxMessage.text,
                  OutboxMessage.mentions, OutboxMessage.attempts, OutboxMessage.attempt_at,
                  OutboxMessage.resend, OutboxMessage.urgent, OutboxMessage.source,
                  room.label("room_id"), title.label("title"),
                  transport.label("transport"), Notice.text.label("notice_text"),
                  Notice.urgent.label("notice_urgent"))
    if bound:
        stmt = stmt.join(Group, Group.id == OutboxMessage.group_id)
    else:
        stmt = stmt.outerjoin(Group, Group.id == OutboxMessage.group_id)
    return stmt.outerjoin(Notice, Notice.id == OutboxMessage.notice_id)


_DUE = or_(OutboxMessage.next_attempt_at.is_(None),
           OutboxMessage.next_attempt_at <= bindparam("p_now"))


@functools.cache
def _claim_stmt(limit: int, pg: bool, any_transport: bool = False) -> Select[Any]:
    """Up to `limit` pending rows of :p_account on :p_transport (any transport for an official
    channel: its groups may be WeChat rows it posts to by webhook, or "channel" rows), urgent
    first, due by :p_now (on PostgreSQL locked, skipping rows another transaction holds)."""
    where = [OutboxMessage.status == OutboxStatus.PENDING,
             OutboxMessage.account == bindparam("p_account"), _DUE]
    if not any_transport:
        where.append(Group.transport == bindparam("p_transport"))
    stmt = (_claim_columns()
            .where(*where)
            .order_by(OutboxMessage.urgent.desc(), OutboxMessage.id).limit(limit))
    return stmt.with_for_update(of=OutboxMessage, skip_locked=True) if pg else stmt


@functools.cache
def _reply_stmt(pg: bool) -> Select[Any]:
    """The oldest pending replies of :p_account due by :p_now."""
    stmt = (_claim_columns(bound=False)
            .where(OutboxMessage.status == OutboxStatus.PENDING,
                   OutboxMessage.source == outbox.REPLY,
                   OutboxMessage.account == bindparam("p_account"), _DUE)
            .order_by(OutboxMessage.id).limit(REPLY_CLAIM))
    return stmt.with_for_update(of=OutboxMessage, skip_locked=True) if pg else stmt


_IDS = OutboxMessage.id.in_(bindparam("p_ids", expanding=True))
_SENDING = OutboxMessage.status == OutboxStatus.SENDING
MARK_SENDING = (update(OutboxMessage)
                .where(_IDS, OutboxMessage.status == OutboxStatus.PENDING, FENCE)
                .values(status=OutboxStatus.SENDING, attempt_id=bindparam("p_attempt"),
                        attempt_at=bindparam("p_now"), attempts=OutboxMessage.attempts + 1))
# One row sent (run as an executemany for a batch's sends).
MARK_SENT_EACH = (update(OutboxMessage)
                  .where(OutboxMessage.id == bindparam("p_id"), _SENDING, FENCE)
                  .values(status=OutboxStatus.SENT, sent_at=bindparam("p_at"), error=None))
# A pending retry whose first attempt our echo shows delivered.
MARK_ECHOED = (update(OutboxMessage)
               .where(_IDS, OutboxMessage.status == OutboxStatus.PENDING, FENCE)
               .values(status=OutboxStatus.SENT, sent_at=bindparam("p_at"), error=None,
                       next_attempt_at=None))
DELETE_SENT_REPLIES = delete(OutboxMessage).where(_IDS, _SENDING, FENCE)
_RELEASE = {"status": OutboxStatus.PENDING, "attempt_id": None,
            "attempts": OutboxMessage.attempts - 1}
MARK = {
    "release": update(OutboxMessage).where(_IDS, _SENDING, FENCE).values(**_RELEASE),
    "release_later": update(OutboxMessage).where(_IDS, _SENDING, FENCE).values(
        **_RELEASE, next_attempt_at=bindparam("p_retry")),
    "retry": update(OutboxMessage).where(_IDS, _SENDING, FENCE).values(
        status=OutboxStatus.PENDING, error=bindparam("p_error"),
        next_attempt_at=bindparam("p_retry")),
    "failed": update(OutboxMessage).where(_IDS, _SENDING, FENCE).values(
        status=OutboxStatus.FAILED, error=bindparam("p_error")),
}


# A session, or a bare connection where no ORM object is needed (cheaper per transaction).
Db = AsyncSession | AsyncConnection


@functools.cache
def _accounts_stmt(statuses: tuple[OutboxStatus, ...]) -> Executable:
    """The accounts with rows in any of `statuses`, in one statement: for each status a
    recursive walk that seeks the next name in the claim index (status, account, …), so
    listing them costs one seek per account, not a scan of a broadcast's pending rows."""
    found: list[Select[Any]] = []
    for n, status in enumerate(statuses):
        first = (select(func.min(OutboxMessage.account).label("name"))
                 .where(OutboxMessage.status == status).cte(f"accounts_{n}", recursive=True))
        following = (select(func.min(OutboxMessage.account))
                     .where(OutboxMessage.status == status,
                            OutboxMessage.account > first.c.name).scalar_subquery())
        walk = first.union_all(select(following).where(first.c.name.is_not(None)))
        found.append(select(walk.c.name).where(walk.c.name.is_not(None)))
    return found[0] if len(found) == 1 else union(*found)


async def _accounts_with(db: Db, statuses: Sequence[OutboxStatus]) -> list[str]:
    """The accounts that have rows in any of `statuses`, in order."""
    return sorted(set((await db.execute(_accounts_stmt(tuple(statuses)))).scalars()))


async def _run(db: Db, stmt: Executable,
               params: dict[str, Any] | list[dict[str, Any]]) -> CursorResult[Any]:
    """`stmt` as plain Core on the connection (of the session), in its transaction."""
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    result = await conn.execute(stmt, params)
    return result  # type: ignore[return-value]


def _dialect(db: Db) -> Dialect:
    return db.bind.dialect if isinstance(db, AsyncSession) else db.dialect


async def _note_last_send(db: Db, name: str, at: datetime) -> None:
    """Record a send that leaves no `sent` row behind (a reply, or an attempt a crash left
    unsettled) as the account's last: pacing after a restart starts from it."""
    insert = pg_insert if _dialect(db).name == "postgresql" else sqlite_insert
    await _run(db, insert(BotAccount).values(name=name, last_sent_at=at)
               .on_conflict_do_update(index_elements=["name"], set_={"last_sent_at": at}), {})


# In `OutboxSender._busy` while a look for accounts with rows runs (not an account name:
# names are printable).
LOOK = "\0look"


class OutboxSender:
    """Drains the outbox with one paced worker per bot account."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], transport: Transport,
                 clock: Clock, pacing: PacingSettings, zone: ZoneInfo,
                 default_account: str = "", rng: random.Random | None = None,
                 holder: str | None = None, exclusive: bool | None = None,
                 channels: Mapping[str, OutboundChannel] | None = None):
        self.sessions = sessions
        # Official channels by name: rows naming one are rendered and sent through it, paced
        # by its Limits (`_send_channel`); every other account sends through the transport.
        self.channels: dict[str, OutboundChannel] = dict(channels or {})
        # When each channel's last PERMANENT alert went out (one an hour per channel).
        self._alerted: dict[str, datetime] = {}
        # Accounts whose last claim only marked echoed retries sent (claim again at once).
        self._echoed: set[str] = set()
        self.transport = transport
        self.clock = clock
        self.pacing = pacing
        self.zone = zone
        # Rows and replies name the default account "" or by its name: one pacer for both.
        self.default_account = default_account
        self.rng = rng or random.Random()
        self.pacers: dict[str, Pacer] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._busy: set[str] = set()
        # Workers waiting for their next turn inside a claimed batch (`_wait_turn`).
        self._in_turn: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Outcomes the database does not have yet (a failed mark): settled before any claim.
        self._unsettled: dict[str, list[Outcome]] = {}
        # Since when each account's database steps keep failing, and the notices held up.
        self._failing_since: dict[str, datetime] = {}
        self._held: dict[str, set[int]] = {}
        self._reported: set[str] = set()
        self._started = False
        self._stopping = False
        # Set while stopping: ends a wait for the next turn inside a claimed batch.
        self._stop_event = asyncio.Event()
        self._helpers: set[asyncio.Task[None]] = set()
        # The running look for accounts with rows (see `wake`), and whether to look again.
        self._look: asyncio.Task[None] | None = None
        self._look_again = False
        # Leases: this process drives only the accounts it holds (see `_acquire`).
        self.holder = holder or holder_id()
        self.lease_seconds = pacing.lease_seconds
        # Exclusive (SQLite: the file lock keeps every other process out): a lease left by a
        # predecessor is taken over at once. None: decided by the database at start.
        self.exclusive = exclusive
        self._leases: dict[str, Lease] = {}
        self._lease_locks: dict[str, asyncio.Lock] = {}
        self._elapsed = Elapsed(clock)
        # Another holder's lease row as first seen, and when (see `_silent`).
        self._seen: dict[str, tuple[tuple[str, int, datetime], datetime]] = {}
        # Replies: a claim looks for them only when some may be pending (a look that found
        # none is not repeated until replies were written, or the lease renewed: replies
        # another process wrote are found by then). Generations avoid losing a reply written
        # while a look was under way.
        self._replies_written = False
        self._reply_generation = 0
        self._replies_seen: dict[str, int] = {}
        # Awaited before a reconcile reads the echoes: this process's echoes received so far
        # recorded (BotApp: Pipeline.record_echoes_now). None: nothing to wait for.
        self.before_reconcile: Callable[[], Awaitable[None]] | None = None

    @property
    def _engine(self) -> AsyncEngine:
        """The sessions' engine: the claim needs no ORM and runs on a bare connection."""
        engine: AsyncEngine = self.sessions.kw["bind"]
        return engine

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, accounts: Sequence[str] = ("",)) -> None:
        """Load pacing state, reconcile what a crash left in `sending`, start the workers."""
        faults.hit("sender.load")
        await self._load_state()
        # The accounts named, and those a predecessor left rows `sending` for: held (when no
        # other live process holds them) before anything is reconciled.
        async with self.sessions() as session:
            if self.exclusive is None:
                self.exclusive = session.bind.dialect.name == "sqlite"
            left = (await session.execute(
                select(OutboxMessage.account).where(
                    OutboxMessage.status == OutboxStatus.SENDING).distinct())).scalars().all()
        for key in sorted({self._key(a) for a in [*accounts, *left]}):
            await self._acquire(key)
        await self.reconcile()
        self._started = True
        for name in accounts:
            self._ensure_worker(name)
        await self._ensure_workers_for_pending()

    async def stop(self, timeout: float = 10.0) -> None:
        """Let each worker finish the row in hand, then stop (a worker still busy after
        `timeout` is cancelled; its row stays `sending` until the next start reconciles)."""
        self._started = False
        self._stopping = True
        self._stop_event.set()
        for event in self._wakes.values():
            event.set()
        tasks = [*self._workers.values(), *self._helpers]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Outcomes still unsettled: one last try (else the next start reconciles by echo).
        for account in list(self._unsettled):
            with contextlib.suppress(Exception):
                await self._settle(account)
        # Nothing more goes out from here: another process may take the accounts over now.
        with contextlib.suppress(Exception):
            await self._release()
        self._workers.clear()
        self._wakes.clear()
        self._helpers.clear()
        self._busy.clear()
        self._idle.set()
        self._stopping = False
        self._stop_event.clear()

    def replies_written(self) -> None:
        """Replies are being queued (in a transaction that commits before the next wake)."""
        self._replies_written = True

    def wake(self) -> None:
        """Rows were queued: every worker looks at the outbox now."""
        if self._replies_written:
            self._replies_written = False
            self._reply_generation += 1
        if not self._started:
            return
        # One look at the outbox wakes the workers of the accounts with rows (and starts the
        # missing ones): a worker with nothing queued is not woken to claim nothing (a write
        # transaction). A wake during a look asks for one more after it (the rows that woke
        # us may have been committed after its query); until then the sender is not idle.
        self._busy.add(LOOK)
        self._idle.clear()
        if self._look is not None and not self._look.done():
            self._look_again = True
            return
        helper = asyncio.get_running_loop().create_task(self._looks())
        self._look = helper
        self._helpers.add(helper)
        helper.add_done_callback(self._looked)

    async def _looks(self) -> None:
        while True:
            self._look_again = False
            await self._ensure_workers_for_pending(wake=True)
            if not self._look_again:
                return

    def _looked(self, task: asyncio.Task[None]) -> None:
        self._helpers.discard(task)
        if task is self._look:
            self._look = None
            self._busy.discard(LOOK)
            if not self._busy:
                self._idle.set()

    async def idle(self) -> None:
        """Wait until no worker can send anything right now (rows may wait for pacing)."""
        await self._idle.wait()

    def pacer(self, account: str) -> Pacer:
        """The pacer of one account (the default account under either of its names)."""
        key = account or self.default_account
        if key not in self.pacers:
            channel = self.channels.get(key)
            self.pacers[key] = (Pacer(key, self.pacing, self.rng) if channel is None else
                                ChannelPacer(key, self.pacing, self.rng, channel.limits))
        return self.pacers[key]

    def held(self) -> dict[str, int]:
        """The accounts this process drives, with the epoch of each lease."""
        return {key: lease.epoch for key, lease in self._leases.items()}

    def stuck(self) -> dict[str, datetime]:
        """Accounts whose database steps keep failing, and since when."""
        return dict(self._failing_since)

    # -- leases ------------------------------------------------------------------------------

    def _key(self, account: str) -> str:
        """The lease (and pacer) of the rows naming `account`."""
        return account or self.default_account

    def _row_accounts(self, key: str) -> list[str]:
        """What rows of the account leased as `key` name as their account."""
        return [key, ""] if key and key == self.default_account else [key]

    async def _acquire(self, key: str) -> Lease | None:
        """Renew this process's lease of `key`, or take it (first holder, or after the last
        holder's lease ran out or its row stayed the same for a lease time, `_silent`: the
        epoch goes up by one). None: another process holds it."""
        lock = self._lease_locks.setdefault(key, asyncio.Lock())
        async with lock:
            # The row's expiry is on the clock (other processes read it); ours on `_elapsed`.
            now = self.clock.now()
            expires = now + timedelta(seconds=self.lease_seconds)
            at = self._elapsed.now()
            until = at + timedelta(seconds=self.lease_seconds)
            held = self._leases.get(key)
            taken_from: datetime | None = None
            async with self.sessions() as session, session.begin():
                faults.hit("sender.lease")
                row = (await session.execute(
                    select(AccountLease.holder, AccountLease.epoch, AccountLease.expires_at)
                    .where(AccountLease.account == key).with_for_update())).first()
                if row is None:
                    inserted = await session.execute(
                        insert_for(session)(AccountLease)
                        .values(account=key, holder=self.holder, epoch=1, expires_at=expires)
                        .on_conflict_do_nothing(index_elements=["account"]))
                    epoch = 1 if _count(inserted) == 1 else 0
                elif (held is not None and row.holder == self.holder
                      and row.epoch == held.epoch):
                    # Still ours (even if it ran out meanwhile: nobody took it).
                    await session.execute(update(AccountLease).where(
                        AccountLease.account == key, AccountLease.epoch == held.epoch)
                        .values(expires_at=expires))
                    epoch = held.epoch
                elif (row.expires_at <= now or self.exclusive or row.holder == self.holder
                      or self._silent(key, row, at)):
                    taken = await session.execute(update(AccountLease).where(
                        AccountLease.account == key, AccountLease.epoch == row.epoch)
                        .values(holder=self.holder, epoch=row.epoch + 1, expires_at=expires))
                    epoch = row.epoch + 1 if _count(taken) == 1 else 0
                    if not self.exclusive and row.holder != self.holder:
                        # The last holder may have sent until its lease ran out.
                        taken_from = min(row.expires_at, now)
                else:
                    epoch = 0
                if epoch and held is not None and held.epoch == epoch:
                    lease = held
                    lease.until = until
                    lease.renew_at = at + timedelta(seconds=self.lease_seconds / 3)
                    return lease
                if epoch and self._started:
                    # Taken over while running: this account's pacing is the database's.
                    await self._load_pacer(session, key, now)
            if held is not None:
                log.warning("lease of account %r (epoch %d) lost to another process",
                            key, held.epoch)
                del self._leases[key]
            if not epoch:
                return None
            if taken_from is not None:
                self.pacer(key).remember(taken_from)
            self._seen.pop(key, None)
            lease = Lease(key, epoch, until, at + timedelta(seconds=self.lease_seconds / 3))
            self._leases[key] = lease
            log.info("holding account %r (epoch %d)", key, epoch)
            return lease

    def _silent(self, key: str, row: Any, at: datetime) -> bool:
        """Whether another holder's lease row has stayed the same for a whole lease time of
        our own elapsed time: a live holder renews it every third of that, so this one is
        gone, whatever its expiry says (written on a clock that has since been stepped back,
        it could say an hour)."""
        seen = (row.holder, row.epoch, row.expires_at)
        first = self._seen.get(key)
        if first is None or first[0] != seen:
            self._seen[key] = (seen, at)
            return False
        return (at - first[1]).total_seconds() >= self.lease_seconds

    async def _hold(self, account: str) -> Lease | None:
        """The lease to send `account`'s rows under, renewed or taken when due and its rows
        reconciled once taken; None while another process holds it."""
        key = self._key(account)
        lease = self._leases.get(key)
        if lease is None or self._elapsed.now() >= lease.renew_at:
            lease = await self._acquire(key)
            # Replies another process queued for this account: looked for now and then.
            self._replies_seen.pop(account, None)
        if lease is not None and not lease.reconciled:
            await self.reconcile([key])
        return lease

    def _may_send(self, row: Claimed, account: str, now: datetime) -> bool:
        """Whether the lease `row` was claimed under is still ours at `now` (a time of the
        clock) with a third of it left (a send must end before another process may take the
        account over)."""
        lease = self._leases.get(self._key(account))
        return (lease is not None and lease.epoch == row.epoch
                and (lease.until - self._elapsed.at(now)).total_seconds()
                >= self.lease_seconds / 3)

    async def _lost(self, session: Db, key: str, epoch: int) -> bool:
        """A mark changed fewer rows than expected: whether the lease is gone (then it is
        dropped here: nothing more is claimed or sent for that account)."""
        current = (await session.execute(select(AccountLease.epoch).where(
            AccountLease.account == key))).scalar_one_or_none()
        if current == epoch:
            return False
        lease = self._leases.get(key)
        if lease is not None and lease.epoch == epoch:
            log.warning("lease of account %r (epoch %d) taken over (epoch %s): its marks "
                        "refused", key, epoch, current)
            del self._leases[key]
        return True

    async def _release(self) -> None:
        """Give every lease up (stopping): another process may take the accounts now."""
        if not self._leases:
            return
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            for lease in self._leases.values():
                await session.execute(update(AccountLease).where(
                    AccountLease.account == lease.key, AccountLease.epoch == lease.epoch,
                    AccountLease.holder == self.holder).values(expires_at=now))
        self._leases.clear()

    async def _load_pacer(self, session: AsyncSession, key: str, now: datetime) -> None:
        """One account's pacing state as the database has it (rate-limit pause, the last
        day's sends) after this process took the account over."""
        pacer = self.pacer(key)
        pacer.reset()
        account = await session.get(BotAccount, pacer.name)
        if account is not None:
            pacer.paused_until = account.paused_until
            pacer.last_rate_limited = account.last_rate_limited_at
            if account.last_sent_at is not None:
                pacer.remember(min(account.last_sent_at, now))
        await self._remember_recent(session, pacer, self._row_accounts(key), now)

    async def _remember_recent(self, session: AsyncSession, pacer: Pacer,
                               accounts: Sequence[str], now: datetime) -> None:
        """The last day's sends of rows naming `accounts`, at most one daily cap of them
        (newest first), counted by `pacer`."""
        recent = (await session.execute(
            select(OutboxMessage.sent_at)
            .where(OutboxMessage.account.in_(accounts), OutboxMessage.sent_at > now - DAY)
            .order_by(OutboxMessage.sent_at.desc())
            .limit(self.pacing.daily_cap))).scalars().all()
        for at in reversed(recent):
            if at is not None:
                # A send "after" now: the clock has gone back since (NTP, a fixed clock). It
                # counts as sent now; the gap after it is not stretched by the jump.
                pacer.remember(min(at, now))

    # -- reconciliation ----------------------------------------------------------------------

    def _parts(self, row: Claimed) -> list[str]:
        return notices.render_parts(text=row.text or "", notice_id=row.notice_id,
                                    urgent=row.urgent, resend=row.resend,
                                    limit=self.pacing.split_at)

    @staticmethod
    def _rendering(row: Claimed) -> Rendering:
        """A row as an official channel renders it: the tag apart (kept on every part), the
        补发 marker and the text masked as the transport seam masks WeChat sends."""
        marker = texts.Notice.RESEND if row.resend else ""
        tag = notices.tag(row.notice_id, row.urgent) if row.notice_id is not None else ""
        return Rendering(text=mask_outbound(marker + (row.text or "")),
                         mentions=tuple(row.mentions), tag=tag)

    def _first_part(self, account: str, row: Claimed) -> str:
        """The first text the row's channel posts (what its echo is matched by)."""
        channel = self.channels.get(account)
        if channel is None:
            return self._parts(row)[0]
        return render.part_text(channel.render(self._rendering(row))[0].body)

    async def reconcile(self, keys: Sequence[str] | None = None) -> tuple[int, int]:
        """Rows left `sending` by a crash (of this process or of the last holder of an account
        now ours), for the accounts held (or those of `keys` held): `sent` if our echo shows
        the send went out after the attempt started; else `pending` again, marked 补发 only
        when a send was attempted (its claim recorded the attempt's start). Rows of accounts
        another process holds are not touched. Returns (confirmed, resent)."""
        confirmed = resent = 0
        if self.before_reconcile is not None:
            await self.before_reconcile()
        find_echo = getattr(self.transport, "find_echo", None)
        leases = [lease for key, lease in self._leases.items() if keys is None or key in keys]
        by_account = {a: lease for lease in leases for a in self._row_accounts(lease.key)}
        rows: list[Any] = []
        # Per pacer: the latest time an attempt found here may have gone out with no `sent`
        # row to show it (written to its BotAccount: a second restart must not forget it).
        maybe_sent: dict[str, datetime] = {}
        async with self.sessions() as session, session.begin():
            faults.hit("sender.reconcile")
            if by_account:
                rows = [r for r in (await session.execute(
                    _claim_columns(bound=False)
                    .add_columns(OutboxMessage.account)
                    .where(OutboxMessage.status == OutboxStatus.SENDING,
                           OutboxMessage.account.in_(list(by_account)))
                    .order_by(OutboxMessage.id))).all()
                    if r.transport == self.transport.name or r.account in self.channels]
            for r in rows:
                row = self._claimed(r)
                lease = by_account[r.account]
                mark = update(OutboxMessage).where(_IDS, _SENDING, FENCE)
                fenced = {"p_ids": [row.id], "lease_key": lease.key, "lease_epoch": lease.epoch}
                if r.source == outbox.REPLY:
                    # A reply's echo is not recorded; a stale answer repeated minutes later
                    # misleads more than one lost (the user can ask again).
                    await _run(session, mark.values(
                        status=OutboxStatus.FAILED, error="interrupted by a restart"), fenced)
                    if r.attempt_at is not None:
                        # It may have gone out (its "sent" unwritten): the next send keeps
                        # a whole gap from it.
                        self._maybe_sent(maybe_sent, lease.key, r.attempt_at)
                    continue
                if r.attempt_at is None:
                    await _run(session, mark.values(status=OutboxStatus.PENDING,
                                                    attempt_id=None), fenced)
                    continue
                channel = self.channels.get(r.account)
                first = self._first_part(r.account, row)
                echo_at = await self._echo_since(session, transport=r.transport,
                                                 room_id=row.room_id, first_part=first,
                                                 since=r.attempt_at)
                if echo_at is None and find_echo is not None and channel is None:
                    echo_at = await find_echo(row.room_id, first, r.attempt_at)
                if echo_at is None and channel is not None and not channel.capabilities.receive:
                    # A channel that shows no echoes: the attempt may have been delivered, and
                    # a notice twice misleads more than one counted sent (see _send_channel).
                    echo_at = r.attempt_at
                    log.warning("outbox row %d on channel %r: left sending, no echo possible; "
                                "counted sent once", row.id, r.account)
                pacer = self.pacer(lease.key)
                if echo_at is not None:
                    values: dict[str, Any] = {"status": OutboxStatus.SENT, "sent_at": echo_at}
                    confirmed += 1
                    pacer.remember(echo_at)
                else:
                    values = {"status": OutboxStatus.PENDING, "resend": True,
                              "attempt_id": None}
                    resent += 1
                    # The attempt may have gone out at any time until now: the next send
                    # waits a whole gap.
                    self._maybe_sent(maybe_sent, lease.key, r.attempt_at)
                await _run(session, mark.values(**values), fenced)
            for key, at in maybe_sent.items():
                await _note_last_send(session, self.pacer(key).name, at)
        for lease in leases:
            lease.reconciled = True
        if rows:
            log.warning("reconciled %d rows left sending: %d confirmed by echo, %d to resend",
                        len(rows), confirmed, resent)
        return confirmed, resent

    def _maybe_sent(self, found: dict[str, datetime], key: str, attempt_at: datetime) -> None:
        """An attempt left `sending` may have gone out at any time until now: the pacer of
        `key` counts a send now, and `found` keeps it for the account's record."""
        at = max(self.clock.now(), attempt_at)
        self.pacer(key).remember(at)
        found[key] = max(at, found.get(key, at))

    # -- workers -----------------------------------------------------------------------------

    async def _load_state(self) -> None:
        now = self.clock.now()
        async with self.sessions() as session:
            names = set((await session.execute(select(BotAccount.name))).scalars())
            for account in (await session.execute(select(BotAccount))).scalars():
                pacer = self.pacer(account.name)
                pacer.paused_until = account.paused_until
                pacer.last_rate_limited = account.last_rate_limited_at
                if account.last_sent_at is not None:
                    pacer.remember(min(account.last_sent_at, now))
            names |= set((await session.execute(select(Group.account).distinct())).scalars())
            for name in names:
                await self._remember_recent(session, self.pacer(name), [name], now)

    async def _ensure_workers_for_pending(self, *, wake: bool = False) -> None:
        """Start a worker for each account with rows pending or sending (another process's
        too, to take over if it dies); `wake`: wake those that exist (every worker when the
        look fails)."""
        if not self._started:
            return
        try:
            async with self._engine.connect() as conn:
                faults.hit("sender.pending")
                accounts = await _accounts_with(conn, (OutboxStatus.PENDING,
                                                       OutboxStatus.SENDING))
        except Exception:
            log.exception("could not list the accounts with pending rows")
            accounts = list(self._wakes) if wake else []
        for name in accounts:
            if name in self._workers:
                # A worker waiting for its next turn inside a batch is not woken (it goes
                # on with the batch, then claims again): it stays idle meanwhile.
                if wake and name not in self._in_turn:
                    self._busy.add(name)
                    self._wakes[name].set()
            else:
                self._ensure_worker(name)

    def _ensure_worker(self, account: str) -> None:
        if account in self._workers or not self._started:
            return
        self._wakes[account] = asyncio.Event()
        self._wakes[account].set()
        self._busy.add(account)
        self._idle.clear()
        self._workers[account] = asyncio.create_task(self._work(account),
                                                     name=f"sender-{account or 'default'}")

    async def _wait(self, account: str, seconds: float | None) -> None:
        wake = self._wakes[account]
        if wake.is_set() or self._stopping:
            return
        await self._idle_until(account, wake, seconds)

    async def _idle_until(self, account: str, event: asyncio.Event, seconds: float | None
                          ) -> None:
        """Wait for `event` or `seconds`, whichever comes first, the worker counting as idle
        meanwhile (busy again after)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # A cancel was swallowed on the way here (Python 3.11's asyncio.wait_for, as in
            # SQLAlchemy's pool checkout, can return a result that arrived with the cancel):
            # waiting now would hold stop() and a restart forever.
            raise asyncio.CancelledError
        self._busy.discard(account)
        if not self._busy:
            self._idle.set()
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(event.wait())]
        if seconds is not None:
            waiters.append(asyncio.ensure_future(self.clock.sleep(seconds)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            self._busy.add(account)
            self._idle.clear()

    async def _work(self, account: str) -> None:
        pacer = self.pacer(account)
        wake = self._wakes[account]
        backoff = 1.0
        while not self._stopping:
            wake.clear()
            try:
                if self._unsettled.get(account):
                    await self._settle(account)
                lease = await self._hold(account)
                if lease is None:
                    # Another process drives this account: look again when its lease may
                    # have run out.
                    await self._recovered(account)
                    backoff = 1.0
                    await self._wait(account, self.lease_seconds / 3)
                    continue
                now = self.clock.now()
                renew_in = (lease.renew_at - self._elapsed.now()).total_seconds()
                allowed = pacer.next_allowed(now)
                if allowed > now:
                    await self._wait(account, min(renew_in, (allowed - now).total_seconds()))
                    continue
                # Claimed when it may go (no lead): the claim records that the attempt starts.
                # Replies first, unless they used up their share of the caps.
                claimed = await self._claim(
                    account, now, self._claim_size(account, pacer, lease, now), lease.epoch,
                    replies=pacer.next_allowed(now, reply=True) <= now, merge=pacer.paced)
                await self._recovered(account)
                backoff = 1.0
                if not claimed and account in self._echoed:
                    # Only rows our echoes showed delivered: look again at once.
                    self._echoed.discard(account)
                    continue
                if not claimed:
                    # Rows queued by another process wake nobody here: look again by the
                    # renewal at the latest.
                    retry_in = await self._next_retry_in(account, now)
                    await self._wait(account, renew_in if retry_in is None
                                     else min(renew_in, retry_in))
                    continue
                await self._send_claimed(account, pacer, claimed)
                await self._settle(account)
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Cancelled inside a database call whose clean-up raised instead (the
                    # model's kill found a worker still backing off after its cancel: stop()
                    # and a kill would wait for it forever).
                    raise asyncio.CancelledError from None
                log.exception("sender for account %r failed; retrying in %.0f s", account,
                              backoff)
                self._failing(account)
                # Not woken early by new rows: a failing database gets its back-off.
                wake.clear()
                await self._wait(account, backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    def _failing(self, account: str) -> None:
        now = self.clock.now()
        since = self._failing_since.setdefault(account, now)
        held = self._held.setdefault(account, set())
        held.update(o.row.notice_id for o in self._unsettled.get(account, [])
                    if o.row.notice_id is not None)
        if now - since >= STUCK_AFTER and account not in self._reported:
            log.error("delivery on account %r stuck since %s (database errors); notices held "
                      "up: %s", account, since.isoformat(), sorted(held) or "unknown")
            self._reported.add(account)

    async def _recovered(self, account: str) -> None:
        """The database answers again: after a long outage, tell the senders of the notices
        it held up (their delivery was late, not lost)."""
        since = self._failing_since.pop(account, None)
        held = self._held.pop(account, set())
        self._reported.discard(account)
        if since is None:
            return
        now = self.clock.now()
        if now - since < STUCK_AFTER:
            return
        async with self.sessions() as session, session.begin():
            pending: set[int] = {n for n in (await session.execute(
                select(OutboxMessage.notice_id).where(
                    OutboxMessage.account == account, OutboxMessage.notice_id.is_not(None),
                    OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
                .distinct())).scalars() if n is not None}
            for notice_id in sorted(held | pending):
                await self._tell_sender(session, notice_id, lambda n: texts.Notice.STUCK.format(
                    tag=notices.tag(n.id, n.urgent),
                    duration=texts.duration((now - since).total_seconds())), now)
        self.wake()

    async def _next_retry_in(self, account: str, now: datetime) -> float | None:
        async with self.sessions() as session:
            faults.hit("sender.next_retry")
            at = (await session.execute(select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.account == account,
                # min() skips NULLs anyway; said here, the partial index serves the look-up.
                OutboxMessage.next_attempt_at.is_not(None)))).scalar_one()
        return None if at is None else max(0.0, (at - now).total_seconds())

    async def _echo_since(self, session: Db, *, transport: str, room_id: str,
                          first_part: str, since: datetime) -> datetime | None:
        """When our echo of this text was seen in that room since `since` (None: not seen)."""
        return (await session.execute(select(func.min(Echo.at)).where(
            Echo.transport == transport, Echo.room_id == room_id,
            Echo.digest == notices.digest(first_part), Echo.at >= since))).scalar_one()

    async def _claim_replies(self, session: AsyncConnection, account: str, now: datetime,
                             epoch: int, *, merge: bool) -> list[Claimed]:
        """The oldest pending reply of this account, merged with every other reply pending
        for the same room (several confirmations become one message). Unpaced (`merge`
        false) nothing piles up: the pending replies are claimed one message each. Finding
        nothing commits nothing (the transaction is rolled back)."""
        stmt = _reply_stmt(session.dialect.name == "postgresql")
        official = account in self.channels
        candidates = [r for r in (await _run(session, stmt, {
            "p_account": account, "p_now": now})).all()
            if official or r.transport == self.transport.name]
        if not candidates:
            return []
        if merge:
            room = candidates[0].room_id
            mine = [r for r in candidates if r.room_id == room]
            claimed = [_merged(self._claimed(mine[0], attempts=mine[0].attempts + 1,
                                             epoch=epoch),
                               [(r.id, r.text or "", r.mentions or []) for r in mine[1:]],
                               self.pacing.split_at)]
        else:
            claimed = [self._claimed(r, attempts=r.attempts + 1, epoch=epoch)
                       for r in candidates]
        return await self._mark_sending(session, account, claimed, now, epoch)

    async def _mark_sending(self, session: AsyncConnection, account: str,
                            claimed: list[Claimed], now: datetime, epoch: int
                            ) -> list[Claimed]:
        """Mark the claimed rows `sending` (an attempt starts) and commit the claim; nothing
        (the claim undone) when the lease's epoch is no longer ours."""
        faults.hit("sender.claim_mark")
        key = self._key(account)
        ids = [i for c in claimed for i in c.ids]
        marked = await _run(session, MARK_SENDING, {
            "p_ids": ids, "p_attempt": str(uuid.uuid4()), "p_now": now,
            "lease_key": key, "lease_epoch": epoch})
        if _count(marked) < len(ids) and await self._lost(session, key, epoch):
            await session.rollback()
            return []
        await session.commit()
        return claimed

    @staticmethod
    def _claimed(r: Any, *, attempts: int | None = None, epoch: int = 0) -> Claimed:
        is_notice = r.notice_id is not None
        return Claimed(r.id, r.room_id, r.title, r.notice_id,
                       # A notice row's own text is its group's ack suffix (services.ack).
                       (r.notice_text or "") + (r.text or "") if is_notice else r.text,
                       list(r.mentions or []),
                       r.attempts if attempts is None else attempts, r.resend,
                       bool(r.notice_urgent) if is_notice else bool(r.urgent),
                       reply=r.source == outbox.REPLY, epoch=epoch)

    async def _claim(self, account: str, now: datetime, limit: int, epoch: int, *,
                     replies: bool = False, merge: bool = False) -> list[Claimed]:
        """Mark what to send next `sending`: pending replies (when `replies`), else up to
        `limit` other rows of this account; one session (finding nothing commits nothing)."""
        async with self._engine.connect() as session:
            faults.hit("sender.claim")
            generation = self._reply_generation
            if replies and self._replies_seen.get(account, -1) < generation:
                found = await self._claim_replies(session, account, now, epoch, merge=merge)
                if found:
                    return found
                self._replies_seen[account] = generation
            # On PostgreSQL the rows are locked (skipping locked ones): each goes to one
            # transaction, whatever else runs.
            stmt = _claim_stmt(limit, session.dialect.name == "postgresql",
                               account in self.channels)
            candidates = (await _run(session, stmt, {
                "p_account": account, "p_transport": self.transport.name,
                "p_now": now})).all()
            if not candidates:
                return []
            rows: list[Claimed] = []
            for r in candidates:
                row = self._claimed(r, attempts=r.attempts + 1, epoch=epoch)
                if r.attempts and r.attempt_at is not None:
                    # A retry after an error (a lost connection, say): the platform may have
                    # delivered the first attempt anyway; our echo says so.
                    echo_at = await self._echo_since(
                        session, transport=r.transport, room_id=row.room_id,
                        first_part=self._first_part(account, row), since=r.attempt_at)
                    if echo_at is not None:
                        # The row is `pending` here (MARK_SENT, for rows `sending`, left it
                        # pending and it was claimed again and again, never sent).
                        marked = await _run(session, MARK_ECHOED, {
                            "p_ids": [row.id], "p_at": echo_at,
                            "lease_key": self._key(account), "lease_epoch": epoch})
                        if _count(marked):
                            self._echoed.add(account)
                            # It went out then: the next send keeps its gap from it.
                            self.pacer(account).remember(echo_at)
                        continue
                rows.append(row)
            if not rows:
                await session.commit()
                return []
            first = candidates[0]
            if (limit == 1 and rows[0].id == first.id and first.notice_id is None
                    and not first.attempts):
                # Paced, a plain text (an alert, a ticket): others of the same kind piling
                # up for that group go with it in one message.
                rows = [await self._merge(session, first, rows[0], now)]
            rows = await self._mark_sending(session, account, rows, now, epoch)
        return sorted(rows, key=lambda c: (not c.urgent, c.id))

    async def _merge(self, session: AsyncConnection, first: Any, row: Claimed, now: datetime
                     ) -> Claimed:
        """`row` with the other pending first tries of its source for its group, as one
        message of at most `split_at` characters."""
        more = (await session.execute(
            select(OutboxMessage.id, OutboxMessage.text, OutboxMessage.mentions)
            .where(OutboxMessage.group_id == first.group_id,
                   OutboxMessage.status == OutboxStatus.PENDING,
                   OutboxMessage.source == first.source,
                   OutboxMessage.notice_id.is_(None), OutboxMessage.attempts == 0,
                   OutboxMessage.id != first.id,
                   or_(OutboxMessage.next_attempt_at.is_(None),
                       OutboxMessage.next_attempt_at <= now))
            .order_by(OutboxMessage.id).limit(MERGE_LIMIT))).all()
        return _merged(row, [(m.id, m.text or "", m.mentions or []) for m in more],
                       self.pacing.split_at)

    def _claim_size(self, account: str, pacer: Pacer, lease: Lease, now: datetime) -> int:
        """How many rows to claim: all at once unpaced; paced, the sends the pacer should
        allow within CLAIM_AHEAD seconds at the average gap, and within the lease's safe time
        (`_may_send`); one for an official channel (its limits are not a gap)."""
        if not pacer.paced:
            return UNPACED_CLAIM
        if account in self.channels:
            return 1
        average = self.pacing.min_gap_seconds + self.pacing.jitter_seconds / 2
        ahead = min(CLAIM_AHEAD,
                    (lease.until - self._elapsed.at(now)).total_seconds()
                    - self.lease_seconds / 3)
        if average <= 0 or ahead <= average:
            return 1
        return min(UNPACED_CLAIM, 1 + int(ahead / average))

    def _blocked(self, account: str, pacer: Pacer, row: Claimed, now: datetime) -> bool:
        """Whether `row` may not go now: not the account's turn yet, stopping, or the lease
        it was claimed under gone or about to run out unrenewed."""
        return (pacer.next_allowed(now) > now or self._stopping
                or not self._may_send(row, account, now))

    async def _turns(self, account: str, pacer: Pacer, claimed: Sequence[Claimed]
                     ) -> AsyncGenerator[Claimed, None]:
        """Each claimed row when its turn comes, the pacer's lock held while the caller sends
        it (the one per-row turn check of both send paths). A row waits for the gap before it
        (not woken by new rows: a batch spans about CLAIM_AHEAD seconds); anything longer (a
        pause, a cap), stopping, or the lease running out ends the iteration: the caller puts
        the rows it did not get back, unattempted. Use with contextlib.aclosing."""
        longest = timedelta(seconds=pacer.settings.min_gap_seconds
                            + pacer.settings.jitter_seconds + 1e-3)
        for row in claimed:
            while True:
                now = self.clock.now()
                allowed = pacer.next_allowed(now)
                if (allowed <= now or allowed - now > longest or self._stopping
                        or not self._may_send(row, account, allowed)):
                    break
                await self._wait_turn(account, (allowed - now).total_seconds())
            async with pacer.lock:
                if self._blocked(account, pacer, row, self.clock.now()):
                    return
                yield row

    async def _wait_turn(self, account: str, seconds: float) -> None:
        """Wait for the next turn inside a claimed batch: the worker counts as idle meanwhile
        (as between claims), and only stopping ends the wait early."""
        self._in_turn.add(account)
        try:
            await self._idle_until(account, self._stop_event, seconds)
        finally:
            self._in_turn.discard(account)

    def _unattempted(self, outcomes: list[Outcome], claimed: Sequence[Claimed],
                     **kwargs: Any) -> None:
        """The claimed rows with no outcome yet go back, unattempted."""
        now = self.clock.now()
        done = {o.row.id for o in outcomes}
        outcomes += [Outcome("release", r, now, **kwargs) for r in claimed if r.id not in done]

    async def _send_claimed(self, account: str, pacer: Pacer, claimed: list[Claimed]) -> None:
        """Send what was claimed, each row in its turn; every row ends with an outcome in
        `_unsettled`, whatever is raised on the way (rows not tried go back unattempted)."""
        channel = self.channels.get(account)
        if channel is not None:
            await self._send_channel(account, channel, pacer, claimed)
            return
        outcomes = self._unsettled.setdefault(account, [])
        try:
            async with contextlib.aclosing(self._turns(account, pacer, claimed)) as turns:
                async for row in turns:
                    try:
                        faults.hit("sender.send")
                        for i, part in enumerate(self._parts(row)):
                            await self.transport.send(row.room_id, part,
                                                      mentions=row.mentions if i == 0 else (),
                                                      account=pacer.name)
                            pacer.record(self.clock.now())
                    except TransportError as exc:
                        now = self.clock.now()
                        if exc.not_sent:
                            # Nothing left (no connection): no attempt spent, try again later.
                            self._unattempted(outcomes, claimed, retry_at=now + timedelta(
                                seconds=max(1.0, min(self.pacing.retry_base_seconds, 30.0))))
                            return
                        if exc.rate_limited:
                            held = claimed[claimed.index(row):]
                            self._unattempted(outcomes, claimed)
                            await self._pause(pacer, str(exc), held)
                            return
                        # The attempt may have gone out: the next send keeps a whole gap from
                        # it (the next row of a batch would otherwise follow at once).
                        pacer.record(now)
                        outcomes.append(self._failure(row, str(exc), retryable=exc.retryable))
                        continue
                    except Exception as exc:
                        # Anything else in the send step: the attempt may have gone out; a
                        # retry checks our echo first, and the next send keeps a gap from it.
                        pacer.record(self.clock.now())
                        log.exception("send of outbox row %d raised", row.id)
                        outcomes.append(self._failure(row, repr(exc)[:200], retryable=True))
                        continue
                    outcomes.append(Outcome("sent", row, self.clock.now()))
        finally:
            # A turn not given (a reply's, stopping, the lease), or cancelled (or worse).
            self._unattempted(outcomes, claimed)

    async def _send_channel(self, account: str, channel: OutboundChannel, pacer: Pacer,
                            claimed: list[Claimed]) -> None:
        """Send claimed rows through an official channel, each rendered by the channel (split
        at its byte limit, the tag on every part) and its results classified:

        - DELIVERED: sent (after the last part).
        - RETRY_AFTER: tried again after `retry_after` (an attempt spent); `rate_limited`
          pauses the whole credential for its penalty (or the platform's reset, if later), the
          rows put back unattempted and the notices' senders told, as for WeChat.
        - PERMANENT: failed at once, the notice's sender told and the tier-1 commanders alerted
          through another channel.
        - UNKNOWN (and anything the adapter raises): where the channel receives, retried, and
          the retry first looks for our echo; where it cannot show echoes, counted sent once:
          a maybe-delivered text is never sent again to a group that would see it twice.
        Parts already delivered are sent again with the rest when a later part is retried."""
        outcomes = self._unsettled.setdefault(account, [])
        try:
            async with contextlib.aclosing(self._turns(account, pacer, claimed)) as turns:
                async for row in turns:
                    now = self.clock.now()
                    ready = pacer.next_allowed(now, room=row.room_id)
                    if ready > now:
                        # The credential may send, but not to this group yet (per group and
                        # second): this row waits, unattempted; the next goes on.
                        outcomes.append(Outcome("release", row, now, retry_at=ready))
                        continue
                    try:
                        faults.hit("sender.send")
                    except Exception as exc:
                        # Before anything left: an attempt spent, retried with back-off.
                        outcomes.append(self._failure(row, repr(exc)[:200], retryable=True))
                        continue
                    result = await self._post(account, channel, pacer, row)
                    now = self.clock.now()
                    error = (f"{result.code} {result.detail}".strip()[:200]
                             or result.outcome.value)
                    match result.outcome:
                        case SendOutcome.DELIVERED:
                            outcomes.append(Outcome("sent", row, now))
                        case SendOutcome.RETRY_AFTER if result.rate_limited:
                            held = claimed[claimed.index(row):]
                            self._unattempted(outcomes, claimed)
                            await self._pause(pacer, error, held, at_least=result.retry_after)
                            return
                        case SendOutcome.RETRY_AFTER:
                            outcomes.append(self._failure(row, error, retryable=True,
                                                          after=result.retry_after))
                        case SendOutcome.PERMANENT:
                            log.error("channel %r refused outbox row %d for good: %s",
                                      account, row.id, error)
                            outcomes.append(Outcome("failed", row, now, error=error,
                                                    alert=True))
                        case SendOutcome.UNKNOWN if channel.capabilities.receive:
                            outcomes.append(self._failure(row, error, retryable=True))
                        case SendOutcome.UNKNOWN:
                            log.warning("outbox row %d on channel %r: outcome unknown (%s), "
                                        "no echo to check; counted sent once", row.id,
                                        account, error)
                            outcomes.append(Outcome("sent", row, now))
        finally:
            self._unattempted(outcomes, claimed)

    async def _post(self, account: str, channel: OutboundChannel, pacer: Pacer,
                    row: Claimed) -> SendResult:
        """Render the row and send its parts in order, paced; the first result that is not
        DELIVERED ends it. A text the channel cannot render is PERMANENT (a person must
        shorten it or fix the channel's limits); an adapter that raises (it should classify
        instead) gives UNKNOWN: the request may have left."""
        try:
            payloads = channel.render(self._rendering(row))
        except Exception as exc:
            log.exception("channel %r cannot render outbox row %d", account, row.id)
            return SendResult(SendOutcome.PERMANENT, code="render", detail=repr(exc)[:200])
        result = SendResult(SendOutcome.PERMANENT, code="render", detail="nothing to send")
        for n, payload in enumerate(payloads):
            at = self.clock.now()
            ready = pacer.next_allowed(at, room=row.room_id)
            lease = self._leases.get(self._key(account))
            if n and ready > at and (lease is None or (
                    lease.until - self._elapsed.at(ready)).total_seconds()
                    < self.lease_seconds / 3):
                # A later part would outlive the lease: the row is retried whole (its first
                # parts posted again).
                return SendResult(SendOutcome.RETRY_AFTER,
                                  retry_after=(ready - at).total_seconds(),
                                  detail="parts over the limits")
            if ready > at:
                # A later part over the limits: wait for it, the lease allowing.
                await self.clock.sleep((ready - at).total_seconds())
            try:
                result = await channel.send(row.room_id, payload)
            except Exception as exc:
                log.exception("send of outbox row %d on channel %r raised", row.id, account)
                result = SendResult(SendOutcome.UNKNOWN, detail=repr(exc)[:200])
            pacer.record(self.clock.now(), row.room_id)
            if result.outcome is not SendOutcome.DELIVERED:
                break
        return result

    async def _alert(self, session: AsyncSession, account: str, o: Outcome, now: datetime
                     ) -> None:
        """A channel refused for good: tell the tier-1 commanders, in their group, through a
        channel other than the failing one (the group's binding, else its fallback); once an
        hour per channel."""
        last = self._alerted.get(account)
        if last is not None and now - last < HOUR:
            return
        self._alerted[account] = now
        code, _, detail = o.error.partition(" ")
        text = channel_texts.Channel.PERMANENT.format(
            name=account, code=code or "?", detail=(detail or o.error)[:80],
            group=o.row.group_title)
        rows = (await session.execute(
            select(Group.id, Group.node_id, Group.account, Group.fallback_account,
                   Group.transport).join(Node, Node.id == Group.node_id)
            .where(Node.tier == 1).order_by(Group.id))).all()
        told = False
        failing = account or self.default_account
        for gid, node_id, bound, fallback, transport in rows:
            via = next((a for a in (bound, *([fallback] if fallback else []))
                        if (a or self.default_account) != failing), None)
            if via is None:
                continue
            node = await session.get(Node, node_id)
            mentions: list[str] = []
            if node is not None:
                for person in await chain.commanders(session, node=node):
                    mentions += await people.contact_ids(session, person_id=person.id,
                                                         transport=transport)
            await outbox.queue(session, group_id=gid, text=text, mentions=mentions,
                               source="channel-alert", now=now, urgent=True,
                               via="" if via == bound else via)
            told = True
        if not told:
            log.error("channel %r refused for good and no tier-1 group has another channel "
                      "to alert through", account)

    def _failure(self, row: Claimed, error: str, *, retryable: bool,
                 after: float | None = None) -> Outcome:
        now = self.clock.now()
        final = not retryable or row.attempts >= self.pacing.max_attempts
        log.warning("send of outbox row %d failed (attempt %d%s): %s", row.id, row.attempts,
                    ", giving up" if final else "", error)
        if final:
            return Outcome("failed", row, now, error=error)
        backoff = self.pacing.retry_base_seconds * 2 ** (row.attempts - 1)
        return Outcome("retry", row, now, error=error, retry_at=now + timedelta(
            seconds=backoff if after is None else max(after, 1.0)))

    async def _settle(self, account: str) -> None:
        """Write every outcome held in memory in one transaction; on failure they stay held
        (the worker backs off and tries again before claiming anything)."""
        outcomes = self._unsettled.get(account)
        if not outcomes:
            return
        now = self.clock.now()
        failed = False
        key = self._key(account)
        lease = self._leases.get(key)
        stale = [o for o in outcomes if lease is None or o.row.epoch != lease.epoch]
        if stale:
            # Claimed under a lease this process no longer holds: its rows are the new
            # holder's to reconcile (by echo), not ours to mark.
            log.warning("account %r: %d outcomes of a lost lease left to its new holder",
                        key, len(stale))
            outcomes[:] = [o for o in outcomes if o not in stale]
        if lease is None or not outcomes:
            del outcomes[:]
            return
        fence = {"lease_key": key, "lease_epoch": lease.epoch}
        expected = changed = 0
        # A notice's failure note and a channel's alert need the ORM; marks alone run on a
        # bare connection (cheaper per transaction).
        orm = any(o.alert or (o.kind == "failed" and o.row.notice_id is not None)
                  for o in outcomes)
        async with contextlib.AsyncExitStack() as stack:
            session: Db
            if orm:
                session = await stack.enter_async_context(self.sessions())
                await stack.enter_async_context(session.begin())
            else:
                session = await stack.enter_async_context(self._engine.begin())
            faults.hit("sender.settle")
            sent = [(o.row, o.at) for o in outcomes if o.kind == "sent"]
            if any(row.reply for row, _ in sent):
                # Only a reply's send is not in the outbox afterwards (see `_load_state`).
                await _note_last_send(session, self.pacer(account).name,
                                      max(at for _, at in sent))
            replies = [i for row, _ in sent if row.reply for i in row.ids]
            if replies:
                # A sent reply leaves no row behind (the pacer counted it; the outbox does
                # not grow by one row per command).
                expected += len(replies)
                changed += _count(await _run(session, DELETE_SENT_REPLIES,
                                             {"p_ids": replies, **fence}))
            marks = [{"p_id": i, "p_at": at, **fence}
                     for row, at in sent if not row.reply for i in row.ids]
            if len(marks) == 1:
                expected += 1
                changed += _count(await _run(session, MARK_SENT_EACH, marks[0]))
            elif marks:
                # One executemany for a batch's sends, each with its own time.
                result = await _run(session, MARK_SENT_EACH, marks)  # type: ignore[arg-type]
                if _dialect(session).supports_sane_multi_rowcount:
                    expected += len(marks)
                    changed += _count(result)
                else:
                    # The driver cannot count them (asyncpg): ask the lease itself.
                    expected += 1
            for o in outcomes:
                if o.kind == "sent":
                    continue
                kind = "release_later" if o.kind == "release" and o.retry_at else o.kind
                failed = failed or o.kind == "failed"
                expected += len(o.row.ids)
                done = _count(await _run(session, MARK[kind], {
                    "p_ids": o.row.ids, "p_retry": o.retry_at, "p_error": o.error[:500],
                    **fence}))
                changed += done
                if o.kind == "failed" and done and o.row.notice_id is not None:
                    assert isinstance(session, AsyncSession)
                    await self._tell_sender(session, o.row.notice_id, _failed_note(o), now)
                if o.alert and done:
                    assert isinstance(session, AsyncSession)
                    await self._alert(session, account, o, now)
            if changed < expected:
                # Refused (the lease was taken over) or settled already: either way the
                # database has the last word; a lost lease is dropped here.
                await self._lost(session, key, lease.epoch)
        del outcomes[:]
        if failed:
            self.wake()

    async def _pause(self, pacer: Pacer, error: str, rows: Sequence[Claimed], *,
                     at_least: float | None = None) -> None:
        now = self.clock.now()
        until = pacer.pause(now)
        if at_least is not None and now + timedelta(seconds=at_least) > until:
            # The platform's own reset time is later than the pause: wait for it.
            until = pacer.paused_until = now + timedelta(seconds=at_least)
        log.warning("account %r rate-limited (%s): paused until %s", pacer.name, error,
                    until.isoformat())
        try:
            async with self.sessions() as session, session.begin():
                faults.hit("sender.pause")
                insert = insert_for(session)
                values = {"paused_until": until, "last_rate_limited_at": now,
                          "last_error": error}
                await session.execute(insert(BotAccount).values(name=pacer.name, **values)
                                      .on_conflict_do_update(index_elements=["name"],
                                                             set_=values))
                local = until.astimezone(self.zone)
                for notice_id in dict.fromkeys(r.notice_id for r in rows
                                               if r.notice_id is not None):
                    await self._tell_sender(session, notice_id, lambda n: (
                        texts.Notice.PAUSED.format(
                            tag=notices.tag(n.id, n.urgent),
                            account=pacer.name or texts.Notice.DEFAULT_ACCOUNT,
                            error=error[:40], until=f"{local:%m月%d日%H:%M}")), now)
        except Exception:
            # The pause holds in memory anyway; only its record and the note are lost.
            log.exception("could not record the pause of account %r", pacer.name)
        self.wake()

    async def _tell_sender(self, session: AsyncSession, notice_id: int,
                           render: Callable[[Notice], str], now: datetime) -> None:
        """Queue a note to the notice's origin group, mentioning whoever sent it."""
        notice = await session.get(Notice, notice_id)
        if notice is None or notice.origin_group_id is None:
            return
        group = await session.get(Group, notice.origin_group_id)
        if group is None:
            return
        mentions = (await people.contact_ids(session, person_id=notice.sender_id,
                                             transport=group.transport)
                    if notice.sender_id is not None else [])
        await outbox.queue(session, group_id=group.id, text=render(notice), mentions=mentions,
                           source="sender-note", now=now)
