"""The watchdog on every sending account: silence where its groups normally talk, a self-test
whose echo must come back, sends with no echo, the gateway unreachable or its token rejected.
Each run concludes an `AccountHealth` per account, stores it (`AccountWatch`), queues ONE alert
per problem and episode through another channel than the failing one, and a recovery message
when the episode ends; then failover moves groups (bot.services.failover).

A restart reads the stored state back: nothing alerted is alerted again."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import health_texts, pii, texts
from bot.channels.base import AccountHealth, Health
from bot.config import WatchdogSettings
from bot.services import failover, outbox
from bot.services import notice as notices
from bot.transports.base import AccountState, IncomingMessage
from models import (
    AccountWatch,
    BotAccount,
    Echo,
    Group,
    InboundMessage,
    Node,
    Notice,
    OutboxMessage,
    OutboxStatus,
)
from models.base import insert_for

log = logging.getLogger(__name__)

# Problems that stop an account from sending (DOWN, failover); any other one is DEGRADED.
DOWN_PROBLEMS = frozenset({"unreachable", "token_rejected", "banned", "paused"})
# Problems only the process driving the account (its transport's state) or hearing its groups
# can judge.
STATE_PROBLEMS = frozenset({"unreachable", "token_rejected", "banned"})
HEARD_PROBLEMS = frozenset({"silent", "no_echo"})
# What a gateway says when the token is the trouble, or the account is banned (lower case).
TOKEN_MARKERS = ("token", "unauthenticated", "unauthorized", "401", "expired", "过期")
BAN_MARKERS = ("banned", "blocked", "封", "限制登录", "被限制", "suspended")
# The sent rows the no-echo check looks at, newest first.
NO_ECHO_ROWS = 50
SOURCE = "watchdog"
# The self-test token's letters (no digits: the masking seam must leave it alone).
TOKEN_LETTERS = "abcdefghjkmnpqrstuvwxyz"
# How a probe's text starts (withdrawing stale probes finds them by it).
PROBE_HEAD = health_texts.PROBE.split("「", 1)[0] + "%"


class Activity:
    """What this process saw arrive per account (the pipeline keeps no chatter): the last
    inbound message that was not the bot's own. The watchdog stores it at each run."""

    def __init__(self) -> None:
        self.last_inbound: dict[str, datetime] = {}

    def seen(self, message: IncomingMessage) -> None:
        """A message arrived on `message.account`."""
        if message.is_self:
            return
        last = self.last_inbound.get(message.account)
        if last is None or message.at > last:
            self.last_inbound[message.account] = message.at


@dataclass(frozen=True, slots=True)
class Report:
    """What one run did."""

    health: list[AccountHealth]
    alerts: int = 0
    recoveries: int = 0
    probes: int = 0
    moved: int = 0
    moved_back: int = 0
    queued: int = 0
    alerted: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


def state_problems(state: AccountState | None) -> list[str]:
    """The gateway's view as problems: not connected is `unreachable`, `token_rejected` or
    `banned` by what its last error says."""
    if state is None or state.connected:
        return []
    error = (state.last_error or "").lower()
    if any(m in error for m in BAN_MARKERS):
        return ["banned"]
    if any(m in error for m in TOKEN_MARKERS):
        return ["token_rejected"]
    return ["unreachable"]


def health_of(problems: Iterable[str]) -> Health:
    """DOWN when a problem stops sending, DEGRADED for any other, OK for none."""
    found = set(problems)
    if found & DOWN_PROBLEMS:
        return Health.DOWN
    return Health.DEGRADED if found else Health.OK


async def watched_accounts(session: AsyncSession, *, configured: Iterable[str] = ()
                           ) -> list[str]:
    """Every account the chain knows: configured, bound to a group (active, fallback or moved
    from), with pacing state, or watched before."""
    names = set(configured)
    for column in (Group.account, Group.fallback_account, Group.moved_from):
        names |= set((await session.execute(select(column).distinct())).scalars())
    for column in (BotAccount.name, AccountWatch.account):
        names |= set((await session.execute(select(column))).scalars())
    # Empty fallback / moved-from mean "none"; the empty active account is the default one.
    used = set((await session.execute(select(Group.account).distinct())).scalars())
    return sorted(n for n in names if n or n in used or n in set(configured))


