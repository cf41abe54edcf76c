"""Shop rows (铺长制): the captain's daily check-in per row and per shop, staff fevers, the
missing check-in reminders, and reopening registrations (复工登记 → 铺长确认 → 社区审核)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii, texts
from bot.domain import UserError
from bot.grammar import ReopenRegister, ShopCheckin
from bot.services import health, locks, outbox, people
from bot.services.chain import NodeIds, id_filter
from models import (
    Node,
    NodeKind,
    Person,
    ReopeningStatus,
    Role,
    Shop,
    ShopPatrol,
    ShopReopening,
)
from models import (
    ShopCheckin as ShopCheckinRow,
)

_NUMBER = re.compile(r"^([0-9]{1,3})号")


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The users' calendar day of a moment."""
    return now.astimezone(zone).date()


def day_text(day: date) -> str:
    """'2月21日'."""
    return texts.Shop.DATE.format(month=day.month, day=day.day)


def _when(now: datetime, zone: ZoneInfo) -> str:
    local = now.astimezone(zone)
    return texts.Tenant.DATETIME.format(month=local.month, day=local.day, hour=local.hour,
                                        minute=local.minute)


async def shops_of(session: AsyncSession, *, node_id: int) -> list[Shop]:
    """The shops of a row, in the order they were added."""
    return list((await session.execute(
        select(Shop).where(Shop.node_id == node_id).order_by(Shop.id))).scalars())


def match_shop(shops: Sequence[Shop], written: str) -> Shop | None:
    """The shop a captain means: the exact name, or the same number (3号 = 3号商位)."""
    written = written.strip()
    for shop in shops:
        if shop.name == written:
            return shop
    m = _NUMBER.match(written)
    if m is None:
        return None
    for shop in shops:
        own = _NUMBER.match(shop.name)
        if own is not None and int(own.group(1)) == int(m.group(1)):
            return shop
    return None


def _resolve(shops: Sequence[Shop], written: Sequence[str]) -> dict[str, Shop]:
    """Every written shop to its row's shop; a UserError naming the unknown ones (checks come
    before any write)."""
    if not shops and written:
        raise UserError(texts.Shop.NO_SHOPS)
    found = {w: match_shop(shops, w) for w in written}
    unknown = [w for w, s in found.items() if s is None]
    if unknown:
        raise UserError(texts.Shop.UNKNOWN_SHOPS.format(
            shops="、".join(unknown), known="、".join(s.name for s in shops)))
    return {w: s for w, s in found.items() if s is not None}


async def approved_shop_ids(session: AsyncSession, *, node_ids: NodeIds,
                            before: datetime | None = None) -> set[int]:
    """Shops whose reopening was approved (by `before`, when given)."""
    stmt = select(ShopReopening.shop_id).where(
        ShopReopening.node_id.in_(id_filter(node_ids)),
        ShopReopening.status == ReopeningStatus.APPROVED)
    if before is not None:
        stmt = stmt.where(ShopReopening.reviewed_at < before)
    return set((await session.execute(stmt)).scalars())


@dataclass(slots=True)
class CheckinSummary:
    """What the day's check-in of a row adds up to after this message."""

    day: date
    total: int
    checked: int
    opened: int
    closed: int
    staff: int
    staff_normal: bool
    disinfected: bool | None
    problems: str
    fevers: list[tuple[str, float]] = field(default_factory=list)
    fever_said: bool = False
    unapproved_open: list[str] = field(default_factory=list)


