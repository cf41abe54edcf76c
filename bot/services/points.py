"""The landlords' 12-point system: the ledger, verification, automatic deductions, the weekly
close with red and black lists, rewards and good-person candidates.

Every points change is one `PointsEvent`; (source_kind, source_key) is unique, so a message
delivered twice or a job run twice makes one event. A landlord's score is the start score
plus the deltas of the events that count (approved, or appealed from an approval).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from bot import pii, texts
from bot.config import PointsRule, PointsSettings
from bot.domain import UserError
from bot.services import chain, locks, outbox, people
from models import (
    Contact,
    Group,
    LandlordReport,
    Membership,
    Node,
    NodeKind,
    Person,
    PointsEvent,
    PointsScopeCount,
    PointsStanding,
    PointsStatus,
    PointsTotal,
    PointsWeek,
    ReportKind,
    Role,
    TenantStay,
)
from models.base import UTCDateTime, insert_for
from models.points import BOARD_WHERE, REWARD_WHERE

# Stays looked at by the late-return check: older ones were settled by earlier runs.
LATE_LOOKBACK = timedelta(days=30)
# The disinfection check also looks at the day before (a run missed during downtime).
DISINFECT_DAYS_BACK = 2
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
RED, BLACK = "red", "black"
RANKING_WORK_MEM = "256MB"
_EPOCH = date(2000, 1, 3)  # a Monday: the default anchor of every-N-days disinfection
# The partial indexes' own conditions, as literal SQL: a bound parameter in their place would
# keep PostgreSQL's generic plans (prepared statements) off the index.
ON_A_LIST = text(f"points_standing.{BOARD_WHERE}")
REWARDED = text(f"points_standing.{REWARD_WHERE}")


# --- weeks and periods -----------------------------------------------------------------------

def week_key(day: date) -> str:
    """'2020-W09': the ISO week of a local date."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> tuple[int, int]:
    """(year, week) of '2020-W09'; ValueError for anything else."""
    found = _WEEK.match(text.strip())
    if found is None:
        raise ValueError(f"not an ISO week like 2020-W09: {text!r}")
    year, week = int(found.group(1)), int(found.group(2))
    date.fromisocalendar(year, week, 1)  # raises for week 53 of a 52-week year
    return year, week