async def _rows(session: AsyncSession, names: Sequence[str], now: datetime
                ) -> dict[str, AccountWatch]:
    """The watch row of every account, made where missing, locked for this run (on
    PostgreSQL: two processes' runs take turns, so neither repeats the other's alert)."""
    if names:
        insert = insert_for(session)
        await session.execute(insert(AccountWatch).values([
            {"account": n, "health": Health.OK.value, "problems": [], "detail": "",
             "alerted": [], "probe_text": "", "probe_failed": False, "updated_at": now}
            for n in names]).on_conflict_do_nothing(index_elements=["account"]))
    rows = (await session.execute(select(AccountWatch).where(AccountWatch.account.in_(names))
                                  .order_by(AccountWatch.account)
                                  .with_for_update())).scalars().all()
    return {r.account: r for r in rows}


async def expected_inbound(session: AsyncSession, *, accounts: Sequence[str], now: datetime,
                           settings: WatchdogSettings) -> float:
    """How many commands the account's groups normally send in a silent window ending now:
    the configured minimum rate, else the mean over the last `learn_days` days of the same
    window of the day (inbound_message history). `accounts`: the account's names (the
    default account is also named "")."""
    window = timedelta(minutes=settings.silent_minutes)
    mine = or_(Group.account.in_(accounts), Group.moved_from.in_(accounts))
    if settings.min_rate_per_hour > 0:
        # The configured rate is for accounts that serve groups (not a spare, nor a robot
        # kept only as a fallback).
        if (await session.execute(select(Group.id).where(mine).limit(1))).first() is None:
            return 0.0
        return settings.min_rate_per_hour * window.total_seconds() / 3600
    ranges = [InboundMessage.received_at.between(now - timedelta(days=d) - window,
                                                 now - timedelta(days=d))
              for d in range(1, settings.learn_days + 1)]
    count = (await session.execute(
        select(func.count()).select_from(InboundMessage)
        .join(Group, (Group.transport == InboundMessage.transport)
              & (Group.room_id == InboundMessage.room_id))
        .where(mine, or_(*ranges))
    )).scalar_one()
    return count / settings.learn_days


async def _silent(session: AsyncSession, watch: AccountWatch, *, seen: datetime | None,
                  now: datetime, settings: WatchdogSettings, accounts: Sequence[str]) -> bool:
    last = max([t for t in (watch.last_inbound_at, seen) if t is not None], default=None)
    if last is None:
        # First sight of the account: silence is counted from now.
        last = now
    watch.last_inbound_at = last
    if now - last < timedelta(minutes=settings.silent_minutes):
        return False
    return await expected_inbound(session, accounts=accounts, now=now,
                                  settings=settings) >= settings.min_expected


async def _echo_at(session: AsyncSession, *, transport: str, room_id: str, text: str,
                   since: datetime) -> datetime | None:
    return (await session.execute(select(func.min(Echo.at)).where(
        Echo.transport == transport, Echo.room_id == room_id,
        Echo.digest == notices.digest(text), Echo.at >= since))).scalar_one()


