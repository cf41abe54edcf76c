"""Enterprises and key projects: files (一企一档), worker cards (一人一卡) and their readings,
the enterprise's daily report and the project's daily work card, reminders, and their numbers
for 统计 (unit_stats)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import crypto, pii, unit_texts
from bot.domain import UserError
from bot.grammar import EnterpriseRegister, EnterpriseReport, Temperature, WorkCard, WorkerRegister
from bot.services import chain, locks, membership, outbox, people, personal
from bot.services import ticket as tickets
from bot.services.tenant import (
    keep_reading,
    local_date,
    local_datetime,
    resolve_arrival,
)
from bot.texts import Tenant as texts_tenant
from models import (
    TIER_OF_KIND,
    Enterprise,
    EnterpriseStatus,
    Group,
    Node,
    NodeKind,
    Person,
    Ticket,
    WorkerCard,
    WorkerHealth,
    WorkerReading,
)
from models import EnterpriseReport as EnterpriseReportRow
from models import WorkCard as WorkCardRow

ENTERPRISE_KINDS = (NodeKind.ENTERPRISE, NodeKind.WORKGROUP)


async def _tell_community(session: AsyncSession, *, node: Node, text: str, now: datetime
                          ) -> int:
    """Tell the groups of the unit's community (its parent). Returns rows written."""
    if node.parent_id is None:
        return 0
    return await outbox.queue_to_node(session, node_id=node.parent_id, text=text, source="unit",
                                      now=now)


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The users' calendar day at `now`."""
    return now.astimezone(zone).date()


async def enterprise_of(session: AsyncSession, *, node: Node) -> Node:
    """The enterprise node of an enterprise group or of one of its workshops or dorms."""
    if node.kind == NodeKind.ENTERPRISE:
        return node
    if node.kind == NodeKind.WORKGROUP and node.parent_id is not None:
        parent = await session.get(Node, node.parent_id)
        if parent is not None and parent.kind == NodeKind.ENTERPRISE:
            return parent
    raise ValueError(f"node {node.id} is not an enterprise's")


async def workgroups(session: AsyncSession, *, enterprise: Node) -> list[Node]:
    """The workshops and dorms of an enterprise (groups for 分组管理), oldest first."""
    return list((await session.execute(
        select(Node).where(Node.parent_id == enterprise.id, Node.kind == NodeKind.WORKGROUP)
        .order_by(Node.id))).scalars())


# --- 企业登记 ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnterpriseFile:
    """What 企业登记 did: the file, its node, whether new, and its workshops and dorms."""

    file: Enterprise
    node: Node
    created: bool
    groups: list[Node]
    liaison: Person | None


async def _liaison(session: AsyncSession, *, node: Node, name: str, mobile: str | None,
                   now: datetime) -> Person:
    """The liaison on file: the person with this mobile (the same name), else a new one."""
    if mobile is not None:
        await people.lock_mobile(session, mobile)
        found = await people.find_by_mobile(session, mobile=mobile)
        if found is not None:
            if found.name != name:
                raise await membership.mobile_taken(session, node=node)
            return found
    return await people.create_person(session, name=name, mobile=mobile, now=now)


