"""The outbox sender: per bot account, paced; claims rows, marks them sending, sends, marks
them sent. Nothing about a delivery lives only in memory; after a crash, rows left in
`sending` are checked against the bot's own echoes before anything is sent again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.clock import Clock
from bot.config import PacingSettings
from bot.services import notice as notices
from bot.services import outbox, people
from bot.transports.base import Transport, TransportError
from models import BotAccount, Echo, Group, Notice, OutboxMessage, OutboxStatus
from models.base import insert_for

log = logging.getLogger(__name__)

# Rows claimed at once when an account sends without a gap (benchmarks, tests, a fast
# gateway); with a gap there is one row in `sending` per account at a time.
UNPACED_CLAIM = 50
# How long before its send time a paced row is claimed.
CLAIM_LEAD = timedelta(milliseconds=100)


class Pacer:
    """One account's pace: one send at a time, a gap with jitter, hourly and daily caps, and
    a pause after the platform says "too frequent"."""

    def __init__(self, name: str, settings: PacingSettings, rng: random.Random):
        self.name = name
        self.settings = settings
        self.rng = rng
        self.lock = asyncio.Lock()
        self.last_send: datetime | None = None
        self.gap = 0.0
        self.sent: deque[datetime] = deque()
        self.paused_until: datetime | None = None
        self.last_rate_limited: datetime | None = None

    @property
    def paced(self) -> bool:
        """Whether sends wait a gap between them."""
        return self.settings.min_gap_seconds > 0 or self.settings.jitter_seconds > 0

    def next_allowed(self, now: datetime) -> datetime:
        """The earliest time the next send may start."""
        while self.sent and self.sent[0] <= now - timedelta(days=1):
            self.sent.popleft()
        at = now
        if self.paused_until is not None and self.paused_until > at:
            at = self.paused_until
        if self.last_send is not None:
            at = max(at, self.last_send + timedelta(seconds=self.gap))
        hour_ago = now - timedelta(hours=1)
        in_hour = [t for t in self.sent if t > hour_ago]
        if len(in_hour) >= self.settings.hourly_cap:
            at = max(at, in_hour[-self.settings.hourly_cap] + timedelta(hours=1))
        if len(self.sent) >= self.settings.daily_cap:
            at = max(at, self.sent[-self.settings.daily_cap] + timedelta(days=1))
        return at

    def record(self, at: datetime) -> None:
        """A send happened: the next one waits a fresh random gap."""
        self.sent.append(at)
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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker marked `sending`, with what is needed to send it."""

    id: int
    room_id: str
    group_title: str
    notice_id: int | None
    text: str | None
    mentions: list[str]
    attempts: int
    resend: bool
    urgent: bool