async def _self_test(session: AsyncSession, watch: AccountWatch, *, room: str, transport: str,
                     now: datetime, settings: WatchdogSettings, rng: random.Random) -> int:
    """Advance the account's self-test: an echo back clears it, a timeout fails it (its row
    withdrawn unless a sender holds it), and a new probe is queued when one is due. Returns
    probes queued."""
    # Probes that timed out while a sender held them, and came back pending: withdrawn now.
    await session.execute(delete(OutboxMessage).where(
        OutboxMessage.group_id.is_(None), OutboxMessage.room_id == room,
        OutboxMessage.transport == transport, OutboxMessage.account == watch.account,
        OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.text.like(PROBE_HEAD),
        OutboxMessage.id != (watch.probe_row_id if watch.probe_text else -1)))
    if watch.probe_text and watch.probe_at is not None:
        echo = await _echo_at(session, transport=transport, room_id=room,
                              text=watch.probe_text, since=watch.probe_at)
        if echo is not None:
            watch.probe_ok_at, watch.probe_failed, watch.probe_text = echo, False, ""
        elif now - watch.probe_at >= timedelta(minutes=settings.self_test_timeout_minutes):
            watch.probe_failed, watch.probe_text = True, ""
            if watch.probe_row_id is not None:
                # Not yet sent (or being sent: then it goes, and proves nothing late).
                await session.execute(delete(OutboxMessage).where(
                    OutboxMessage.id == watch.probe_row_id,
                    OutboxMessage.status == OutboxStatus.PENDING))
        else:
            return 0
    if watch.probe_at is not None and (
            now - watch.probe_at < timedelta(minutes=settings.self_test_every_minutes)):
        return 0
    token = "".join(rng.choice(TOKEN_LETTERS) for _ in range(6))
    text = health_texts.PROBE.format(account=health_texts.account_label(watch.account),
                                     token=token)
    watch.probe_row_id = await outbox.queue_to_room(
        session, transport=transport, room_id=room, account=watch.account, text=text, now=now)
    watch.probe_text, watch.probe_at = text, now
    return 1


async def no_echo_count(session: AsyncSession, *, accounts: Sequence[str], now: datetime,
                        settings: WatchdogSettings, split_at: int) -> int:
    """Tagged texts (notices, alerts: the ones whose echo is recorded) the account sent in the
    window, past the grace time, with no echo of their first part."""
    room = func.coalesce(Group.room_id, OutboxMessage.room_id)
    transport = func.coalesce(Group.transport, OutboxMessage.transport)
    rows = (await session.execute(
        select(OutboxMessage.notice_id, OutboxMessage.text, OutboxMessage.resend,
               OutboxMessage.attempt_at, OutboxMessage.sent_at, room.label("room_id"),
               transport.label("transport"), Notice.text.label("notice_text"),
               Notice.urgent.label("notice_urgent"))
        .outerjoin(Group, Group.id == OutboxMessage.group_id)
        .outerjoin(Notice, Notice.id == OutboxMessage.notice_id)
        .where(OutboxMessage.account.in_(accounts),
               OutboxMessage.status == OutboxStatus.SENT,
               OutboxMessage.sent_at >= now - timedelta(minutes=settings.no_echo_window_minutes),
               OutboxMessage.sent_at <= now - timedelta(minutes=settings.no_echo_after_minutes),
               or_(OutboxMessage.notice_id.is_not(None), OutboxMessage.text.like("【%")))
        .order_by(OutboxMessage.sent_at.desc()).limit(NO_ECHO_ROWS))).all()
    missing = 0
    for r in rows:
        is_notice = r.notice_id is not None
        first = notices.render_parts(
            text=(r.notice_text if is_notice else r.text) or "", notice_id=r.notice_id,
            urgent=bool(r.notice_urgent), resend=r.resend, limit=split_at)[0]
        since = r.attempt_at or r.sent_at
        if r.room_id is None or r.transport is None or since is None:
            continue
        if await _echo_at(session, transport=r.transport, room_id=r.room_id, text=first,
                          since=since) is None:
            missing += 1
    return missing


def _paused(account: BotAccount | None, *, now: datetime, settings: WatchdogSettings) -> bool:
    """Paused by the platform's "too frequent" for at least `pause_down_minutes` in all."""
    if account is None or account.paused_until is None or account.paused_until <= now:
        return False
    start = account.last_rate_limited_at or now
    return account.paused_until - start >= timedelta(minutes=settings.pause_down_minutes)