async def record_checkin(
    session: AsyncSession, *, node: Node, cmd: ShopCheckin, by: Person | None, now: datetime,
    zone: ZoneInfo, fever_threshold: float, inbound_id: int | None,
) -> CheckinSummary:
    """打卡/巡查: store the row's day and each shop named (a later message of the same day
    adds to it), alert the team's group of a fever among staff, and sum the day up."""
    day = local_day(now, zone)
    # The row's day is read and added to under its lock: a captain's 巡查 in two groups at
    # once would otherwise both add to what they read, and one's fevers and problems be lost.
    await locks.hold(session, f"shop-day:{node.id}:{day.isoformat()}")
    shops = await shops_of(session, node_id=node.id)
    by_written = _resolve(shops, [e.shop for e in cmd.entries])
    by_id = by.id if by is not None else None
    existing = {c.shop_id: c for c in (await session.execute(
        select(ShopCheckinRow).where(ShopCheckinRow.node_id == node.id,
                                     ShopCheckinRow.day == day))).scalars()}
    fevers: list[tuple[str, float]] = []
    for entry in cmd.entries:
        shop = by_written[entry.shop]
        row = existing.get(shop.id)
        if row is None:
            row = ShopCheckinRow(shop_id=shop.id, node_id=node.id, day=day, readings="",
                                 fever=False, created_at=now)
            session.add(row)
            existing[shop.id] = row
        if entry.is_open is not None:
            row.is_open = entry.is_open
        elif entry.readings or entry.staff:
            row.is_open = True if row.is_open is None else row.is_open  # staff on site
        if entry.staff is not None:
            row.staff = entry.staff
        elif entry.readings:
            row.staff = max(row.staff or 0, len(entry.readings))
        if entry.readings:
            row.readings = ",".join(f"{v:.1f}" for v in entry.readings)
            row.max_reading = max(entry.readings)
            high = [v for v in entry.readings if v >= fever_threshold]
            if high:
                row.fever = True
                fevers.append((shop.name, max(high)))
        disinfected = entry.disinfected if entry.disinfected is not None else cmd.disinfected
        if disinfected is not None:
            row.disinfected = disinfected
        row.by_id = by_id
        row.updated_at = now
    row_fevers = [v for v in cmd.readings if v >= fever_threshold]
    fevers += [(node.name, v) for v in row_fevers]

    patrol = (await session.execute(select(ShopPatrol).where(
        ShopPatrol.node_id == node.id, ShopPatrol.day == day))).scalar_one_or_none()
    if patrol is None:
        patrol = ShopPatrol(node_id=node.id, day=day, checked=0, opened=0, staff=0,
                            disinfected=False, fevers=0, problems="", created_at=now)
        session.add(patrol)
    if cmd.checked is not None:
        patrol.checked = cmd.checked
    if cmd.opened is not None:
        patrol.opened = cmd.opened
    if cmd.staff is not None:
        patrol.staff = cmd.staff
    if cmd.disinfected is not None:
        patrol.disinfected = cmd.disinfected
    elif any(e.disinfected for e in cmd.entries):
        patrol.disinfected = True
    patrol.fevers += len(fevers)
    if cmd.problems:
        problem = pii.mask_text(cmd.problems)
        patrol.problems = f"{patrol.problems}\n{problem}".strip() if patrol.problems else problem
    patrol.by_id = by_id
    patrol.inbound_id = inbound_id
    patrol.updated_at = now
    await session.flush()

    for shop_name, value in fevers:
        await health.alert_fever(session, node=node, now=now, text=texts.Shop.FEVER_TO_TEAM.format(
            node=node.name, shop=shop_name, value=value, when=_when(now, zone)))
    if cmd.fever_said and not fevers:
        await health.alert_fever(session, node=node, now=now,
                                 text=texts.Shop.MAYBE_FEVER_TO_TEAM.format(
                                     node=node.name, when=_when(now, zone)))

    rows = list(existing.values())
    per_shop_open = [r for r in rows if r.is_open]
    approved = await approved_shop_ids(session, node_ids=[node.id])
    names = {s.id: s.name for s in shops}
    named_now = {by_written[e.shop].id for e in cmd.entries if e.is_open}
    return CheckinSummary(
        day=day, total=len(shops), checked=max(patrol.checked, len(rows)),
        opened=max(patrol.opened, len(per_shop_open)),
        closed=(max(patrol.checked, len(rows)) - max(patrol.opened, len(per_shop_open))),
        staff=max(patrol.staff, sum(r.staff or 0 for r in rows)),
        staff_normal=cmd.staff_normal or (bool(rows) and not any(r.fever for r in rows)
                                          and any(r.readings for r in rows)),
        disinfected=patrol.disinfected if (cmd.disinfected is not None or patrol.disinfected)
        else None,
        problems=patrol.problems, fevers=fevers, fever_said=cmd.fever_said and not fevers,
        unapproved_open=[names[i] for i in sorted(named_now - approved)])