def week_bounds(week: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 and the next Monday 00:00 (local), as aware datetimes."""
    year, number = parse_week(week)
    monday = date.fromisocalendar(year, number, 1)
    start = datetime.combine(monday, time(0, 0), zone)
    return start, datetime.combine(monday + timedelta(days=7), time(0, 0), zone)


def current_week(now: datetime, zone: ZoneInfo) -> str:
    """The week `now` falls in."""
    return week_key(now.astimezone(zone).date())


def last_week(now: datetime, zone: ZoneInfo) -> str:
    """The week before the one `now` falls in: the one the Monday job closes."""
    return week_key(now.astimezone(zone).date() - timedelta(days=7))


def period_start(settings: PointsSettings, *, week_start: datetime, zone: ZoneInfo
                 ) -> datetime | None:
    """Where the score's period begins: the campaign start (None: all time) or the week."""
    if settings.period == "weekly":
        return week_start
    if settings.campaign_start is None:
        return None
    return datetime.combine(settings.campaign_start, time(0, 0), zone)


def local_date(value: datetime, zone: ZoneInfo) -> str:
    """'2月21日'."""
    local = value.astimezone(zone)
    return texts.Tenant.DATE.format(month=local.month, day=local.day)


def rule_name(settings: PointsSettings, code: str) -> str:
    """The Chinese name of a rule (the code when the rule was removed from the config)."""
    rule = settings.rule(code)
    return rule.name if rule else code


# --- the ledger ----------------------------------------------------------------------------

async def _used_this_week(session: AsyncSession, *, landlord_id: int, rule: str,
                          now: datetime, zone: ZoneInfo) -> int:
    start, end = week_bounds(current_week(now, zone), zone)
    return (await session.execute(
        select(func.coalesce(func.sum(func.abs(PointsEvent.delta)), 0)).where(
            PointsEvent.landlord_id == landlord_id, PointsEvent.rule == rule,
            PointsEvent.status != PointsStatus.REJECTED,
            PointsEvent.occurred_at >= start, PointsEvent.occurred_at < end))).scalar_one()


async def record(
    session: AsyncSession, *, landlord_id: int, node_id: int, rule: PointsRule, delta: int,
    source_kind: str, source_key: str, evidence: str, now: datetime, zone: ZoneInfo,
    occurred_at: datetime | None = None, inbound_id: int | None = None,
    report_id: int | None = None, proposed_by_id: int | None = None,
) -> PointsEvent | None:
    """Book one event; None when this source made one already or the weekly cap is reached.
    Rules without verification take effect at once."""
    occurred = occurred_at or now
    if rule.weekly_cap:
        # Counted under the landlord's lock for the rule: two events at once (his report in
        # two groups, two commanders' 加分) would both fit under the cap otherwise.
        await locks.hold(session, f"points-cap:{landlord_id}:{rule.code}")
        used = await _used_this_week(session, landlord_id=landlord_id, rule=rule.code,
                                     now=occurred, zone=zone)
        if used + abs(delta) > rule.weekly_cap:
            return None
    immediate = not rule.needs_verification
    event_id = (await session.execute(
        insert_for(session)(PointsEvent).values(
            landlord_id=landlord_id, node_id=node_id, rule=rule.code, delta=delta,
            status=PointsStatus.APPROVED if immediate else PointsStatus.PENDING,
            counts=immediate, source_kind=source_kind, source_key=source_key,
            evidence=pii.mask_text(evidence)[:500], inbound_id=inbound_id, report_id=report_id,
            proposed_by_id=proposed_by_id, decided_at=now if immediate else None,
            occurred_at=occurred, created_at=now)
        .on_conflict_do_nothing(index_elements=["source_kind", "source_key"])
        .returning(PointsEvent.id))).scalar_one_or_none()
    if event_id is None:
        return None
    return await session.get(PointsEvent, event_id)


async def on_report(session: AsyncSession, *, inbound_id: int | None, settings: PointsSettings,
                    now: datetime, zone: ZoneInfo) -> list[PointsEvent]:
    """The hook after 房东上报: the reports this message stored earn their rule's points."""
    if inbound_id is None:
        return []
    reports = (await session.execute(select(LandlordReport).where(
        LandlordReport.inbound_id == inbound_id).order_by(LandlordReport.id))).scalars()
    made = []
    for report in reports:
        rule = settings.rule_for(f"report:{report.kind}")
        if rule is None:
            continue
        label = texts.Report.OK.get(report.kind, "{detail}").format(
            detail=report.detail or texts.Report.NO_DETAIL, date=local_date(now, zone))
        event = await record(session, landlord_id=report.landlord_id, node_id=report.node_id,
                             rule=rule, delta=rule.delta, source_kind="report",
                             source_key=str(report.id), evidence=label, now=now, zone=zone,
                             inbound_id=inbound_id, report_id=report.id)
        if event is not None:
            made.append(event)
    return made


async def score(session: AsyncSession, *, landlord_id: int, now: datetime, zone: ZoneInfo,
                settings: PointsSettings) -> int:
    """The start score plus every counted delta of the current period."""
    return (await scores(session, landlord_ids=[landlord_id], now=now, zone=zone,
                         settings=settings))[landlord_id]


async def scores(session: AsyncSession, *, landlord_ids: Sequence[int], now: datetime,
                 zone: ZoneInfo, settings: PointsSettings) -> dict[int, int]:
    """`score` of many landlords in one query (the console's standing of a subtree)."""
    start, _ = week_bounds(current_week(now, zone), zone)
    since = period_start(settings, week_start=start, zone=zone)
    stmt = (select(PointsEvent.landlord_id, func.coalesce(func.sum(PointsEvent.delta), 0))
            .where(PointsEvent.landlord_id.in_(list(landlord_ids)),
                   PointsEvent.counts.is_(True))
            .group_by(PointsEvent.landlord_id))
    if since is not None:
        stmt = stmt.where(PointsEvent.occurred_at >= since)
    found = dict((await session.execute(stmt)).tuples().all())
    return {i: settings.start_score + int(found.get(i, 0)) for i in landlord_ids}


# --- who is who ----------------------------------------------------------------------------

async def landlord_nodes(session: AsyncSession, *, person_id: int) -> list[Node]:
    """The tier-5 nodes where the person is the landlord, oldest role first."""
    return list((await session.execute(
        select(Node).join(Membership, Membership.node_id == Node.id)
        .where(Membership.person_id == person_id, Membership.role == Role.LANDLORD,
               Node.tier == 5).order_by(Membership.id))).scalars())


async def ancestor_at(session: AsyncSession, *, node_id: int, tier: int) -> Node | None:
    """The node of `tier` above (or at) a node."""
    node = await session.get(Node, node_id)
    while node is not None and node.tier > tier:
        node = await session.get(Node, node.parent_id) if node.parent_id else None
    return node if node is not None and node.tier == tier else None


@dataclass(frozen=True, slots=True)
class LandlordRef:
    """A landlord found for 加分/扣分: the person and their tier-5 node."""

    person: Person
    node_id: int


async def landlords_below(session: AsyncSession, *, root: Node) -> list[LandlordRef]:
    """Every landlord in the subtree of a node (each person once, at their first node)."""
    ids = chain.subtree_select(root.id, root.tier)
    rows = await session.execute(
        select(Person, Membership.node_id).join(Membership, Membership.person_id == Person.id)
        .join(Node, Node.id == Membership.node_id)
        .where(Membership.role == Role.LANDLORD, Node.tier == 5, Membership.node_id.in_(ids))
        .order_by(Membership.id))
    seen: dict[int, LandlordRef] = {}
    for person, node_id in rows:
        seen.setdefault(person.id, LandlordRef(person, node_id))
    return list(seen.values())


async def find_landlord(session: AsyncSession, *, root: Node, name: str,
                        mention_ids: Sequence[str], transport: str) -> LandlordRef:
    """The target of 加分/扣分: by the message's mentions, else by name, among the landlords
    below the commander's node (display names are no identity; mentions carry contact ids)."""
    below = await landlords_below(session, root=root)
    if mention_ids:
        persons = set((await session.execute(select(Contact.person_id).where(
            Contact.transport == transport, Contact.contact_id.in_(list(mention_ids))))
        ).scalars())
        found = [ref for ref in below if ref.person.id in persons]
        if len(found) == 1:
            return found[0]
    wanted = name.strip().lstrip("@").strip()
    found = [ref for ref in below if ref.person.name == wanted]
    if not found:
        raise UserError(texts.Points.ADJUST_NO_TARGET.format(name=wanted))
    if len(found) > 1:
        raise UserError(texts.Points.ADJUST_AMBIGUOUS.format(name=wanted, n=len(found)))
    return found[0]


async def _contacts(session: AsyncSession, person_id: int) -> list[str]:
    return list((await session.execute(select(Contact.contact_id).where(
        Contact.person_id == person_id).order_by(Contact.id))).scalars())


# --- hand adjustments, verification, appeals -----------------------------------------------

def manual_rule(settings: PointsSettings, *, reason: str, delta: int) -> PointsRule:
    """The rule a 加分/扣分 is booked to: a keyword rule of the same sign, else the plain one."""
    for rule in settings.rules:
        if rule.trigger == "manual" and rule.delta and (rule.delta > 0) == (delta > 0) and any(
                word and word in reason for word in [*rule.keywords, rule.name]):
            return rule
    plain = next((r for r in settings.rules if r.trigger == "manual" and r.delta == 0), None)
    if plain is None:
        return PointsRule(code="manual", name="指挥长调整", delta=0, trigger="manual")
    return plain


async def adjust(
    session: AsyncSession, *, by: Person, target: LandlordRef, delta: int, reason: str,
    inbound_id: int | None, now: datetime, zone: ZoneInfo, settings: PointsSettings,
) -> tuple[PointsEvent | None, PointsRule]:
    """加分/扣分 by a commander: one event per message, pending unless the rule says not."""
    rule = manual_rule(settings, reason=reason, delta=delta)
    if rule.delta and rule.delta != delta:
        word = "加分" if rule.delta > 0 else "扣分"
        raise UserError(texts.Points.ADJUST_RULE_POINTS.format(
            rule=rule.name, sign="加" if rule.delta > 0 else "扣", points=abs(rule.delta),
            word=word, name=target.person.name, reason=reason))
    event = await record(
        session, landlord_id=target.person.id, node_id=target.node_id, rule=rule, delta=delta,
        source_kind="message", source_key=str(inbound_id) if inbound_id else f"t{now.timestamp()}",
        evidence=texts.Points.MANUAL.format(by=by.name, reason=reason), now=now, zone=zone,
        inbound_id=inbound_id, proposed_by_id=by.id)
    return event, rule


async def _tell_landlord(session: AsyncSession, *, event: PointsEvent, text: str,
                         now: datetime) -> int:
    """The outcome to the landlord's tier-4 group (their tier-5 group if there is none)."""
    node = await session.get(Node, event.node_id)
    if node is None:
        return 0
    mentions = await _contacts(session, event.landlord_id)
    for target in (node.parent_id, node.id):
        if target is None:
            continue
        written = await outbox.queue_to_node(session, node_id=target, text=text,
                                             source="points", now=now, mentions=mentions)
        if written:
            return written
    return 0


async def _tell_deduction(session: AsyncSession, *, event: PointsEvent, now: datetime,
                          zone: ZoneInfo, settings: PointsSettings) -> int:
    """An automatic deduction to the landlord's tier-4 group, the landlord mentioned."""
    landlord = await session.get(Person, event.landlord_id)
    if landlord is None:
        return 0
    if event.status == PointsStatus.PENDING:
        state = texts.Points.DEDUCTED_PENDING.format(id=event.id)
    else:
        current = await score(session, landlord_id=landlord.id, now=now, zone=zone,
                              settings=settings)
        state = texts.Points.DEDUCTED_APPROVED.format(id=event.id, score=current)
    text = texts.Points.TOLD_DEDUCTED.format(
        id=event.id, name=landlord.name, rule=rule_name(settings, event.rule), delta=event.delta,
        evidence=event.evidence, state=state)
    return await _tell_landlord(session, event=event, now=now, text=text)


@dataclass(frozen=True, slots=True)
class PendingLine:
    """One line of 待核查."""

    event: PointsEvent
    landlord: Person


async def pending(session: AsyncSession, *, verifier_node: Node, limit: int = 20
                  ) -> tuple[list[PendingLine], int]:
    """Events waiting for this verifier: pending and appealed, oldest first; and how many."""
    # A community's secretary (the usual verifier): the events' own tier-2 column, an index
    # range, instead of the nested walk of a 100,000-node subtree.
    below = (PointsEvent.scope2_id == verifier_node.id if verifier_node.tier == 2 else
             PointsEvent.node_id.in_(chain.subtree_select(verifier_node.id, verifier_node.tier)))
    where = and_(PointsEvent.status.in_([PointsStatus.PENDING, PointsStatus.APPEALED]), below)
    total = (await session.execute(select(func.count(PointsEvent.id)).where(where))).scalar_one()
    # The ids first (from the index alone), then those rows: else PostgreSQL walked every
    # event by id until it met `limit` of the community's.
    first = select(PointsEvent.id).where(where).order_by(PointsEvent.id).limit(limit)
    rows = await session.execute(
        select(PointsEvent, Person).join(Person, Person.id == PointsEvent.landlord_id)
        .where(PointsEvent.id.in_(first)).order_by(PointsEvent.id))
    return [PendingLine(e, p) for e, p in rows], total


async def verify(
    session: AsyncSession, *, event_id: int, verifier_node: Node, by: Person, approve: bool,
    reason: str | None, now: datetime, zone: ZoneInfo, settings: PointsSettings,
) -> tuple[PointsEvent, Person]:
    """核查: approve or reject a pending or appealed event of a landlord below the verifier.
    The event's row is locked and read afresh: of two verifiers at once, the second sees the
    first's decision (VERIFY_DONE) instead of overwriting it."""
    event = await session.get(PointsEvent, event_id, with_for_update=True,
                              populate_existing=True)
    if event is None:
        raise UserError(texts.Points.VERIFY_UNKNOWN.format(id=event_id))
    above = await ancestor_at(session, node_id=event.node_id, tier=verifier_node.tier)
    if above is None or above.id != verifier_node.id:
        raise UserError(texts.Points.VERIFY_UNKNOWN.format(id=event_id))
    if event.status not in (PointsStatus.PENDING, PointsStatus.APPEALED):
        raise UserError(texts.Points.VERIFY_DONE.format(
            id=event_id, status=texts.Points.STATUS[event.status]))
    event.status = PointsStatus.APPROVED if approve else PointsStatus.REJECTED
    event.counts = approve
    event.decided_by_id = by.id
    event.decided_at = now
    # Stored text keeps numbers masked, like the evidence and the appeal (the dump test).
    event.decision_reason = pii.mask_text(reason)[:500] if reason else reason
    await session.flush()
    landlord = await session.get(Person, event.landlord_id)
    assert landlord is not None
    name = rule_name(settings, event.rule)
    if approve:
        current = await score(session, landlord_id=landlord.id, now=now, zone=zone,
                              settings=settings)
        text = texts.Points.TOLD_OK.format(id=event.id, name=landlord.name, rule=name,
                                           delta=event.delta, score=current)
    else:
        text = texts.Points.TOLD_NO.format(id=event.id, name=landlord.name, rule=name,
                                           delta=event.delta, reason=reason or "")
    await _tell_landlord(session, event=event, text=text, now=now)
    return event, landlord


async def appeal(
    session: AsyncSession, *, event_id: int, landlord: Person, reason: str, now: datetime,
    settings: PointsSettings,
) -> PointsEvent:
    """申诉: the landlord contests a decided event once; it goes back to the verifier. The
    decision stands (counts or not) until the verifier decides again. The row is locked and
    read afresh: an appeal sent from two groups at once is sent up once."""
    event = await session.get(PointsEvent, event_id, with_for_update=True,
                              populate_existing=True)
    if event is None or event.landlord_id != landlord.id:
        raise UserError(texts.Points.APPEAL_UNKNOWN.format(id=event_id))
    if event.appealed_at is not None:
        raise UserError(texts.Points.APPEAL_AGAIN.format(id=event_id))
    if event.status == PointsStatus.PENDING:
        raise UserError(texts.Points.APPEAL_NOT_DECIDED.format(id=event_id))
    before = event.status
    event.status = PointsStatus.APPEALED
    event.appeal_reason = pii.mask_text(reason)[:500]
    event.appealed_at = now
    await session.flush()
    verifier = await ancestor_at(session, node_id=event.node_id, tier=settings.verifier_tier)
    if verifier is not None:
        await outbox.queue_to_node(
            session, node_id=verifier.id, source="points", now=now,
            text=texts.Points.APPEAL_UP.format(
                id=event.id, name=pii.mask_name(landlord.name),
                rule=rule_name(settings, event.rule), delta=event.delta,
                status=texts.Points.STATUS[before], reason=event.appeal_reason))
    return event


async def auto_approve(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                       settings: PointsSettings) -> int:
    """Pending events older than auto_approve_days take effect (off when 0)."""
    days = settings.auto_approve_days
    if not days:
        return 0
    events = list((await session.execute(select(PointsEvent).where(
        PointsEvent.status == PointsStatus.PENDING,
        PointsEvent.created_at <= now - timedelta(days=days)).order_by(PointsEvent.id)
    )).scalars())
    for event in events:
        event.status = PointsStatus.APPROVED
        event.counts = True
        event.decided_at = now
        event.decision_reason = texts.Points.AUTO_REASON.format(days=days)
    await session.flush()
    for event in events:
        landlord = await session.get(Person, event.landlord_id)
        assert landlord is not None
        current = await score(session, landlord_id=landlord.id, now=now, zone=zone,
                              settings=settings)
        await _tell_landlord(session, event=event, now=now, text=texts.Points.TOLD_AUTO.format(
            id=event.id, name=landlord.name, rule=rule_name(settings, event.rule),
            delta=event.delta, days=days, score=current))
    return len(events)


# --- automatic deductions ------------------------------------------------------------------

async def check_late_returns(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                             settings: PointsSettings) -> list[PointsEvent]:
    """A tenant's own return the landlord did not register within late_return_hours: one
    deduction per stay (pending until verified)."""
    rule = settings.rule_for("auto:late_return")
    if rule is None:
        return []
    window = timedelta(hours=settings.late_return_hours)
    rows = (await session.execute(
        select(TenantStay, Person).join(Person, Person.id == TenantStay.tenant_id).where(
            TenantStay.self_reported_at.is_not(None),
            TenantStay.self_reported_at <= now - window,
            TenantStay.self_reported_at >= now - window - LATE_LOOKBACK)
        .order_by(TenantStay.id))).all()
    booked = set((await session.execute(select(PointsEvent.source_key).where(
        PointsEvent.source_kind == "late_return",
        PointsEvent.source_key.in_([str(stay.id) for stay, _ in rows])))).scalars()) \
        if rows else set()
    made = []
    for stay, tenant in rows:
        assert stay.self_reported_at is not None
        if str(stay.id) in booked:
            continue
        deadline = stay.self_reported_at + window
        if stay.landlord_reported_at is not None and stay.landlord_reported_at <= deadline:
            continue
        landlord_id = stay.landlord_id
        if landlord_id is None:
            holders = await people.holders(session, node_id=stay.node_id, role=Role.LANDLORD)
            if not holders:
                continue
            landlord_id = holders[0].id
        evidence = texts.Points.LATE_RETURN.format(
            tenant=pii.mask_name(tenant.name),
            reported=_local_dt(stay.self_reported_at, zone),
            hours=f"{settings.late_return_hours:g}", deadline=_local_dt(deadline, zone))
        event = await record(session, landlord_id=landlord_id, node_id=stay.node_id, rule=rule,
                             delta=rule.delta, source_kind="late_return",
                             source_key=str(stay.id), evidence=evidence, now=now, zone=zone,
                             occurred_at=deadline)
        if event is not None:
            made.append(event)
            await _tell_deduction(session, event=event, now=now, zone=zone, settings=settings)
    return made


def _local_dt(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return texts.Tenant.DATETIME.format(month=local.month, day=local.day, hour=local.hour,
                                        minute=local.minute)


def disinfection_due(day: date, settings: PointsSettings) -> bool:
    """Whether the rule requires disinfection on this local date."""
    anchor = settings.campaign_start or _EPOCH
    if day < anchor and settings.campaign_start is not None:
        return False
    return (day - anchor).days % settings.disinfection_every_days == 0


def _deadline(day: date, settings: PointsSettings, zone: ZoneInfo) -> datetime:
    hour, minute = (int(x) for x in settings.disinfection_deadline.split(":"))
    return datetime.combine(day, time(hour, minute), zone)


async def check_disinfection(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                             settings: PointsSettings) -> list[PointsEvent]:
    """Required days whose deadline has passed: every landlord's node without a 房东上报 消毒
    between midnight and the deadline gets one deduction for that day (one per node-day)."""
    rule = settings.rule_for("auto:missed_disinfection")
    if rule is None:
        return []
    today = now.astimezone(zone).date()
    made: list[PointsEvent] = []
    for back in range(DISINFECT_DAYS_BACK - 1, -1, -1):
        day = today - timedelta(days=back)
        deadline = _deadline(day, settings, zone)
        if deadline > now or not disinfection_due(day, settings):
            continue
        start = datetime.combine(day, time(0, 0), zone)
        reported = set((await session.execute(select(LandlordReport.node_id).where(
            LandlordReport.kind == ReportKind.DISINFECT, LandlordReport.created_at >= start,
            LandlordReport.created_at < deadline))).scalars())
        rows = (await session.execute(
            select(Membership.person_id, Node.id, Node.name)
            .join(Node, Node.id == Membership.node_id)
            .where(Membership.role == Role.LANDLORD, Node.tier == 5,
                   Node.kind == NodeKind.LANDLORD_TENANTS, Membership.created_at < start)
            .order_by(Membership.id))).all()
        # The job runs hourly: sources already booked are skipped before any insert.
        suffix = f":{day.isoformat()}"
        seen: set[int] = {int(key.split(":")[0]) for key in (await session.execute(
            select(PointsEvent.source_key).where(PointsEvent.source_kind == "disinfect",
                                                 PointsEvent.source_key.like(f"%{suffix}"))
        )).scalars()}
        for person_id, node_id, node_name in rows:
            if node_id in reported or node_id in seen:
                continue
            seen.add(node_id)
            event = await record(
                session, landlord_id=person_id, node_id=node_id, rule=rule, delta=rule.delta,
                source_kind="disinfect", source_key=f"{node_id}{suffix}",
                evidence=texts.Points.MISSED_DISINFECTION.format(
                    date=local_date(start, zone), deadline=settings.disinfection_deadline,
                    node=node_name),
                now=now, zone=zone, occurred_at=deadline)
            if event is not None:
                made.append(event)
                await _tell_deduction(session, event=event, now=now, zone=zone,
                                      settings=settings)
    return made


# --- the figures behind a rank ---------------------------------------------------------------

REBUILD_TOTALS = """
INSERT INTO points_total (landlord_id, total, deducted, node_id, registered_at, scope2_id,
                          scope1_id)
SELECT p.id, COALESCE(e.total, 0), COALESCE(e.deducted, 0), l.node_id, l.registered_at,
       n2.id, n2.parent_id
FROM (SELECT landlord_id AS id FROM points_event WHERE counts
      UNION SELECT person_id FROM membership WHERE role = 'landlord') p
LEFT JOIN (SELECT landlord_id, sum(delta) AS total,
                  sum(CASE WHEN delta < 0 THEN -delta ELSE 0 END) AS deducted
           FROM points_event WHERE counts GROUP BY landlord_id) e ON e.landlord_id = p.id
LEFT JOIN (SELECT m.person_id, min(m.node_id) AS node_id, min(m.created_at) AS registered_at
           FROM membership m JOIN node n ON n.id = m.node_id
           WHERE m.role = 'landlord' AND n.tier = 5 GROUP BY m.person_id) l
  ON l.person_id = p.id
LEFT JOIN node n5 ON n5.id = l.node_id
LEFT JOIN node n4 ON n4.id = n5.parent_id
LEFT JOIN node n3 ON n3.id = n4.parent_id
LEFT JOIN node n2 ON n2.id = n3.parent_id
"""


# Landlords per (scope, total), from PointsTotal (what its triggers keep, migration 0012).
REBUILD_SCOPE_COUNTS = """
INSERT INTO points_scope_count (tier, scope_id, total, landlords)
SELECT 1, scope1_id, total, count(*) FROM points_total WHERE scope1_id IS NOT NULL
GROUP BY scope1_id, total
UNION ALL
SELECT 2, scope2_id, total, count(*) FROM points_total WHERE scope2_id IS NOT NULL
GROUP BY scope2_id, total
"""


async def rebuild_totals(session: AsyncSession) -> int:
    """Recompute every PointsTotal row from the ledger and the memberships, and the counts
    per (scope, total), set-based (after a bulk load made with the triggers off, or to
    repair); returns the PointsTotal rows written."""
    await session.execute(delete(PointsTotal))
    result = await session.execute(text(REBUILD_TOTALS))
    await session.execute(delete(PointsScopeCount))
    await session.execute(text(REBUILD_SCOPE_COUNTS))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _direct(*, week_start: datetime, since: datetime | None) -> bool:
    """Whether the period is no longer than the week (the weekly period): its events are then
    summed directly instead of correcting the all-time totals by the rest of the ledger."""
    return since is not None and since >= week_start


def _adjustments(*, week_start: Any, end: Any, since: Any,  # type: ignore[no-untyped-def]
                 landlord_ids: Any = None, direct: bool | None = None):
    """Per landlord, what to add to PointsTotal (total, deducted) for the period [since, end),
    and the week's change and reward points; only landlords with such events appear.

    In the weekly period (`_direct`) the period's events are summed instead and PointsTotal
    is not used. Every part is a range of one index on (counts, occurred_at | decided_at).
    """
    e = PointsEvent
    lost = case((e.delta < 0, -e.delta), else_=0)
    zero = literal(0)
    counted = e.counts.is_(True)
    parts = []
    if direct is None:
        direct = _direct(week_start=week_start, since=since)
    if direct:
        parts.append(select(e.landlord_id, e.delta.label("t"), zero.label("c"), lost.label("d"),
                            zero.label("r")).where(counted, e.occurred_at >= since,
                                                   e.occurred_at < end))
    else:
        # Counted after the end (later weeks, or dated ahead) or before the period.
        outside = e.occurred_at >= end
        if since is not None:
            outside = or_(outside, e.occurred_at < since)
        parts.append(select(e.landlord_id, (-e.delta).label("t"), zero.label("c"),
                            (-lost).label("d"), zero.label("r")).where(counted, outside))
    parts.append(select(e.landlord_id, zero, e.delta, zero, zero).where(
        counted, e.occurred_at >= week_start, e.occurred_at < end))
    parts.append(select(e.landlord_id, zero, zero, zero, e.delta).where(
        counted, e.decided_at >= week_start, e.decided_at < end, e.delta > 0,
        e.occurred_at < end))
    if landlord_ids is not None:
        parts = [part.where(e.landlord_id.in_(landlord_ids)) for part in parts]
    rows = union_all(*parts).subquery("adj")
    return (select(rows.c.landlord_id, func.sum(rows.c.t).label("total"),
                   func.sum(rows.c.c).label("week_change"), func.sum(rows.c.d).label("deducted"),
                   func.sum(rows.c.r).label("reward_points"))
            .group_by(rows.c.landlord_id))


# --- ranking -------------------------------------------------------------------------------

def _ranked_landlords(*, end: datetime):  # type: ignore[no-untyped-def]
    """Every landlord registered by the end: where they are ranked and their all-time totals.

    As PointsTotal keeps them, except for the few with a registration dated after the end
    (their first node as of the end may be another), placed here from their memberships.
    """
    t = PointsTotal
    n5, n4, n3, n2 = (aliased(Node) for _ in range(4))
    late = select(Membership.person_id).where(Membership.role == Role.LANDLORD,
                                              Membership.created_at >= end)
    stored = select(t.landlord_id, t.node_id, t.registered_at, t.scope1_id, t.scope2_id,
                    t.total, t.deducted).where(t.registered_at < end,
                                               t.scope2_id.is_not(None),
                                               t.landlord_id.not_in(late))
    placed = (
        select(Membership.person_id, func.min(Membership.node_id).label("node_id"),
               func.min(Membership.created_at).label("registered_at"))
        .join(n5, n5.id == Membership.node_id)
        .where(Membership.role == Role.LANDLORD, n5.tier == 5, Membership.created_at < end,
               Membership.person_id.in_(late))
        .group_by(Membership.person_id)).subquery("placed")
    exact = (select(placed.c.person_id, placed.c.node_id, placed.c.registered_at,
                    n2.parent_id, n2.id, func.coalesce(t.total, 0),
                    func.coalesce(t.deducted, 0))
             .join(n5, n5.id == placed.c.node_id).join(n4, n4.id == n5.parent_id)
             .join(n3, n3.id == n4.parent_id).join(n2, n2.id == n3.parent_id)
             .outerjoin(t, t.landlord_id == placed.c.person_id))
    return union_all(stored, exact).cte("ll")


def _scope_column(settings: PointsSettings, landlords):  # type: ignore[no-untyped-def]
    return landlords.c.scope1_id if settings.ranking_tier == 1 else landlords.c.scope2_id


def scope_sizes(settings: PointsSettings, *, end: datetime):  # type: ignore[no-untyped-def]
    """(scope, landlords ranked there) for every scope with landlords: the `n` of `ranking`,
    counted without ranking anybody."""
    landlords = _ranked_landlords(end=end)
    scope_col = _scope_column(settings, landlords)
    return select(scope_col, func.count()).group_by(scope_col)


def ranking(settings: PointsSettings, *, week_start: datetime, end: datetime,
            since: datetime | None, scope_ids: Sequence[int] | None = None,
            landlord_id: int | None = None, per_point_fen: int = 0,
            weeks: Any = None, count_sizes: bool = False):  # type: ignore[no-untyped-def]
    """One set-based query: every landlord of the scope(s) with score, the tie-break figures,
    the week's reward points and the rank (ROW_NUMBER over the scope, fully ordered).

    The ledger is not re-aggregated: each landlord's all-time counted total (PointsTotal, kept
    by triggers) is corrected by the few events after `end` or before `since`, and the week's
    own events give the change and the rewards (see `_adjustments`). Nor are the memberships
    and the chain: PointsTotal says where each landlord is ranked, except for those with a
    registration after `end`.

    `weeks` (the close): a selectable of PointsWeek rows (id, scope_node_id, landlords) whose
    `landlords` already holds each scope's size (`scope_sizes`); only their scopes are ranked,
    each row carries its week's id as `week_id`, and `n` is read from there instead of
    counted over the scope (a second pass over every landlord) unless `count_sizes`.

    Order: score (high first), this week's change (high first), points deducted in the period
    (fewer first), landlord registration (earlier first), person id.
    """
    landlords = _ranked_landlords(end=end)
    events = _adjustments(week_start=week_start, end=end, since=since).cte("ev")
    direct = _direct(week_start=week_start, since=since)
    scope_col = _scope_column(settings, landlords).label("scope_id")
    total: ColumnElement[int] = func.coalesce(events.c.total, 0)
    change = func.coalesce(events.c.week_change, 0)
    deducted: ColumnElement[int] = func.coalesce(events.c.deducted, 0)
    if not direct:
        total = total + landlords.c.total
        deducted = deducted + landlords.c.deducted
    score_col = (literal(settings.start_score) + total)
    extra: list[ColumnElement[Any]] = []
    size: ColumnElement[int] = func.count().over(partition_by=scope_col)
    if weeks is not None:
        if not count_sizes:
            size = weeks.c.landlords
        extra.append(weeks.c.id.label("week_id"))
    inner = (
        select(landlords.c.landlord_id, landlords.c.node_id, scope_col,
               score_col.label("score"), change.label("week_change"),
               deducted.label("deducted"),
               func.coalesce(events.c.reward_points, 0).label("reward_points"),
               func.row_number().over(
                   partition_by=scope_col,
                   order_by=(score_col.desc(), change.desc(), deducted.asc(),
                             landlords.c.registered_at.asc(), landlords.c.landlord_id.asc())
               ).label("pos"),
               size.label("n"), *extra)
        .select_from(landlords)
        .outerjoin(events, events.c.landlord_id == landlords.c.landlord_id))
    if weeks is not None:
        inner = inner.join(weeks, weeks.c.scope_node_id == scope_col)
    if scope_ids is not None:
        inner = inner.where(scope_col.in_(list(scope_ids)))
    ranked = inner.subquery("ranked")
    list_size = settings.list_size
    start = settings.start_score
    red_ok = ranked.c.score > start if settings.lists_need_change else literal(True)
    black_ok = ranked.c.score < start if settings.lists_need_change else literal(True)
    board = case(
        (and_(ranked.c.pos <= list_size, red_ok), literal(RED)),
        # Checked after red: nobody is on both lists.
        (and_(ranked.c.pos > ranked.c.n - list_size, black_ok), literal(BLACK)),
        else_=literal(""))
    out = select(ranked.c.landlord_id, ranked.c.node_id, ranked.c.scope_id, ranked.c.score,
                 ranked.c.week_change, ranked.c.deducted, ranked.c.reward_points,
                 ranked.c.pos, ranked.c.n, board.label("board"),
                 (ranked.c.reward_points * per_point_fen).label("reward_fen"),
                 *([ranked.c.week_id] if weeks is not None else []))
    if landlord_id is not None:
        out = out.where(ranked.c.landlord_id == landlord_id)
    return out


@dataclass(frozen=True, slots=True)
class Standing:
    """A landlord's live score and rank in their scope."""

    score: int
    rank: int | None
    total: int
    scope: Node | None


async def standing(session: AsyncSession, *, landlord_id: int, now: datetime, zone: ZoneInfo,
                   settings: PointsSettings) -> Standing:
    """积分: the live score and the rank in the ranking scope."""
    current = await score(session, landlord_id=landlord_id, now=now, zone=zone,
                          settings=settings)
    nodes = await landlord_nodes(session, person_id=landlord_id)
    scope = await ancestor_at(session, node_id=nodes[0].id, tier=settings.ranking_tier) \
        if nodes else None
    if scope is None:
        return Standing(current, None, 0, None)
    week_start, _ = week_bounds(current_week(now, zone), zone)
    end = now + timedelta(seconds=1)
    since = period_start(settings, week_start=week_start, zone=zone)
    if _direct(week_start=week_start, since=since):
        # The weekly period: everybody's score is this week's events; rank them all.
        stmt = ranking(settings, week_start=week_start, end=end, since=since,
                       scope_ids=[scope.id], landlord_id=landlord_id)
        row = (await session.execute(stmt)).first()
        if row is None:
            return Standing(current, None, 0, scope)
        return Standing(current, row.pos, row.n, scope)
    found = await _rank_by_count(session, landlord_id=landlord_id, scope_id=scope.id,
                                 settings=settings, week_start=week_start, end=end, since=since)
    if found is None:
        return Standing(current, None, 0, scope)
    return Standing(current, found[0], found[1], scope)


@dataclass(frozen=True, slots=True)
class _Key:
    """A landlord's place in the ranking order, as stored in PointsTotal or as it truly is."""

    landlord_id: int
    total: int
    change: int
    deducted: int
    registered_at: datetime

    def ahead_of(self, other: _Key) -> bool:
        """Whether this landlord ranks before `other` (see `ranking` for the order)."""
        return (-self.total, -self.change, self.deducted, self.registered_at,
                self.landlord_id) < (-other.total, -other.change, other.deducted,
                                     other.registered_at, other.landlord_id)


def _bind_dt(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=UTCDateTime())


@functools.cache
def _rank_statements(tier: int, with_since: bool) -> SimpleNamespace:
    """The statements of `_rank_by_count`, built once per shape with bound parameters (the
    ORM then skips building and cache-keying them on every 积分)."""
    t = PointsTotal
    e = PointsEvent
    end, week_start = _bind_dt("end"), _bind_dt("week_start")
    since = _bind_dt("since") if with_since else None
    scope_col = t.scope1_id if tier == 1 else t.scope2_id
    # Every PointsTotal row placed in the scope, as PointsScopeCount counts them (a landlord
    # registered after the end is one of the odd ones below, taken out by its stored row).
    in_scope = scope_col == bindparam("scope_id")
    ids: BindParameter[int] = bindparam("ids", expanding=True)
    outside = e.occurred_at >= end
    if since is not None:
        outside = or_(outside, e.occurred_at < since)
    # The odd ones: events outside the period, or a registration dated after the end (their
    # stored figures or placement may not be what the ranking uses).
    odd = union(
        select(e.landlord_id).where(e.counts.is_(True), outside),
        select(Membership.person_id).where(Membership.role == Role.LANDLORD,
                                           Membership.created_at >= end))
    stored = (select(t.landlord_id, t.total, t.deducted, t.registered_at)
              .where(in_scope, t.landlord_id.in_(ids)))
    n5, n4, n3, n2 = (aliased(Node) for _ in range(4))
    placed = (select(Membership.person_id, func.min(Membership.node_id).label("node_id"),
                     func.min(Membership.created_at).label("registered_at"))
              .join(n5, n5.id == Membership.node_id)
              .where(Membership.role == Role.LANDLORD, n5.tier == 5,
                     Membership.created_at < end, Membership.person_id.in_(ids))
              .group_by(Membership.person_id).subquery())
    true_scope = n2.parent_id if tier == 1 else n2.id
    adj = _adjustments(week_start=week_start, end=end, since=since, landlord_ids=ids,
                       direct=False).subquery()
    true = (select(placed.c.person_id, func.coalesce(t.total, 0), func.coalesce(t.deducted, 0),
                   placed.c.registered_at, func.coalesce(adj.c.total, 0),
                   func.coalesce(adj.c.week_change, 0), func.coalesce(adj.c.deducted, 0))
            .join(n5, n5.id == placed.c.node_id).join(n4, n4.id == n5.parent_id)
            .join(n3, n3.id == n4.parent_id).join(n2, n2.id == n3.parent_id)
            .outerjoin(t, t.landlord_id == placed.c.person_id)
            .outerjoin(adj, adj.c.landlord_id == placed.c.person_id)
            .where(true_scope == bindparam("scope_id")))
    my_total: BindParameter[int] = bindparam("total")
    my_deducted: BindParameter[int] = bindparam("deducted")
    me: BindParameter[int] = bindparam("me")
    my_registered = _bind_dt("registered_at")

    c = PointsScopeCount
    in_counts = and_(c.tier == tier, c.scope_id == bindparam("scope_id"))

    def landlords(*where):  # type: ignore[no-untyped-def]
        return (select(func.coalesce(func.sum(c.landlords), 0)).where(in_counts, *where)
                .scalar_subquery())

    tb_before = or_(t.deducted < my_deducted, and_(
        t.deducted == my_deducted, or_(t.registered_at < my_registered, and_(
            t.registered_at == my_registered, t.landlord_id < me))))
    # The scope's landlords, those with a higher total and those tied, from the few count
    # rows of the scope; who goes first among the tied, from the index on (scope, total, …).
    counts = select(landlords(), landlords(c.total > my_total), landlords(c.total == my_total),
                    select(func.count()).select_from(t)
                    .where(in_scope, t.total == my_total, tb_before).scalar_subquery())
    week = (select(e.landlord_id, func.sum(e.delta).label("change"))
            .where(e.counts.is_(True), e.occurred_at >= week_start, e.occurred_at < end)
            .group_by(e.landlord_id).subquery())
    active = (select(t.landlord_id, t.total, week.c.change, t.deducted, t.registered_at)
              .join(week, week.c.landlord_id == t.landlord_id)
              .where(in_scope, t.total == my_total))
    return SimpleNamespace(odd=odd, stored=stored, true=true, counts=counts, active=active)


async def _rank_by_count(
    session: AsyncSession, *, landlord_id: int, scope_id: int, settings: PointsSettings,
    week_start: datetime, end: datetime, since: datetime | None,
) -> tuple[int, int] | None:
    """(rank, landlords) in the scope as `ranking` would give them, without ranking everybody:
    indexed counts over PointsTotal (landlords with a higher total; the tie-break among equal
    totals), the week's events for the changes, and exact figures for the few landlords with
    events outside the period or registrations after the end. None: not ranked."""
    q = _rank_statements(settings.ranking_tier, since is not None)
    params: dict[str, object] = {"end": end, "week_start": week_start, "scope_id": scope_id}
    if since is not None:
        params["since"] = since
    odd = set((await session.execute(q.odd, params)).scalars())
    odd.add(landlord_id)
    params["ids"] = sorted(odd)
    stored = {r.landlord_id: _Key(r.landlord_id, r.total, 0, r.deducted, r.registered_at)
              for r in (await session.execute(q.stored, params)).all()}
    true_keys = {r[0]: _Key(r[0], r[1] + r[4], r[5], r[2] + r[6], r[3])
                 for r in (await session.execute(q.true, params)).all()}
    if landlord_id not in true_keys:
        return None
    me = true_keys[landlord_id]
    params.update(total=me.total, deducted=me.deducted, registered_at=me.registered_at,
                  me=landlord_id)
    n, higher, tied, tied_before = (await session.execute(q.counts, params)).one()
    # The tied landlords with events this week (the others' change is 0).
    active = [_Key(r.landlord_id, r.total, r.change, r.deducted, r.registered_at)
              for r in (await session.execute(q.active, params)).all()]

    def tb(key: _Key) -> tuple[int, datetime, int]:
        return key.deducted, key.registered_at, key.landlord_id

    # Stored rows of the odd ones and of the landlord are counted above: take them out.
    for key in stored.values():
        if key.total > me.total:
            higher -= 1
        elif key.total == me.total:
            tied -= 1
            tied_before -= tb(key) < tb(me)
    active = [key for key in active if key.landlord_id not in odd]
    ahead = higher + sum(key.ahead_of(me) for key in active)
    # The tied landlords without events this week: change 0 against the landlord's.
    quiet = tied - len(active)
    quiet_before = tied_before - sum(tb(key) < tb(me) for key in active)
    if me.change < 0:
        ahead += quiet
    elif me.change == 0:
        ahead += quiet_before
    ahead += sum(key.ahead_of(me) for lid, key in true_keys.items() if lid != landlord_id)
    return ahead + 1, n + len(true_keys) - len(stored)


async def week_events(session: AsyncSession, *, landlord_id: int, now: datetime,
                      zone: ZoneInfo) -> list[PointsEvent]:
    """This week's events of a landlord."""
    start, end = week_bounds(current_week(now, zone), zone)
    return list((await session.execute(select(PointsEvent).where(
        PointsEvent.landlord_id == landlord_id, PointsEvent.occurred_at >= start,
        PointsEvent.occurred_at < end).order_by(PointsEvent.id))).scalars())


async def history(session: AsyncSession, *, landlord_id: int, limit: int = 20
                  ) -> list[PointsEvent]:
    """A landlord's latest events, newest first."""
    return list((await session.execute(select(PointsEvent).where(
        PointsEvent.landlord_id == landlord_id).order_by(PointsEvent.id.desc()).limit(limit)
    )).scalars())


# --- the weekly close ----------------------------------------------------------------------

async def close_week(session: AsyncSession, *, now: datetime, zone: ZoneInfo,
                     settings: PointsSettings, week: str | None = None) -> list[PointsWeek]:
    """Rank every scope for the week (default: last week) and store the standings with the
    red and black lists and rewards; a scope's week is closed once (a rerun returns [])."""
    key = week or last_week(now, zone)
    start, end = week_bounds(key, zone)
    scopes = list((await session.execute(select(Node.id).where(
        Node.tier == settings.ranking_tier).order_by(Node.id))).scalars())
    new_ids = []
    for scope_id in scopes:
        made = (await session.execute(
            insert_for(session)(PointsWeek).values(
                week=key, scope_node_id=scope_id, starts_at=start, ends_at=end, landlords=0,
                posted=0, closed_at=now)
            .on_conflict_do_nothing(index_elements=["week", "scope_node_id"])
            .returning(PointsWeek.id))).scalar_one_or_none()
        if made is not None:
            new_ids.append(made)
    if not new_ids:
        return []
    if session.bind.dialect.name == "postgresql":
        # One sort of every landlord: in memory, not in temporary files (the default 4 MB
        # spills at 100,000 landlords, 64 MB at 1,000,000); this transaction only.
        await session.execute(text(f"SET LOCAL work_mem = '{RANKING_WORK_MEM}'"))
    # Each scope's size first (one cheap count), so the ranking reads it from the week's row
    # instead of counting over the whole scope again after the sort.
    sizes = dict((await session.execute(scope_sizes(settings, end=end))).tuples().all())
    for week_id, scope_id in (await session.execute(
            select(PointsWeek.id, PointsWeek.scope_node_id)
            .where(PointsWeek.id.in_(new_ids)))).tuples():
        if sizes.get(scope_id):
            await session.execute(update(PointsWeek).where(PointsWeek.id == week_id)
                                  .values(landlords=sizes[scope_id]))
    since = period_start(settings, week_start=start, zone=zone)
    await _rank_into(session, settings, week_ids=new_ids, week_start=start, end=end,
                     since=since, count_sizes=False)
    # The sizes came from an earlier statement: on PostgreSQL (read committed) a landlord's
    # membership committed by another transaction in between would make a size disagree
    # with the ranks, which run 1..n. One index seek per week checks it; such a week is
    # ranked again with its size counted inside the ranking (one snapshot).
    stale = []
    for week_id, landlords in (await session.execute(
            select(PointsWeek.id, PointsWeek.landlords)
            .where(PointsWeek.id.in_(new_ids)))).tuples():
        last = (await session.execute(select(func.max(PointsStanding.rank)).where(
            PointsStanding.week_id == week_id))).scalar_one()
        if (last or 0) != landlords:
            stale.append(week_id)
    if stale:
        await session.execute(delete(PointsStanding).where(PointsStanding.week_id.in_(stale)))
        await _rank_into(session, settings, week_ids=stale, week_start=start, end=end,
                         since=since, count_sizes=True)
        for week_id in stale:
            last = (await session.execute(select(func.max(PointsStanding.rank)).where(
                PointsStanding.week_id == week_id))).scalar_one()
            await session.execute(update(PointsWeek).where(PointsWeek.id == week_id)
                                  .values(landlords=last or 0))
    return list((await session.execute(select(PointsWeek).where(
        PointsWeek.id.in_(new_ids)).order_by(PointsWeek.id).execution_options(
            populate_existing=True))).scalars())


async def _rank_into(session: AsyncSession, settings: PointsSettings, *, week_ids: list[int],
                     week_start: datetime, end: datetime, since: datetime | None,
                     count_sizes: bool) -> None:
    """Rank the scopes of these (new) weeks and insert their standings in one statement."""
    per_point_fen = round(settings.reward_per_point * 100)
    weeks = (select(PointsWeek.id, PointsWeek.scope_node_id, PointsWeek.landlords)
             .where(PointsWeek.id.in_(week_ids)).subquery("w"))
    ranked = ranking(settings, week_start=week_start, end=end, since=since,
                     per_point_fen=per_point_fen, weeks=weeks,
                     count_sizes=count_sizes).subquery("r")
    # Written in the ranking's order (scope, rank): each row goes to the end of the
    # (week_id, rank) index.
    source = select(ranked.c.week_id, ranked.c.landlord_id, ranked.c.node_id, ranked.c.pos,
                    ranked.c.score, ranked.c.week_change, ranked.c.deducted, ranked.c.board,
                    ranked.c.reward_points, ranked.c.reward_fen)
    await session.execute(insert(PointsStanding).from_select(
        ["week_id", "landlord_id", "node_id", "rank", "score", "week_change", "deducted",
         "board", "reward_points", "reward_fen"], source))


@dataclass(frozen=True, slots=True)
class ListEntry:
    """A name on a weekly list."""

    rank: int
    name: str
    node: str
    score: int
    board: str


async def board_entries(session: AsyncSession, *, week_id: int) -> list[ListEntry]:
    """The red and black lists of a closed week, by rank."""
    rows = await session.execute(
        select(PointsStanding.rank, Person.name, Node.name, PointsStanding.score,
               PointsStanding.board)
        .join(Person, Person.id == PointsStanding.landlord_id)
        .join(Node, Node.id == PointsStanding.node_id)
        .where(PointsStanding.week_id == week_id, ON_A_LIST)
        .order_by(PointsStanding.rank))
    return [ListEntry(*row) for row in rows]


def render_lists(*, week: PointsWeek, scope_name: str, entries: Sequence[ListEntry],
                 zone: ZoneInfo) -> str:
    """The short Chinese text of a week's lists: names as the scheme publishes them (full
    name and house), scores, never a phone number."""
    year, number = parse_week(week.week)
    first = week.starts_at.astimezone(zone)
    last = (week.ends_at - timedelta(days=1)).astimezone(zone)

    def names(board: str) -> str:
        shown = [texts.Points.LIST_NAME.format(name=e.name, node=e.node, score=e.score)
                 for e in entries if e.board == board]
        return "、".join(shown) if shown else texts.Points.LIST_EMPTY

    return "\n".join([
        texts.Points.WEEK_TITLE.format(
            scope=scope_name, year=year, week=number,
            start=texts.Tenant.DATE.format(month=first.month, day=first.day),
            end=texts.Tenant.DATE.format(month=last.month, day=last.day)),
        texts.Points.RED.format(names=names(RED)),
        texts.Points.BLACK.format(names=names(BLACK)),
        texts.Points.LIST_FOOTER,
    ])


async def _list_targets(session: AsyncSession, *, scope: Node) -> list[Group]:
    """Tier-1..4 groups in the scope (the tier-4 landlord groups and the commanders' groups),
    and the groups above the scope."""
    rows = (await session.execute(select(Node.id, Node.parent_id, Node.tier, Node.kind).where(
        Node.tier <= 4))).all()
    parent = {r.id: r.parent_id for r in rows}
    info = {r.id: r for r in rows}

    def inside(node_id: int) -> bool:
        current: int | None = node_id
        while current is not None:
            if current == scope.id:
                return True
            current = parent.get(current)
        return False

    wanted = {r.id for r in rows if r.kind != NodeKind.SHOP_ROW and inside(r.id)}
    up = scope.parent_id
    while up is not None and up in info:
        wanted.add(up)
        up = parent.get(up)
    return list((await session.execute(select(Group).where(Group.node_id.in_(wanted))
                                        .order_by(Group.id))).scalars())


async def post_lists(session: AsyncSession, *, weeks: Sequence[PointsWeek], now: datetime,
                     zone: ZoneInfo) -> int:
    """Queue each closed week's lists for its groups (outbox rows, not notices: nobody has to
    answer 收到). Returns rows written."""
    written = 0
    for week in weeks:
        scope = await session.get(Node, week.scope_node_id)
        assert scope is not None
        text = render_lists(week=week, scope_name=scope.name,
                            entries=await board_entries(session, week_id=week.id), zone=zone)
        groups = await _list_targets(session, scope=scope)
        await outbox.queue_many(session, drafts=[outbox.Draft(g.id, text) for g in groups],
                                source="points-week", now=now)
        week.posted = len(groups)
        written += len(groups)
    await session.flush()
    return written


# --- rewards, candidates, export -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RewardSummary:
    """奖励: what a landlord earned in closed weeks, and this week so far."""

    total_fen: int
    weeks: int
    points: int
    week_points: int


async def reward(session: AsyncSession, *, landlord_id: int, now: datetime, zone: ZoneInfo
                 ) -> RewardSummary:
    """Rewards of closed weeks (each week once, whatever the scope), and this week's points."""
    per_week = (select(PointsWeek.week, func.max(PointsStanding.reward_fen).label("fen"),
                       func.max(PointsStanding.reward_points).label("points"))
                .join(PointsWeek, PointsWeek.id == PointsStanding.week_id)
                .where(PointsStanding.landlord_id == landlord_id, REWARDED)
                .group_by(PointsWeek.week)).subquery()
    fen, weeks, points = (await session.execute(select(
        func.coalesce(func.sum(per_week.c.fen), 0), func.count(per_week.c.week),
        func.coalesce(func.sum(per_week.c.points), 0)))).one()
    start, end = week_bounds(current_week(now, zone), zone)
    week_points = (await session.execute(select(
        func.coalesce(func.sum(PointsEvent.delta), 0)).where(
        PointsEvent.landlord_id == landlord_id, PointsEvent.counts.is_(True),
        PointsEvent.delta > 0, PointsEvent.decided_at >= start, PointsEvent.decided_at < end)
    )).scalar_one()
    return RewardSummary(int(fen), int(weeks), int(points), int(week_points))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A landlord on the red list at least N times in a year."""

    name: str
    node: str
    count: int


async def good_person_candidates(session: AsyncSession, *, root: Node, year: int,
                                 threshold: int) -> list[Candidate]:
    """好人候选: landlords below `root` with at least `threshold` red-list weeks in `year`."""
    ids = chain.subtree_select(root.id, root.tier)
    weeks = func.count(func.distinct(PointsWeek.week))
    rows = await session.execute(
        select(PointsStanding.landlord_id, func.min(PointsStanding.node_id), weeks)
        .join(PointsWeek, PointsWeek.id == PointsStanding.week_id)
        .where(ON_A_LIST, PointsStanding.board == RED, PointsWeek.week.like(f"{year}-W%"),
               PointsStanding.node_id.in_(ids))
        .group_by(PointsStanding.landlord_id).having(weeks >= threshold)
        .order_by(weeks.desc(), PointsStanding.landlord_id))
    out = []
    for landlord_id, node_id, count in rows:
        person = await session.get(Person, landlord_id)
        node = await session.get(Node, node_id)
        out.append(Candidate(person.name if person else "", node.name if node else "",
                             int(count)))
    return out


@dataclass(frozen=True, slots=True)
class WeekRow:
    """One landlord's line of a closed week, for the export and the API."""

    week: str
    scope: str
    rank: int
    landlord: str
    node: str
    score: int
    week_change: int
    deducted: int
    board: str
    reward_points: int
    reward_fen: int


async def week_rows(session: AsyncSession, *, week: str,
                    within: Select[tuple[int]] | None = None) -> list[WeekRow]:
    """Every standing of a closed week (of landlords at the nodes `within` selects, when
    given), by scope and rank (empty when it is not closed)."""
    scope_node = aliased(Node)
    rows = await session.execute(
        select(PointsWeek.week, scope_node.name, PointsStanding.rank, Person.name, Node.name,
               PointsStanding.score, PointsStanding.week_change, PointsStanding.deducted,
               PointsStanding.board, PointsStanding.reward_points, PointsStanding.reward_fen)
        .join(PointsWeek, PointsWeek.id == PointsStanding.week_id)
        .join(scope_node, scope_node.id == PointsWeek.scope_node_id)
        .join(Person, Person.id == PointsStanding.landlord_id)
        .join(Node, Node.id == PointsStanding.node_id)
        .where(PointsWeek.week == week,
               PointsStanding.node_id.in_(within) if within is not None else true())
        .order_by(PointsWeek.scope_node_id, PointsStanding.rank))
    return [WeekRow(*row) for row in rows]


async def closed_weeks(session: AsyncSession, *, week: str) -> list[PointsWeek]:
    """The scopes' closed weeks for an ISO week."""
    return list((await session.execute(select(PointsWeek).where(PointsWeek.week == week)
                                        .order_by(PointsWeek.scope_node_id))).scalars())


def group_by_scope(rows: Sequence[WeekRow]) -> dict[str, list[WeekRow]]:
    """Rows per scope name, in order."""
    out: dict[str, list[WeekRow]] = defaultdict(list)
    for row in rows:
        out[row.scope].append(row)
    return out