async def alert_targets(session: AsyncSession, *, failing: str, down: set[str],
                        healthy: Sequence[str], default: str = "") -> list[tuple[int, str]]:
    """Where an alert about `failing` goes: each tier-1 group, through its own channel when
    that is not the failing one (nor down), else its fallback, else any healthy account;
    never through `failing`. (group id, account) pairs; none when no channel is left. A
    group's "" is the `default` account."""
    groups = (await session.execute(
        select(Group).join(Node, Node.id == Group.node_id).where(Node.tier == 1)
        .order_by(Group.id))).scalars().all()
    spare = [a for a in healthy if a != failing and a not in down]
    out = []
    for group in groups:
        for candidate in (group.account, group.fallback_account, *spare):
            name = candidate or default
            if name == failing or name in down:
                continue
            if name == "" and name not in healthy:
                continue
            out.append((group.id, candidate))
            break
        else:
            log.error("no channel left to alert tier-1 group %d about account %r", group.id,
                      failing)
    return out


async def tell_operators(session: AsyncSession, *, about: str, text: str, down: set[str],
                         healthy: Sequence[str], now: datetime, default: str = "") -> int:
    """Queue an operator message about account `about` (an alert, a recovery, a failover)
    through another channel; returns rows written."""
    targets = await alert_targets(session, failing=about, down=down, healthy=healthy,
                                  default=default)
    return await outbox.queue_many(session, source=SOURCE, now=now, drafts=[
        outbox.Draft(group_id, text, urgent=True, via=account)
        for group_id, account in targets])