def summary_text(summary: CheckinSummary) -> str:
    """The captain's one-line summary of the day's check-in."""
    t = texts.Shop
    parts = [t.PART_CHECKED.format(checked=summary.checked, total=summary.total)
             if summary.total else t.PART_CHECKED.format(checked=summary.checked,
                                                         total=summary.checked),
             t.PART_OPEN.format(opened=summary.opened),
             t.PART_CLOSED.format(closed=max(0, summary.closed))]
    if summary.staff:
        parts.append(t.PART_STAFF.format(staff=summary.staff))
    if summary.fevers:
        parts.append(t.PART_FEVER.format(n=len(summary.fevers), who="、".join(
            t.FEVER_WHO.format(shop=s, value=v) for s, v in summary.fevers)))
    elif summary.staff_normal:
        parts.append(t.PART_NORMAL)
    if summary.disinfected is True:
        parts.append(t.PART_DISINFECTED)
    elif summary.disinfected is False:
        parts.append(t.PART_NOT_DISINFECTED)
    parts.append(t.PART_PROBLEMS.format(problems=summary.problems.replace("\n", "；"))
                 if summary.problems else t.PART_NO_PROBLEMS)
    if summary.unapproved_open:
        parts.append(t.PART_UNAPPROVED.format(shops="、".join(summary.unapproved_open)))
    return t.CHECKIN_OK.format(date=day_text(summary.day), parts=t.SEPARATOR.join(parts))


# --- missing check-ins ---------------------------------------------------------------------


async def rows_missing(session: AsyncSession, *, day: date) -> list[Node]:
    """Shop rows with shops and no check-in on `day`."""
    checked = select(ShopPatrol.node_id).where(ShopPatrol.day == day)
    with_shops = select(Shop.node_id)
    return list((await session.execute(
        select(Node).where(Node.kind == NodeKind.SHOP_ROW, Node.id.in_(with_shops),
                           ~Node.id.in_(checked)).order_by(Node.id))).scalars())


async def remind_missing(session: AsyncSession, *, day: date, now: datetime) -> int:
    """The reminder in each row group without a check-in of `day`, mentioning the captain
    (by the contact ids of the group's own transport). Returns rows written."""
    written = 0
    for node in await rows_missing(session, day=day):
        captains = await people.holders(session, node_id=node.id, role=Role.CAPTAIN)
        for group in await outbox.groups_of(session, node_id=node.id):
            mentions: list[str] = []
            for captain in captains:
                mentions += await people.contact_ids(session, person_id=captain.id,
                                                     transport=group.transport)
            written += await outbox.queue(
                session, group_id=group.id, source="shop-remind", now=now, mentions=mentions,
                text=texts.Shop.REMIND.format(date=day_text(day)))
    return written


async def escalate_missing(session: AsyncSession, *, day: date, now: datetime,
                           at_time: str) -> int:
    """The team's tier-4 group hears of each row still without a check-in of `day`."""
    written = 0
    for node in await rows_missing(session, day=day):
        if node.parent_id is None:
            continue
        captains = await people.holders(session, node_id=node.id, role=Role.CAPTAIN)
        written += await outbox.queue_to_node(
            session, node_id=node.parent_id, source="shop-escalate", now=now,
            text=texts.Shop.ESCALATE.format(
                node=node.name, date=day_text(day), time=at_time,
                captain="、".join(pii.mask_name(c.name) for c in captains)
                or texts.Shop.NO_CAPTAIN))
    return written


# --- reopening -----------------------------------------------------------------------------