async def register_enterprise(session: AsyncSession, *, node: Node, cmd: EnterpriseRegister,
                              now: datetime, zone: ZoneInfo) -> EnterpriseFile:
    """企业登记: in a community's group, open (or update, by name) an enterprise below it; in
    an enterprise's group, update its own file. Nodes are found by name and made when none
    is: under the name's lock (bot.services.locks), then the enterprise's, so that two
    registrations at once (two groups, two processes) make one enterprise and one of each
    workshop."""
    if node.kind == NodeKind.COMMUNITY:
        if not cmd.name:
            raise UserError(unit_texts.Enterprise.NEEDS_NAME)
        await locks.hold(session, f"enterprise-name:{node.id}:{cmd.name}")
        target = (await session.execute(
            select(Node).where(Node.parent_id == node.id, Node.kind == NodeKind.ENTERPRISE,
                               Node.name == cmd.name).order_by(Node.id).limit(1)
        )).scalar_one_or_none()
        if target is None:
            target = await chain.create_node(session, name=cmd.name, kind=NodeKind.ENTERPRISE,
                                             parent=node, now=now)
    else:
        target = await enterprise_of(session, node=node)
        if cmd.name and cmd.name != target.name:
            raise UserError(unit_texts.Enterprise.OTHER_NAME.format(name=target.name))
    await locks.hold(session, f"enterprise:{target.id}")
    file = (await session.execute(
        select(Enterprise).where(Enterprise.node_id == target.id))).scalar_one_or_none()
    created = file is None
    if file is None:
        file = Enterprise(node_id=target.id, address="", headcount=0,
                          status=EnterpriseStatus.CLOSED, created_at=now, updated_at=now)
        session.add(file)
    if cmd.address is not None:
        file.address = cmd.address
    if cmd.headcount is not None:
        file.headcount = cmd.headcount
    liaison = await session.get(Person, file.liaison_id) if file.liaison_id else None
    if cmd.liaison is not None:
        liaison = await _liaison(session, node=target, name=cmd.liaison, mobile=cmd.mobile,
                                 now=now)
        file.liaison_id = liaison.id
    if cmd.status is not None and cmd.status != file.status:
        file.status = cmd.status
        file.reopened_on = local_day(now, zone) if cmd.status == "reopened" else None
        if node.kind != NodeKind.COMMUNITY and not created:
            # The liaison changed it: the community that approves reopening hears of it.
            await _tell_community(session, node=target, now=now,
                                  text=unit_texts.Enterprise.STATUS_TO_COMMUNITY.format(
                                   name=target.name,
                                   status=unit_texts.STATUS_NAMES[cmd.status]))
    file.updated_at = now
    known = {g.name for g in await workgroups(session, enterprise=target)}
    for name in (*cmd.workshops, *cmd.dorms):
        if name not in known:
            known.add(name)
            await chain.create_node(session, name=name, kind=NodeKind.WORKGROUP, parent=target,
                                    now=now)
    await session.flush()
    return EnterpriseFile(file, target, created, await workgroups(session, enterprise=target),
                          liaison)


def describe_file(found: EnterpriseFile) -> str:
    """The one-line summary of an enterprise's file (the liaison's name masked)."""
    t = unit_texts.Enterprise
    text = t.SUMMARY.format(
        address=found.file.address or t.NONE,
        liaison=pii.mask_name(found.liaison.name) if found.liaison else t.NONE,
        headcount=found.file.headcount, status=unit_texts.STATUS_NAMES[found.file.status])
    if found.groups:
        text += t.GROUPS.format(groups="、".join(g.name for g in found.groups))
    return text


# --- 员工登记 and workers' temperatures --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardResult:
    """What 员工登记 did."""

    card: WorkerCard
    person: Person
    created: bool
    group: Node | None
    linked: bool
    fever: bool


async def _worker_person(session: AsyncSession, *, node: Node, cmd: WorkerRegister,
                         transport: str, mentioned: Sequence[str], now: datetime
                         ) -> tuple[Person, bool]:
    """The worker, and whether a mentioned contact was linked. A mobile on file under another
    name is refused without saying whose it is. The liaison @-mentioning the worker vouches
    that this WeChat contact is the worker (never a typed number): a contact already known as
    someone of the same name without another mobile is that person; of anyone else, refused."""
    if len(mentioned) > 1:
        raise UserError(unit_texts.Worker.MANY_MENTIONS)
    await people.lock_mobile(session, cmd.mobile)
    found = await people.find_by_mobile(session, mobile=cmd.mobile)
    if found is not None and found.name != cmd.name:
        raise await membership.mobile_taken(session, node=node)
    owner = None
    if mentioned:
        owner = await people.find_by_contact(session, transport=transport,
                                             contact_id=mentioned[0])
        if owner is not None and (owner.name != cmd.name or (found is not None and owner.id
                                                             != found.id)
                                  or owner.mobile_bidx not in (
                                      None, crypto.blind_index("mobile", cmd.mobile))):
            raise UserError(unit_texts.Worker.CONTACT_TAKEN.format(
                name=pii.mask_name(cmd.name)))
    person = found or owner
    if person is None:
        person = await people.create_person(session, name=cmd.name, mobile=cmd.mobile,
                                            id_number=cmd.id_number, now=now)
    await personal.set_numbers(session, person, mobile=cmd.mobile, id_number=cmd.id_number,
                               keep=True)
    if mentioned and owner is None:
        await people.attach_contact(session, person=person, transport=transport,
                                    contact_id=mentioned[0], now=now)
    return person, bool(mentioned)