class OutboxSender:
    """Drains the outbox with one paced worker per bot account."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], transport: Transport,
                 clock: Clock, pacing: PacingSettings, zone: ZoneInfo,
                 default_account: str = "", rng: random.Random | None = None):
        self.sessions = sessions
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
        self._idle = asyncio.Event()
        self._idle.set()
        self._notices: dict[int, Notice] = {}
        self._started = False
        self._stopping = False
        self._helpers: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, accounts: Sequence[str] = ("",)) -> None:
        """Load pacing state, reconcile what a crash left in `sending`, start the workers."""
        await self._load_state()
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
        self._workers.clear()
        self._helpers.clear()
        self._busy.clear()
        self._idle.set()
        self._stopping = False

    def wake(self) -> None:
        """Rows were queued: every worker looks at the outbox now."""
        if not self._started:
            return
        self._idle.clear()
        for name, event in self._wakes.items():
            self._busy.add(name)
            event.set()
        helper = asyncio.get_running_loop().create_task(self._ensure_workers_for_pending())
        self._helpers.add(helper)
        helper.add_done_callback(self._helpers.discard)

    async def idle(self) -> None:
        """Wait until no worker can send anything right now (rows may wait for pacing)."""
        await self._idle.wait()

    def pacer(self, account: str) -> Pacer:
        """The pacer of one account (the default account under either of its names)."""
        key = account or self.default_account
        if key not in self.pacers:
            self.pacers[key] = Pacer(key, self.pacing, self.rng)
        return self.pacers[key]

    # -- direct replies ----------------------------------------------------------------------

    async def send_direct(self, account: str, room_id: str, text: str,
                          mentions: Sequence[str] = ()) -> None:
        """A reply to a command: not queued, but one send at a time per account, counted
        against its caps, and never while the account is paused."""
        pacer = self.pacer(account)
        now = self.clock.now()
        if pacer.paused_until is not None and pacer.paused_until > now:
            log.warning("account %r paused until %s: reply to %s dropped", account,
                        pacer.paused_until.isoformat(), room_id)
            return
        async with pacer.lock:
            for i, part in enumerate(notices.split_text(text, self.pacing.split_at)):
                try:
                    await self.transport.send(room_id, part, mentions=mentions if i == 0 else (),
                                              account=account)
                except TransportError as exc:
                    if exc.rate_limited:
                        await self._pause(pacer, str(exc), [])
                    raise
                pacer.record(self.clock.now())

    # -- reconciliation ----------------------------------------------------------------------

    def _parts(self, row: Claimed | OutboxMessage, notice: Notice | None) -> list[str]:
        text = notice.text if notice is not None else (row.text or "")
        urgent = notice.urgent if notice is not None else False
        return notices.render_parts(text=text, notice_id=row.notice_id, urgent=urgent,
                                    resend=row.resend, limit=self.pacing.split_at)

    async def _notice(self, session: AsyncSession, notice_id: int | None) -> Notice | None:
        if notice_id is None:
            return None
        if notice_id not in self._notices:
            found = await session.get(Notice, notice_id)
            if found is None:
                return None
            self._notices[notice_id] = found
        return self._notices[notice_id]

    async def reconcile(self) -> tuple[int, int]:
        """Rows left `sending` by a crash: `sent` if our echo shows the send went out after the
        attempt started, else `pending` again and marked 补发. Returns (confirmed, resent)."""
        confirmed = resent = 0
        find_echo = getattr(self.transport, "find_echo", None)
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(
                select(OutboxMessage, Group).join(Group, Group.id == OutboxMessage.group_id)
                .where(OutboxMessage.status == OutboxStatus.SENDING,
                       Group.transport == self.transport.name)
                .order_by(OutboxMessage.id))).all()
            for row, group in rows:
                notice = await self._notice(session, row.notice_id)
                first = self._parts(row, notice)[0]
                since = row.attempt_at or row.created_at
                echo_at = await self._echo_since(session, group=group, first_part=first,
                                                 since=since)
                if echo_at is None and find_echo is not None:
                    echo_at = await find_echo(group.room_id, first, since)
                if echo_at is not None:
                    row.status, row.sent_at = OutboxStatus.SENT, echo_at
                    confirmed += 1
                else:
                    row.status, row.resend, row.attempt_id = OutboxStatus.PENDING, True, None
                    resent += 1
        if rows:
            log.warning("reconciled %d rows left sending: %d confirmed by echo, %d to resend",
                        len(rows), confirmed, resent)
        return confirmed, resent

    # -- workers -----------------------------------------------------------------------------

    async def _load_state(self) -> None:
        now = self.clock.now()
        async with self.sessions() as session:
            for account in (await session.execute(select(BotAccount))).scalars():
                pacer = self.pacer(account.name)
                pacer.paused_until = account.paused_until
                pacer.last_rate_limited = account.last_rate_limited_at
            for account, sent_at in await session.execute(
                select(OutboxMessage.account, OutboxMessage.sent_at)
                .where(OutboxMessage.sent_at > now - timedelta(days=1))
                .order_by(OutboxMessage.sent_at)
            ):
                self.pacer(account).sent.append(sent_at)

    async def _ensure_workers_for_pending(self) -> None:
        if not self._started:
            return
        async with self.sessions() as session:
            accounts = (await session.execute(
                select(OutboxMessage.account).where(OutboxMessage.status == OutboxStatus.PENDING)
                .distinct())).scalars().all()
        for name in accounts:
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
        self._busy.discard(account)
        if not self._busy:
            self._idle.set()
        waiters = [asyncio.ensure_future(wake.wait())]
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
        while not self._stopping:
            wake.clear()
            try:
                now = self.clock.now()
                allowed = pacer.next_allowed(now)
                # Claim a little before the gap ends, so the claim's own transaction does not
                # lengthen every gap; the send itself still waits for its time.
                if allowed > now + CLAIM_LEAD:
                    await self._wait(account, (allowed - now - CLAIM_LEAD).total_seconds())
                    continue
                claimed = await self._claim(account, now, 1 if pacer.paced else UNPACED_CLAIM)
                if not claimed:
                    await self._wait(account, await self._next_retry_in(account, now))
                    continue
                await self._send_claimed(account, pacer, claimed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sender for account %r failed; retrying", account)
                await self._wait(account, 1.0)

    async def _next_retry_in(self, account: str, now: datetime) -> float | None:
        async with self.sessions() as session:
            at = (await session.execute(select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.account == account))).scalar_one()
        return None if at is None else max(0.0, (at - now).total_seconds())

    async def _echo_since(self, session: AsyncSession, *, group: Group, first_part: str,
                          since: datetime) -> datetime | None:
        """When our echo of this text was seen in that room since `since` (None: not seen)."""
        return (await session.execute(select(func.min(Echo.at)).where(
            Echo.transport == group.transport, Echo.room_id == group.room_id,
            Echo.digest == notices.digest(first_part), Echo.at >= since))).scalar_one()

    async def _claim(self, account: str, now: datetime, limit: int) -> list[Claimed]:
        async with self.sessions() as session, session.begin():
            stmt = (select(OutboxMessage, Group)
                    .join(Group, Group.id == OutboxMessage.group_id)
                    .where(OutboxMessage.status == OutboxStatus.PENDING,
                           OutboxMessage.account == account,
                           Group.transport == self.transport.name,
                           or_(OutboxMessage.next_attempt_at.is_(None),
                               OutboxMessage.next_attempt_at <= now))
                    .order_by(OutboxMessage.urgent.desc(), OutboxMessage.id).limit(limit))
            if session.bind.dialect.name == "postgresql":
                # Several sender processes share the outbox: each row goes to one of them.
                stmt = stmt.with_for_update(of=OutboxMessage, skip_locked=True)
            candidates = (await session.execute(stmt)).all()
            if not candidates:
                return []
            ids, groups = [], {}
            for row, group in candidates:
                groups[group.id] = group
                notice = await self._notice(session, row.notice_id)
                if row.attempts and row.attempt_at is not None:
                    # A retry after an error (a lost connection, say): the platform may have
                    # delivered the first attempt anyway; our echo says so.
                    echo_at = await self._echo_since(
                        session, group=group, first_part=self._parts(row, notice)[0],
                        since=row.attempt_at)
                    if echo_at is not None:
                        row.status, row.sent_at, row.error = OutboxStatus.SENT, echo_at, None
                        continue
                ids.append(row.id)
            if not ids:
                return []
            attempt = str(uuid.uuid4())
            rows = (await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENDING, attempt_id=attempt, attempt_at=now,
                        attempts=OutboxMessage.attempts + 1)
                .returning(OutboxMessage.id, OutboxMessage.group_id, OutboxMessage.notice_id,
                           OutboxMessage.text, OutboxMessage.mentions, OutboxMessage.attempts,
                           OutboxMessage.resend, OutboxMessage.urgent)
                .execution_options(synchronize_session=False))).all()
        return sorted((Claimed(r.id, groups[r.group_id].room_id, groups[r.group_id].title,
                               r.notice_id, r.text, list(r.mentions or []), r.attempts, r.resend,
                               r.urgent) for r in rows), key=lambda c: (not c.urgent, c.id))

    async def _send_claimed(self, account: str, pacer: Pacer, claimed: list[Claimed]) -> None:
        sent: list[tuple[int, datetime]] = []
        try:
            for index, row in enumerate(claimed):
                parts = self._parts(row, self._notices.get(row.notice_id or -1))
                while (early := pacer.next_allowed(self.clock.now()) - self.clock.now()) \
                        > timedelta(0):
                    if early > 2 * CLAIM_LEAD or self._stopping:
                        await self._release(claimed[index:])
                        return
                    await self._wait(account, early.total_seconds())
                try:
                    # The check is inside the lock: replies (and a second worker under the
                    # default account's other name) share this pacer.
                    async with pacer.lock:
                        now = self.clock.now()
                        if pacer.next_allowed(now) > now:
                            await self._release(claimed[index:])
                            return
                        for i, part in enumerate(parts):
                            await self.transport.send(row.room_id, part,
                                                      mentions=row.mentions if i == 0 else (),
                                                      account=pacer.name)
                            pacer.record(self.clock.now())
                except TransportError as exc:
                    if exc.not_sent:
                        # Nothing left (no connection): no attempt spent, try again later.
                        await self._mark_sent(sent)
                        sent = []
                        await self._release(claimed[index:], retry_in=max(
                            1.0, min(self.pacing.retry_base_seconds, 30.0)))
                        return
                    if exc.rate_limited:
                        await self._mark_sent(sent)
                        sent = []
                        await self._release(claimed[index:])
                        await self._pause(pacer, str(exc), claimed[index:])
                        return
                    await self._failed_attempt(row, exc)
                    continue
                sent.append((row.id, self.clock.now()))
        finally:
            await self._mark_sent(sent)

    async def _mark_sent(self, sent: list[tuple[int, datetime]]) -> None:
        if not sent:
            return
        async with self.sessions() as session, session.begin():
            for row_id, at in sent:
                await session.execute(update(OutboxMessage).where(
                    OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.SENDING
                ).values(status=OutboxStatus.SENT, sent_at=at, error=None))

    async def _release(self, rows: Sequence[Claimed], *, retry_in: float | None = None) -> None:
        """Put claimed rows back (the attempt did not happen), optionally not before
        `retry_in` seconds."""
        if not rows:
            return
        values: dict[str, Any] = {"status": OutboxStatus.PENDING, "attempt_id": None,
                                  "attempts": OutboxMessage.attempts - 1}
        if retry_in is not None:
            values["next_attempt_at"] = self.clock.now() + timedelta(seconds=retry_in)
        async with self.sessions() as session, session.begin():
            await session.execute(update(OutboxMessage).where(
                OutboxMessage.id.in_([r.id for r in rows]),
                OutboxMessage.status == OutboxStatus.SENDING,
            ).values(**values))

    async def _failed_attempt(self, row: Claimed, exc: TransportError) -> None:
        now = self.clock.now()
        final = not exc.retryable or row.attempts >= self.pacing.max_attempts
        log.warning("send of outbox row %d failed (attempt %d%s): %s", row.id, row.attempts,
                    ", giving up" if final else "", exc)
        async with self.sessions() as session, session.begin():
            values: dict[str, Any] = {"error": str(exc)[:500]}
            if final:
                values["status"] = OutboxStatus.FAILED
            else:
                values["status"] = OutboxStatus.PENDING
                values["next_attempt_at"] = now + timedelta(
                    seconds=self.pacing.retry_base_seconds * 2 ** (row.attempts - 1))
            await session.execute(update(OutboxMessage).where(
                OutboxMessage.id == row.id).values(**values))
            notice = self._notices.get(row.notice_id or -1)
            if final and notice is not None:
                await self._tell_sender(session, notice, texts.Notice.FAILED.format(
                    tag=notices.tag(notice.id, notice.urgent), group=row.group_title,
                    attempts=row.attempts, error=str(exc)[:60]), now)
        if final:
            self.wake()

    async def _pause(self, pacer: Pacer, error: str, rows: Sequence[Claimed]) -> None:
        now = self.clock.now()
        until = pacer.pause(now)
        log.warning("account %r rate-limited (%s): paused until %s", pacer.name, error,
                    until.isoformat())
        async with self.sessions() as session, session.begin():
            insert = insert_for(session)
            values = {"paused_until": until, "last_rate_limited_at": now, "last_error": error}
            await session.execute(insert(BotAccount).values(name=pacer.name, **values)
                                  .on_conflict_do_update(index_elements=["name"], set_=values))
            told: set[int] = set()
            for row in rows:
                notice = self._notices.get(row.notice_id or -1)
                if notice is None or notice.id in told:
                    continue
                told.add(notice.id)
                local = until.astimezone(self.zone)
                await self._tell_sender(session, notice, texts.Notice.PAUSED.format(
                    tag=notices.tag(notice.id, notice.urgent), account=pacer.name or
                    texts.Notice.DEFAULT_ACCOUNT, error=error[:40],
                    until=f"{local:%m月%d日%H:%M}"), now)
        self.wake()

    async def _tell_sender(self, session: AsyncSession, notice: Notice, text: str,
                           now: datetime) -> None:
        """Queue a note to the notice's origin group, mentioning whoever sent it."""
        if notice.origin_group_id is None:
            return
        group = await session.get(Group, notice.origin_group_id)
        if group is None:
            return
        mentions = (await people.contact_ids(session, person_id=notice.sender_id,
                                             transport=group.transport)
                    if notice.sender_id is not None else [])
        await outbox.queue(session, group_id=group.id, text=text, mentions=mentions,
                           source="sender-note", now=now)