async def _owner(session: AsyncSession, *, name: str, mobile: str, now: datetime) -> Person:
    """The owner as a Person (their mobile lives only there); the same name and mobile is the
    same person, anyone else's mobile is never taken over."""
    await people.lock_mobile(session, mobile)
    found = await people.find_by_mobile(session, mobile=mobile)
    if found is not None and found.name == name:
        return found
    return await people.create_person(session, name=name, mobile=mobile, now=now)


async def register_reopening(
    session: AsyncSession, *, node: Node, cmd: ReopenRegister, by: Person | None,
    by_captain: bool, now: datetime, inbound_id: int | None,
) -> tuple[ShopReopening, Shop, Person]:
    """复工登记: by the owner (waits for the captain) or by the captain (confirmed at once,
    on to the community). A shop not in the row yet is added to it. Under the row's lock
    (bot.services.locks): of two registrations at once, the second finds the first's shop and
    its open registration."""
    await locks.hold(session, f"shops:{node.id}")
    shops = await shops_of(session, node_id=node.id)
    shop = match_shop(shops, cmd.shop)
    if shop is None:
        shop = Shop(node_id=node.id, name=cmd.shop, is_open=False, created_at=now)
        session.add(shop)
        await session.flush()
    open_one = (await session.execute(
        select(ShopReopening).where(ShopReopening.shop_id == shop.id,
                                    ShopReopening.status != ReopeningStatus.REJECTED)
        .order_by(ShopReopening.id.desc()).limit(1))).scalar_one_or_none()
    if open_one is not None:
        raise UserError(texts.Shop.ALREADY_OPEN.format(
            shop=shop.name, id=open_one.id, status=texts.Shop.STATUS[open_one.status]))
    owner = await _owner(session, name=cmd.owner, mobile=cmd.mobile, now=now)
    by_id = by.id if by is not None else None
    reg = ShopReopening(
        shop_id=shop.id, node_id=node.id, owner_id=owner.id, staff=cmd.staff,
        staff_from_elsewhere=cmd.from_elsewhere, supplies=pii.mask_text(cmd.supplies),
        committed=cmd.committed,
        status=ReopeningStatus.REVIEW if by_captain else ReopeningStatus.CAPTAIN,
        registered_by_id=by_id, confirmed_by_id=by_id if by_captain else None,
        confirmed_at=now if by_captain else None, reason="", inbound_id=inbound_id,
        created_at=now)
    session.add(reg)
    await session.flush()
    if by_captain:
        await _to_review(session, reg=reg, shop=shop, owner=owner, node=node, now=now)
    return reg, shop, owner


async def community_of(session: AsyncSession, *, node: Node) -> Node | None:
    """The tier-2 node above (or at) a node."""
    current: Node | None = node
    while current is not None and current.tier > 2:
        current = await session.get(Node, current.parent_id) if current.parent_id else None
    return current if current is not None and current.tier == 2 else None


async def _to_review(session: AsyncSession, *, reg: ShopReopening, shop: Shop, owner: Person,
                     node: Node, now: datetime) -> None:
    community = await community_of(session, node=node)
    if community is None:
        return
    await outbox.queue_to_node(
        session, node_id=community.id, source="reopening", now=now,
        text=texts.Shop.TO_REVIEW.format(
            id=reg.id, node=node.name, shop=shop.name, owner=pii.mask_name(owner.name),
            mobile=owner.mobile_mask or "", staff=reg.staff,
            elsewhere=reg.staff_from_elsewhere, supplies=reg.supplies or texts.Shop.NO_SUPPLIES))


async def _registration(session: AsyncSession, *, registration_id: int
                        ) -> tuple[ShopReopening, Shop, Person, Node]:
    """A registration to decide on, its row locked and read afresh (of two decisions at once,
    the second sees the first's step)."""
    row = (await session.execute(
        select(ShopReopening, Shop, Person, Node)
        .join(Shop, Shop.id == ShopReopening.shop_id)
        .join(Person, Person.id == ShopReopening.owner_id)
        .join(Node, Node.id == ShopReopening.node_id)
        .where(ShopReopening.id == registration_id)
        .with_for_update(of=ShopReopening).execution_options(populate_existing=True))).first()
    if row is None:
        raise UserError(texts.Shop.NOT_FOUND.format(id=registration_id))
    return row[0], row[1], row[2], row[3]