def _workgroup_named(groups: Sequence[Node], name: str) -> Node | None:
    """The workgroup of that name; 一车间 is 华鑫一车间 when no other group ends so."""
    exact = [g for g in groups if g.name == name]
    if exact:
        return exact[0]
    ending = [g for g in groups if g.name.endswith(name)]
    return ending[0] if len(ending) == 1 else None


async def register_worker(
    session: AsyncSession, *, node: Node, by: Person | None, cmd: WorkerRegister,
    transport: str, mentioned: Sequence[str], now: datetime, zone: ZoneInfo, watch_days: int,
    fever_threshold: float, inbound_id: int | None,
) -> CardResult:
    """员工登记: one card per worker and enterprise (a second registration updates it)."""
    enterprise = await enterprise_of(session, node=node)
    groups = await workgroups(session, enterprise=enterprise)
    group: Node | None = node if node.kind == NodeKind.WORKGROUP else None
    for name in cmd.groups:
        match = _workgroup_named(groups, name)
        if match is None:
            raise UserError(unit_texts.Worker.UNKNOWN_GROUP.format(
                group=name,
                known="、".join(g.name for g in groups) or unit_texts.Worker.NO_GROUPS))
        group = match
    arrived = resolve_arrival(cmd.arrival, now=now, zone=zone)
    person, linked = await _worker_person(session, node=enterprise, cmd=cmd,
                                          transport=transport, mentioned=mentioned, now=now)
    card = (await session.execute(select(WorkerCard).where(
        WorkerCard.enterprise_node_id == enterprise.id, WorkerCard.person_id == person.id)
    )).scalar_one_or_none()
    created = card is None
    if card is None:
        card = WorkerCard(enterprise_node_id=enterprise.id, person_id=person.id,
                          health=WorkerHealth.NORMAL, created_at=now)
        session.add(card)
    card.workgroup_node_id = group.id if group else card.workgroup_node_id
    card.origin = cmd.origin or card.origin
    # A second registration changes what it says and keeps the rest (a move to another
    # workshop does not end a home watch).
    if created or cmd.arrival is not None:
        card.returned_on = arrived.astimezone(zone).date()
    if cmd.watch:
        card.watch_until = arrived + timedelta(days=watch_days)
    if cmd.isolated:
        card.health = WorkerHealth.ISOLATED
    if cmd.cleared:
        card.health, card.watch_until = WorkerHealth.NORMAL, None
    card.registered_by_id = by.id if by else None
    card.updated_at = now
    await session.flush()
    fever = False
    if cmd.temperature is not None:
        fever = await add_reading(session, card=card, person=person, enterprise=enterprise,
                                  by=by or person, value=cmd.temperature, now=now, zone=zone,
                                  threshold=fever_threshold, inbound_id=inbound_id)
    if group is None and card.workgroup_node_id is not None:
        group = await session.get(Node, card.workgroup_node_id)
    return CardResult(card, person, created, group, linked, fever)