async def run(session: AsyncSession, *, settings: WatchdogSettings,
              states: Sequence[AccountState], seen: Mapping[str, datetime], transport: str,
              now: datetime, zone: ZoneInfo, split_at: int = 2000,
              configured: Iterable[str] = (), rng: random.Random | None = None,
              default_account: str = "", receiving: Iterable[str] | None = None) -> Report:
    """One watchdog run over every account (see the module's docstring). `default_account`:
    the account rows and groups naming "" go through. `receiving`: the accounts whose groups'
    messages and echoes reach the bot (default: the transport's own accounts); silence and
    missing echoes are judged for those only (a send-only robot never hears anything)."""
    rng = rng or random.Random()
    by_state = {s.name: s for s in states}
    names = await watched_accounts(session, configured=[*configured, *by_state])
    if default_account:
        # "" is the default account under its other name: one account, watched once.
        names = [n for n in names if n]
    hearing = set(by_state if receiving is None else receiving)

    def aliases(name: str) -> list[str]:
        return [name, ""] if name and name == default_account else [name]

    watches = await _rows(session, names, now)
    pacing = {a.name: a for a in (await session.execute(select(BotAccount))).scalars()}
    probes = 0
    found: dict[str, list[str]] = {}
    details: dict[str, str] = {}
    for name in names:
        watch = watches[name]
        problems = state_problems(by_state.get(name))
        if problems:
            details[name] = pii.mask_text(by_state[name].last_error or "")[:200]
        if _paused(pacing.get(name), now=now, settings=settings):
            problems.append("paused")
        heard = max([t for t in (seen.get(a) for a in aliases(name)) if t is not None],
                    default=None)
        if name in hearing and await _silent(session, watch, seen=heard, now=now,
                                             settings=settings, accounts=aliases(name)):
            problems.append("silent")
        room = settings.test_rooms.get(name)
        if room:
            probes += await _self_test(session, watch, room=room, transport=transport, now=now,
                                       settings=settings, rng=rng)
            if watch.probe_failed:
                problems.append("self_test_failed")
        if name in hearing and await no_echo_count(
                session, accounts=aliases(name), now=now, settings=settings,
                split_at=split_at) >= settings.no_echo_count:
            problems.append("no_echo")
        # What this process cannot see (another process drives the account, or it hears
        # nothing here) stands as the process that sees it last concluded: two processes'
        # runs must not alert and clear the same problem in turn.
        unseen = ((STATE_PROBLEMS if name not in by_state else frozenset())
                  | (HEARD_PROBLEMS if name not in hearing else frozenset()))
        problems += [p for p in watch.problems or () if p in unseen and p not in problems]
        if name not in by_state and set(problems) & STATE_PROBLEMS:
            details[name] = watch.detail
        found[name] = problems
    down = {n for n, p in found.items() if health_of(p) is Health.DOWN}
    # Spare channels for an alert: healthy accounts of the transport, which address any room
    # by its id (a group robot posts only to its own group, whatever room it is given).
    healthy = [n for n, p in found.items() if not p and n in by_state]
    report_health: list[AccountHealth] = []
    alerts = recoveries = queued = 0
    alerted: list[tuple[str, tuple[str, ...]]] = []
    for name in names:
        watch, problems = watches[name], found[name]
        health = health_of(problems)
        was_alerted = list(watch.alerted or [])
        if health is Health.OK:
            if was_alerted and watch.since is not None:
                text = health_texts.RECOVERED.format(
                    account=health_texts.account_label(name),
                    duration=texts.duration((now - watch.since).total_seconds()))
                queued += await tell_operators(session, about=name, text=text, down=down,
                                               healthy=healthy, now=now,
                                               default=default_account)
                recoveries += 1
                log.warning("account %r recovered", name)
            watch.since = watch.down_since = None
            watch.alerted = []
        else:
            watch.since = watch.since or now
            new = [p for p in problems if p not in was_alerted]
            if new:
                local = watch.since.astimezone(zone)
                text = health_texts.ALERT.format(
                    account=health_texts.account_label(name),
                    health=health_texts.HEALTH[health.value],
                    problems=health_texts.problems_text(new), since=f"{local:%m月%d日%H:%M}",
                    hint=health_texts.HINT_DOWN if health is Health.DOWN
                    else health_texts.HINT_DEGRADED)
                queued += await tell_operators(session, about=name, text=text, down=down,
                                               healthy=healthy, now=now,
                                               default=default_account)
                alerts += 1
                alerted.append((name, tuple(new)))
                log.warning("account %r %s: %s", name, health.value, ", ".join(new))
            # A problem that cleared within the episode may be alerted again if it returns.
            watch.alerted = [p for p in was_alerted if p in problems] + new
            watch.down_since = (watch.down_since or now) if health is Health.DOWN else None
        watch.health, watch.problems = health.value, list(problems)
        watch.detail = details.get(name, "")
        watch.updated_at = now
        report_health.append(AccountHealth(name=name, health=health,
                                           problems=tuple(problems), since=watch.since,
                                           detail=watch.detail))
    moved = moved_back = repointed = 0
    if settings.failover:
        for name in names:
            watch = watches[name]
            if watch.health == Health.DOWN.value and watch.down_since is not None and (
                    now - watch.down_since
                    >= timedelta(minutes=settings.failover_after_minutes)):
                result = await failover.fail_over(session, account=name, down=down,
                                                  aliases=aliases(name))
                repointed += result.rows
                if result.groups:
                    moved += result.groups
                    queued += await tell_operators(
                        session, about=name, down=down, healthy=healthy, now=now,
                        default=default_account,
                        text=health_texts.FAILOVER.format(
                            account=health_texts.account_label(name), groups=result.groups,
                            targets="、".join(health_texts.account_label(t)
                                             for t in result.targets),
                            rows=result.rows) + (health_texts.NO_FALLBACK.format(
                                groups=result.stranded) if result.stranded else ""))
            if watch.health == Health.OK.value:
                watch.ok_since = watch.ok_since or now
                if now - watch.ok_since >= timedelta(minutes=settings.failback_after_minutes):
                    result = await failover.fail_back(session, account=name)
                    if result.groups:
                        moved_back += result.groups
                        queued += await tell_operators(
                            session, about=name, down=down, healthy=healthy, now=now,
                            default=default_account,
                            text=health_texts.FAILBACK.format(
                                account=health_texts.account_label(name),
                                groups=result.groups, rows=result.rows))
            else:
                watch.ok_since = None
    return Report(health=report_health, alerts=alerts, recoveries=recoveries, probes=probes,
                  moved=moved, moved_back=moved_back, queued=queued + probes + repointed,
                  alerted=alerted)


async def account_health(session: AsyncSession) -> list[AccountHealth]:
    """What the last watchdog run concluded per account (`tierbot status`, the API, the
    console)."""
    return [AccountHealth(name=w.account, health=Health(w.health),
                          problems=tuple(w.problems or ()), since=w.since, detail=w.detail)
            for w in (await session.execute(select(AccountWatch)
                                            .order_by(AccountWatch.account))).scalars()]