async def confirm_reopening(session: AsyncSession, *, node: Node, registration_id: int,
                            by: Person, now: datetime) -> tuple[ShopReopening, Shop]:
    """复工确认 N: the captain of the row confirms; the community is asked to review."""
    reg, shop, owner, row_node = await _registration(session, registration_id=registration_id)
    if row_node.id != node.id:
        raise UserError(texts.Shop.NOT_HERE.format(id=reg.id))
    if reg.status != ReopeningStatus.CAPTAIN:
        raise UserError(texts.Shop.WRONG_STEP.format(
            id=reg.id, status=texts.Shop.STATUS[reg.status], action=texts.Shop.ACTION_CONFIRM))
    reg.status = ReopeningStatus.REVIEW
    reg.confirmed_by_id = by.id
    reg.confirmed_at = now
    await session.flush()
    await _to_review(session, reg=reg, shop=shop, owner=owner, node=row_node, now=now)
    return reg, shop


async def review_reopening(
    session: AsyncSession, *, node: Node, registration_id: int, approve: bool, reason: str,
    by: Person, now: datetime,
) -> tuple[ShopReopening, Shop, Node]:
    """复工审核 N 通过|驳回 原因: the community decides; the row's group is told."""
    reg, shop, _owner_person, row_node = await _registration(
        session, registration_id=registration_id)
    community = await community_of(session, node=row_node)
    if community is None or community.id != node.id:
        raise UserError(texts.Shop.NOT_HERE.format(id=reg.id))
    if reg.status != ReopeningStatus.REVIEW:
        raise UserError(texts.Shop.WRONG_STEP.format(
            id=reg.id, status=texts.Shop.STATUS[reg.status], action=texts.Shop.ACTION_REVIEW))
    reg.status = ReopeningStatus.APPROVED if approve else ReopeningStatus.REJECTED
    reg.reviewed_by_id = by.id
    reg.reviewed_at = now
    reg.reason = pii.mask_text(reason)[:200]
    await session.flush()
    text = (texts.Shop.APPROVED_DOWN.format(id=reg.id, shop=shop.name) if approve else
            texts.Shop.REJECTED_DOWN.format(id=reg.id, shop=shop.name, reason=reg.reason))
    await outbox.queue_to_node(session, node_id=row_node.id, source="reopening", now=now,
                               text=text)
    return reg, shop, row_node


@dataclass(frozen=True, slots=True)
class ReopeningRow:
    """One line of 复工列表 and of the export."""

    reg: ShopReopening
    shop: Shop
    owner: Person
    node: Node


async def reopenings(session: AsyncSession, *, node_ids: NodeIds,
                     statuses: Sequence[str] | None = None) -> list[ReopeningRow]:
    """Registrations under these nodes, oldest first."""
    stmt = (select(ShopReopening, Shop, Person, Node)
            .join(Shop, Shop.id == ShopReopening.shop_id)
            .join(Person, Person.id == ShopReopening.owner_id)
            .join(Node, Node.id == ShopReopening.node_id)
            .where(ShopReopening.node_id.in_(id_filter(node_ids))).order_by(ShopReopening.id))
    if statuses is not None:
        stmt = stmt.where(ShopReopening.status.in_(list(statuses)))
    return [ReopeningRow(*row) for row in (await session.execute(stmt)).tuples()]


async def count_by_status(session: AsyncSession, *, node_ids: NodeIds) -> dict[str, int]:
    """How many registrations under these nodes stand at each status."""
    rows = await session.execute(
        select(ShopReopening.status, func.count(ShopReopening.id))
        .where(ShopReopening.node_id.in_(id_filter(node_ids))).group_by(ShopReopening.status))
    return {status: n for status, n in rows.tuples()}