async def add_reading(session: AsyncSession, *, card: WorkerCard, person: Person,
                      enterprise: Node, by: Person, value: float, now: datetime, zone: ZoneInfo,
                      threshold: float, inbound_id: int | None) -> bool:
    """Store a worker's reading; a fever marks the card and tells the community (the same
    path as a tenant's fever: health.alert_fever). Returns whether it was a fever."""
    def flag() -> str:
        card.health, card.updated_at = WorkerHealth.FEVER, now
        return unit_texts.Worker.FEVER_TO_COMMUNITY.format(
            node=enterprise.name, name=pii.mask_name(person.name), value=value,
            when=local_datetime(now, zone))

    return await keep_reading(
        session, WorkerReading(card_id=card.id, value=value, taken_at=now, by_id=by.id,
                               inbound_id=inbound_id),
        value=value, threshold=threshold, node=enterprise, now=now, on_fever=flag)


@dataclass(frozen=True, slots=True)
class WorkerReadingResult:
    """A worker's stored reading."""

    person: Person
    value: float
    fever: bool


async def record_temperature(
    session: AsyncSession, *, node: Node, cmd: Temperature, sender: Person | None,
    as_liaison: bool, now: datetime, zone: ZoneInfo, fever_threshold: float,
    inbound_id: int | None,
) -> WorkerReadingResult:
    """体温 in an enterprise's group: the worker's own reading, or the liaison's for a named
    worker of this enterprise."""
    enterprise = await enterprise_of(session, node=node)
    if cmd.name is not None and as_liaison:
        row = (await session.execute(
            select(WorkerCard, Person).join(Person, Person.id == WorkerCard.person_id)
            .where(WorkerCard.enterprise_node_id == enterprise.id, Person.name == cmd.name)
            .order_by(WorkerCard.id).limit(1))).first()
        if row is None:
            raise UserError(unit_texts.Worker.TEMP_NAME_UNKNOWN.format(
                name=pii.mask_name(cmd.name)))
        card, person = row
    else:
        card = None if sender is None else (await session.execute(select(WorkerCard).where(
            WorkerCard.enterprise_node_id == enterprise.id, WorkerCard.person_id == sender.id)
        )).scalar_one_or_none()
        if card is None or sender is None:
            raise UserError(unit_texts.Worker.TEMP_NO_CARD)
        person = sender
    assert sender is not None
    fever = await add_reading(session, card=card, person=person, enterprise=enterprise,
                              by=sender, value=cmd.value, now=now, zone=zone,
                              threshold=fever_threshold, inbound_id=inbound_id)
    return WorkerReadingResult(person, cmd.value, fever)


async def import_workers(session: AsyncSession, *, enterprise: Node,
                         cards: Sequence[WorkerRegister], now: datetime, zone: ZoneInfo,
                         watch_days: int, fever_threshold: float) -> tuple[int, int]:
    """Worker cards from a file (bot/workerfile.py), as 员工登记 each: (new, updated)."""
    if enterprise.kind != NodeKind.ENTERPRISE:
        raise UserError(f"{enterprise.name} is not an enterprise")
    new = updated = 0
    for cmd in cards:
        result = await register_worker(
            session, node=enterprise, by=None, cmd=cmd, transport="", mentioned=(), now=now,
            zone=zone, watch_days=watch_days, fever_threshold=fever_threshold, inbound_id=None)
        new, updated = (new + 1, updated) if result.created else (new, updated + 1)
    return new, updated


# --- 企业日报 and 工作卡 -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filed:
    """A daily row stored (or corrected), the tickets its problems opened, whether the
    community was told of anomalies."""

    row: Any
    corrected: bool
    tickets: list[Ticket]
    told: bool


async def _daily_row(session: AsyncSession, model: Any, *, node: Node, day: date,
                     by: Person | None, values: dict[str, Any], now: datetime,
                     inbound_id: int | None) -> tuple[Any, bool]:
    row = (await session.execute(select(model).where(model.node_id == node.id,
                                                     model.day == day))).scalar_one_or_none()
    corrected = row is not None
    if row is None:
        row = model(node_id=node.id, day=day, created_at=now)
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    row.by_id, row.inbound_id, row.updated_at = by.id if by else None, inbound_id, now
    await session.flush()
    return row, corrected


async def file_report(session: AsyncSession, *, node: Node, by: Person | None,
                      cmd: EnterpriseReport, now: datetime, zone: ZoneInfo,
                      inbound_id: int | None) -> Filed:
    """企业日报: today's report of the enterprise (a second one corrects it); anomalies are
    told to the community."""
    enterprise = await enterprise_of(session, node=node)
    day = local_day(now, zone)
    row, corrected = await _daily_row(
        session, EnterpriseReportRow, node=enterprise, day=day, by=by, now=now,
        inbound_id=inbound_id, values=dict(on_duty=cmd.on_duty, returned=cmd.returned,
                                           isolated=cmd.isolated, anomalies=cmd.anomalies))
    told = False
    if cmd.anomalies:
        told = bool(await _tell_community(
            session, node=enterprise, now=now,
            text=unit_texts.Report.ANOMALY_TO_COMMUNITY.format(
                name=enterprise.name, date=local_date(now, zone), anomalies=cmd.anomalies,
                on_duty=cmd.on_duty, isolated=cmd.isolated)))
    return Filed(row, corrected, [], told)


async def file_work_card(session: AsyncSession, *, node: Node, group: Group, by: Person | None,
                         cmd: WorkCard, now: datetime, zone: ZoneInfo,
                         inbound_id: int | None) -> Filed:
    """工作卡: today's work card of the project (a second one corrects it); anomalies are told
    to the community; problems become tickets (反馈) to the community and the subdistrict."""
    problems = pii.mask_text(cmd.problems)
    row, corrected = await _daily_row(
        session, WorkCardRow, node=node, day=local_day(now, zone), by=by, now=now,
        inbound_id=inbound_id, values=dict(on_site=cmd.on_site, arrivals=cmd.arrivals,
                                           anomalies=cmd.anomalies, problems=problems))
    told = False
    if cmd.anomalies:
        told = bool(await _tell_community(
            session, node=node, now=now, text=unit_texts.Card.ANOMALY_TO_COMMUNITY.format(
                name=node.name, date=local_date(now, zone), anomalies=cmd.anomalies,
                on_site=cmd.on_site)))
    opened: list[Ticket] = []
    if problems:
        text = unit_texts.Card.TICKET_TEXT.format(problems=problems)
        community = await session.get(Node, node.parent_id) if node.parent_id else None
        for target in (community, await session.get(Node, community.parent_id)
                       if community and community.parent_id else None):
            if target is not None:
                opened.append(await tickets.open_ticket(
                    session, group=group, node=node, asker=by, text=text, now=now,
                    target=target))
    return Filed(row, corrected, opened, told)


# --- reminders ---------------------------------------------------------------------------------


async def _missing(session: AsyncSession, *, kind: NodeKind, model: Any, day: date,
                   zone: ZoneInfo) -> list[Node]:
    """Units of this kind that existed that day, with a bound group and no row for the day,
    in id order."""
    filed = select(model.node_id).where(model.day == day)
    return list((await session.execute(
        select(Node).where(Node.kind == kind, ~Node.id.in_(filed),
                           Node.created_at < _day_end(day, zone),
                           Node.id.in_(select(Group.node_id)))
        .order_by(Node.id))).scalars())


async def remind_missing(session: AsyncSession, *, day: date, now: datetime, zone: ZoneInfo,
                         escalate: bool, at: str) -> int:
    """Enterprises without the day's 企业日报 and projects without its 工作卡: remind their
    own group (mentioning who reports; only on the day itself), or, escalating, tell each
    community which of its units have not reported (a day caught up late too). Returns rows
    written."""
    if not escalate and day != local_day(now, zone):
        return 0  # a reminder to report a day that is over helps no one
    date_text = texts_tenant.DATE.format(month=day.month, day=day.day)
    written = 0
    for kind, model, texts in ((NodeKind.ENTERPRISE, EnterpriseReportRow, unit_texts.Report),
                               (NodeKind.PROJECT, WorkCardRow, unit_texts.Card)):
        missing = await _missing(session, kind=kind, model=model, day=day, zone=zone)
        if not escalate:
            for node in missing:
                mentions: list[str] = []
                for group in await outbox.groups_of(session, node_id=node.id):
                    for person in await chain.commanders(session, node=node):
                        mentions += await people.contact_ids(session, person_id=person.id,
                                                             transport=group.transport)
                    break
                written += await outbox.queue_to_node(
                    session, node_id=node.id, source="unit-remind", now=now, mentions=mentions,
                    text=texts.REMIND.format(name=node.name, date=date_text))
            continue
        by_parent: dict[int, list[str]] = {}
        for node in missing:
            if node.parent_id is not None:
                by_parent.setdefault(node.parent_id, []).append(node.name)
        for parent_id, names in by_parent.items():
            written += await outbox.queue_to_node(
                session, node_id=parent_id, source="unit-escalate", now=now,
                text=texts.ESCALATE.format(date=date_text, time=at, names="、".join(names)))
    return written


# --- 统计 ----------------------------------------------------------------------------------


def _day_end(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0, 0), zone)


async def unit_stats(session: AsyncSession, node_ids: chain.NodeIds, day: date,
                     zone: ZoneInfo | None = None) -> list[tuple[str, int]]:
    """The enterprise and key-project lines of 统计 for the nodes `node_ids` (a subtree):
    enterprises, reopened, today's reports; workers carded, back by the day, in isolation or
    home watch at the day's end, with a fever; key projects, today's work cards, workers on
    site and anomalies on them (`node_ids` a collection or a Select of ids, as
    bot.services.stats takes them). Labels are unit_texts.STATS."""
    from bot.services.stats import counts

    zone = zone or ZoneInfo("Asia/Shanghai")
    # Enterprises and projects are tier-3 nodes: the subtree down to tier 3 holds them all.
    assert TIER_OF_KIND[NodeKind.PROJECT] == TIER_OF_KIND[NodeKind.ENTERPRISE]
    tier = TIER_OF_KIND[NodeKind.ENTERPRISE]
    in_tree = and_(chain.in_nodes(Node.id, node_ids, down_to=tier, tiered=True),
                   Node.tier == tier)
    end = _day_end(day, zone)
    enterprises = select(Node.id).where(in_tree, Node.kind == NodeKind.ENTERPRISE)
    projects = select(Node.id).where(in_tree, Node.kind == NodeKind.PROJECT)

    # One statement (each of its parts reads the subtree's units, a few hundred at a city).
    isolated = or_(WorkerCard.health == WorkerHealth.ISOLATED, WorkerCard.watch_until >= end)
    cards = select(func.count(WorkerCard.id)).where(
        WorkerCard.enterprise_node_id.in_(enterprises), WorkerCard.created_at < end)
    sheets = (WorkCardRow.node_id.in_(projects), WorkCardRow.day == day)
    keys = ("enterprises", "reopened", "reported", "workers", "back", "isolated", "fevers",
            "projects", "cards", "on_site", "anomalies")
    figures = dict(zip(keys, await counts(
        session,
        select(func.count(Node.id)).where(in_tree, Node.kind == NodeKind.ENTERPRISE),
        select(func.count(Enterprise.id)).where(
            Enterprise.node_id.in_(enterprises), Enterprise.status == EnterpriseStatus.REOPENED,
            or_(Enterprise.reopened_on.is_(None), Enterprise.reopened_on <= day)),
        select(func.count(EnterpriseReportRow.id)).where(
            EnterpriseReportRow.node_id.in_(enterprises), EnterpriseReportRow.day == day),
        cards,
        cards.where(WorkerCard.returned_on <= day),
        cards.where(isolated),
        cards.where(WorkerCard.health == WorkerHealth.FEVER),
        select(func.count(Node.id)).where(in_tree, Node.kind == NodeKind.PROJECT),
        select(func.count(WorkCardRow.id)).where(*sheets),
        select(func.sum(WorkCardRow.on_site)).where(*sheets),
        select(func.sum(WorkCardRow.anomalies)).where(*sheets)), strict=True))
    return [(unit_texts.STATS[key], int(value or 0)) for key, value in figures.items()]

