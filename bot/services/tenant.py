"""Tenants returning: registration, home watch, temperature readings and fever flags."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Select,
    Table,
    and_,
    bindparam,
    exists,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bot import hot, pii, texts
from bot.domain import UserError
from bot.grammar import Arrival, Temperature, TenantReturn
from bot.hot import Hot
from bot.services import health, membership, people, personal, report
from models import (
    LinkRequest,
    LinkStatus,
    Node,
    Person,
    ReportKind,
    Role,
    TemperatureReading,
    TenantStay,
    WorkerReading,
)

# Tenant records a new contact got while the landlord has not yet said who they are.
_UNCONFIRMED = select(LinkRequest.claimant_id).where(LinkRequest.status == LinkStatus.PENDING)

# A stated arrival may be this far ahead of the clock (phones are not exactly in sync).
FUTURE_SLACK = timedelta(minutes=10)


def local_date(value: datetime, zone: ZoneInfo) -> str:
    """'3月6日' in the users' zone."""
    local = value.astimezone(zone)
    return texts.Tenant.DATE.format(month=local.month, day=local.day)


def local_datetime(value: datetime, zone: ZoneInfo) -> str:
    """'2月20日04:00' in the users' zone."""
    local = value.astimezone(zone)
    return texts.Tenant.DATETIME.format(month=local.month, day=local.day, hour=local.hour,
                                        minute=local.minute)


# The hour a part of the day stands for when no hour was written (昨天晚上 -> 20:00).
PERIOD_HOURS = {"凌晨": 3, "早上": 7, "上午": 9, "中午": 12, "下午": 15, "傍晚": 18,
                "晚上": 20, "夜里": 22, "半夜": 0}


def arrival_text(arrival: Arrival | None, arrived_at: datetime, zone: ZoneInfo) -> str:
    """'2月20日晚上' when only the part of the day is known, else the date and time."""
    if arrival is not None and arrival.hour is None and arrival.period is not None:
        return local_date(arrived_at, zone) + arrival.period
    return local_datetime(arrived_at, zone)


def resolve_arrival(arrival: Arrival | None, *, now: datetime, zone: ZoneInfo) -> datetime:
    """Turn what the user wrote ('2月20日凌晨4点', '昨晚10点') into a time, checked against now."""
    if arrival is None:
        return now
    today = now.astimezone(zone).date()
    try:
        if arrival.days_ago is not None:
            day = today - timedelta(days=arrival.days_ago)
        elif arrival.month is not None or arrival.day is not None:
            day = date(arrival.year or today.year, arrival.month or today.month,
                       arrival.day or today.day)
            # '12月30日' written in January means last year; '30日' on the 2nd, last month.
            if day > today and arrival.year is None:
                if arrival.month is not None:
                    day = day.replace(year=day.year - 1)
                else:
                    prev = today.replace(day=1) - timedelta(days=1)
                    day = prev.replace(day=min(day.day, prev.day))
        else:
            day = today
        if arrival.hour is not None:
            moment = datetime.combine(day, time(arrival.hour, arrival.minute or 0), zone)
        elif arrival.period is not None:
            moment = datetime.combine(day, time(PERIOD_HOURS[arrival.period], 0), zone)
            # 今天中午到, written in the morning: today, no later than now.
            return min(moment, now) if day == today else moment
        elif day == today:
            return now
        else:
            moment = datetime.combine(day, time(0, 0), zone)
    except ValueError:
        raise UserError(texts.Tenant.RETURN_BAD_DATE) from None
    if moment > now + FUTURE_SLACK:
        raise UserError(texts.Tenant.RETURN_FUTURE)
    return moment


@dataclass(frozen=True, slots=True)
class ReturnResult:
    """What registering a return did."""

    stay: TenantStay
    tenant: Person
    outcome: str  # "new", "again", "confirmed"
    fever: bool
    # A new contact claimed a tenant the landlord registered: the landlord is asked.
    link: LinkRequest | None = None
    claimed: Person | None = None
    # The node's landlords' contact ids on the message's transport (to mention them).
    landlord_contacts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _NewTenant:
    """A tenant to be written with their stay (register_return): the person row, its id
    taken, its numbers sealed; the contact id that becomes theirs, when they wrote."""

    row: dict[str, Any]
    contact: tuple[str, str] | None = None  # (transport, contact id)


async def _tenant_for_landlord(session: AsyncSession, cmd: TenantReturn, *, node: Node,
                               now: datetime) -> Person | _NewTenant:
    """The tenant, or the one to create. A mobile of someone holding another role, or of a
    tenant of another node, is refused without saying whose it is."""
    if not cmd.name:
        raise UserError(texts.Tenant.RETURN_NEEDS_NAME)
    found_id, new_id = await people.owner_and_new_id(session, mobile=cmd.mobile)
    if found_id is not None:
        found = await session.get(Person, found_id)
        assert found is not None
        if await membership.belongs_elsewhere(session, person=found, node=node, now=now):
            raise await membership.mobile_taken(session, node=node)
        return found
    return _NewTenant(people.person_row(person_id=new_id, name=cmd.name, mobile=cmd.mobile,
                                        id_number=cmd.id_number, now=now))


async def _tenant_self(session: AsyncSession, cmd: TenantReturn, *, node: Node,
                       sender: Person | None, transport: str, contact_id: str,
                       display_name: str, now: datetime,
                       owner_and_new: tuple[int | None, int] | None,
                       ) -> tuple[Person | _NewTenant, Person | None]:
    """The tenant (the sender, or the one to create), and the registered tenant
    they claim to be when that waits for the landlord's word. A typed mobile never attaches
    the contact to its owner: a tenant the landlord registered here is asked about (确认/不是);
    anyone else's mobile is refused without saying whose it is. `owner_and_new`: without a
    sender, the mobile's owner and an id for a new person, looked up with the node's
    landlords (people.holder_contacts_and_owner)."""
    if sender is not None:
        by_mobile_id = await people.id_by_mobile(session, mobile=cmd.mobile)
        if by_mobile_id is not None and by_mobile_id != sender.id:
            if await membership.pending_claim(session, claimant_id=sender.id,
                                              person_id=by_mobile_id) is None:
                raise await membership.mobile_taken(session, node=node)
            return sender, None  # still waiting for the landlord
        await personal.set_numbers(session, sender, mobile=cmd.mobile,
                                   id_number=cmd.id_number, keep=True)
        return sender, None
    claimed = None
    assert owner_and_new is not None
    by_mobile_id, new_id = owner_and_new
    if by_mobile_id is not None:
        claimed = await session.get(Person, by_mobile_id)
        assert claimed is not None
        if not await membership.may_claim(session, person=claimed, node=node, now=now):
            raise await membership.mobile_taken(session, node=node)
    # A new tenant record; when it claims a registered tenant it keeps no mobile (the mobile
    # is the registered tenant's) until the landlord confirms they are one person. The id is
    # taken first, so the mobile is sealed as the row is written (with the stay).
    row = people.person_row(
        person_id=new_id, name=cmd.name or display_name or contact_id,
        mobile=None if claimed else cmd.mobile, id_number=None if claimed else cmd.id_number,
        now=now)
    return _NewTenant(row, (transport, contact_id)), claimed


# A return's stay and every reading are Core INSERTs (the ORM's unit of work cost more than
# the database's work); built once.
_STAY = cast(Table, TenantStay.__table__)
_INSERT_STAY = Hot(insert(_STAY).values({c.key: bindparam(c.key, type_=c.type)
                                          for c in _STAY.c if c.key != "id"})
                   .returning(_STAY.c.id))
_INSERT_READING: dict[tuple[Any, frozenset[str]], Hot] = {}

# Built once (a statement keeps its compiled form and cache key): every 体温 asks it.
_LATEST_STAY = (select(TenantStay)
                .where(TenantStay.tenant_id == bindparam("tenant_id"),
                       TenantStay.node_id == bindparam("node_id"))
                .order_by(TenantStay.arrived_at.desc(), TenantStay.id.desc()).limit(1))


async def latest_stay(session: AsyncSession, *, tenant_id: int, node_id: int) -> TenantStay | None:
    """The tenant's most recent stay at a node."""
    return (await session.execute(
        _LATEST_STAY, {"tenant_id": tenant_id, "node_id": node_id})).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class StayFacts:
    """What a tenant's own reading needs of their stay (_own_reading): no object loaded."""

    id: int
    watch_until: datetime


# latest_stay's id, as a hot statement (bot.hot), and as the subquery of a tenant's own 体温.
_LATEST = (select(_STAY.c.id).where(_STAY.c.tenant_id == bindparam("tenant_id"),
                                    _STAY.c.node_id == bindparam("node_id"))
           .order_by(_STAY.c.arrived_at.desc(), _STAY.c.id.desc()).limit(1))
_LATEST_STAY_ID = Hot(_LATEST)
_SET_FEVER = Hot(update(_STAY).where(_STAY.c.id == bindparam("stay_id")).values(fever=True))
# A tenant's own 体温 in one statement: the reading written against their latest stay at the
# node when that stay is live, its watch handed back; no row back (nothing written) when
# there is no stay or it ended.
_READING = cast(Table, TemperatureReading.__table__)
_READ_COLUMNS = ("value", "taken_at", "by_id", "inbound_id")
_READING_ON_LATEST_STAY = Hot(
    insert(_READING).from_select(
        ["stay_id", *_READ_COLUMNS],
        select(_STAY.c.id, *(bindparam(c, type_=_READING.c[c].type) for c in _READ_COLUMNS))
        .where(_STAY.c.id == _LATEST.scalar_subquery(), _STAY.c.ended_at.is_(None)))
    .returning(_READING.c.stay_id, literal_column(
        "(SELECT tenant_stay.watch_until FROM tenant_stay "
        "WHERE tenant_stay.id = temperature_reading.stay_id)", _STAY.c.watch_until.type)))


async def _flag_fever(session: AsyncSession, stay_id: int) -> None:
    """A stay not loaded had a fever: its flag set with an UPDATE (a loaded copy of it in the
    session learns it too)."""
    await _SET_FEVER.rows(session, {"stay_id": stay_id})
    loaded = session.sync_session.identity_map.get(identity_key(TenantStay, stay_id))
    if loaded is not None:
        set_committed_value(loaded, "fever", True)


async def register_return(
    session: AsyncSession, *, node: Node, cmd: TenantReturn, sender: Person | None,
    on_behalf: bool, by_landlord: bool, transport: str, contact_id: str, display_name: str,
    now: datetime,
    zone: ZoneInfo, watch_days: int, fever_threshold: float, inbound_id: int | None,
) -> ReturnResult:
    """租客返回 / 房东上报 返回: one stay per return, whoever of tenant and landlord writes first.

    `on_behalf`: the writer registers someone else (a landlord, or a worker of the chain);
    `by_landlord`: the writer is this group's landlord, which also makes it a landlord report.
    """
    arrived = resolve_arrival(cmd.arrival, now=now, zone=zone)
    await people.lock_mobile(session, cmd.mobile)  # before any look-up (see lock_mobile)
    owner_and_new = None
    if not on_behalf and sender is None:
        # A new contact's own return: its landlords, the mobile's owner and a new id at once.
        landlords, landlord_contacts, owner, new_id = await people.holder_contacts_and_owner(
            session, node_id=node.id, role=Role.LANDLORD, transport=transport,
            mobile=cmd.mobile)
        owner_and_new = (owner, new_id)
    else:
        landlords, landlord_contacts = await people.holder_contacts(
            session, node_id=node.id, role=Role.LANDLORD, transport=transport)
    claimed = None
    if on_behalf:
        found = await _tenant_for_landlord(session, cmd, node=node, now=now)
    else:
        found, claimed = await _tenant_self(
            session, cmd, node=node, sender=sender, transport=transport, contact_id=contact_id,
            display_name=display_name, now=now, owner_and_new=owner_and_new)
    stay = None
    if isinstance(found, Person):
        tenant_id = found.id
        await people.add_role(session, person_id=tenant_id, node_id=node.id, role=Role.TENANT,
                              now=now)
        stay = await latest_stay(session, tenant_id=tenant_id, node_id=node.id)
    else:
        # A tenant created now has no role and no stay yet: nothing to look up. Their
        # person, contact, role and stay rows are written together below.
        tenant_id = found.row["id"]
    if stay is not None and stay.ended_at is not None:
        stay = None  # a tenancy that ended (退租) is history: a return starts a new stay
    outcome = "new"
    if stay is not None and stay.watch_until > now:
        # The same return told twice (or by both sides): one stay, the missing side filled in.
        if by_landlord and stay.landlord_reported_at is None:
            stay.landlord_reported_at = now
            outcome = "confirmed"
        elif not by_landlord and stay.self_reported_at is None:
            stay.self_reported_at = now
            outcome = "confirmed"
        else:
            outcome = "again"
    else:
        values: dict[str, Any] = dict.fromkeys(_STAY.c.keys())
        values.update(
            tenant_id=tenant_id, node_id=node.id,
            landlord_id=(sender.id if by_landlord and sender else
                         landlords[0] if landlords else None),
            origin=cmd.origin, arrived_at=arrived,
            watch_until=arrived + timedelta(days=watch_days),
            self_reported_at=None if by_landlord else now,
            landlord_reported_at=now if by_landlord else None, fever=False, created_at=now)
        del values["id"]
        if isinstance(found, _NewTenant):
            values["id"] = await _write_new_tenant(session, found, node_id=node.id,
                                                   stay=values, now=now)
            found = people.known(session, Person(**found.row))
        else:
            values["id"] = await _INSERT_STAY.scalar(session, values)
        stay = people.known(session, TenantStay(**values))
    assert isinstance(found, Person)  # a new tenant's rows are written with their stay
    tenant = found
    if by_landlord and outcome != "again":
        assert sender is not None
        await report.add_report(session, landlord=sender, node=node, kind=ReportKind.RETURN,
                                detail=pii.mask_text(f"{cmd.name} {cmd.origin or ''}").strip(),
                                stay_id=stay.id, inbound_id=inbound_id, now=now)
    fever = False
    if cmd.temperature is not None and outcome != "again":
        by = sender or tenant
        fever = await _add_reading(session, stay=stay, tenant=tenant, node=node, by=by,
                                   value=cmd.temperature, now=now, zone=zone,
                                   threshold=fever_threshold, inbound_id=inbound_id)
    link = None
    if claimed is not None:
        link = await membership.open_link(session, node=node, person=claimed, claimant=tenant,
                                          transport=transport, contact_id=contact_id, now=now)
    return ReturnResult(stay, tenant, outcome, fever, link, claimed, tuple(landlord_contacts))


def _new_tenant_statement(contact: bool) -> Any:
    """PostgreSQL: a new tenant's person, contact (when they wrote), role and stay in one
    statement (data-modifying CTEs; the foreign keys are checked at its end)."""
    person = insert(people.PERSON).values(
        {c.key: bindparam(f"p_{c.key}", type_=c.type) for c in people.PERSON.c}).cte("p")
    role = insert(people.MEMBERSHIP).values(
        person_id=bindparam("p_id"), node_id=bindparam("m_node_id"),
        role=bindparam("m_role", type_=people.MEMBERSHIP.c.role.type),
        created_at=bindparam("p_created_at")).cte("m")
    stay = (insert(_STAY).values({c.key: bindparam(f"s_{c.key}", type_=c.type)
                                  for c in _STAY.c if c.key != "id"})
            .returning(_STAY.c.id).add_cte(person).add_cte(role))
    if contact:
        stay = stay.add_cte(insert(people.CONTACT).values(
            person_id=bindparam("p_id"),
            transport=bindparam("c_transport", type_=people.CONTACT.c.transport.type),
            contact_id=bindparam("c_contact_id", type_=people.CONTACT.c.contact_id.type),
            created_at=bindparam("p_created_at")).cte("c"))
    return stay


_NEW_TENANT = {contact: Hot(_new_tenant_statement(contact), identity=True)
               for contact in (False, True)}


async def _write_new_tenant(session: AsyncSession, new: _NewTenant, *, node_id: int,
                            stay: dict[str, Any], now: datetime) -> int:
    """Write a new tenant's rows and their stay; the stay's id. One statement on PostgreSQL
    (each statement is a round trip), four or three on SQLite."""
    person_id = new.row["id"]
    rows = {"contacts": [new.contact] if new.contact else [], "roles": [person_id]}
    if session.bind.dialect.name == "postgresql":
        params = {f"p_{k}": v for k, v in new.row.items()}
        params.update({f"s_{k}": v for k, v in stay.items()}, m_node_id=node_id,
                      m_role=Role.TENANT)
        if new.contact:
            params.update(c_transport=new.contact[0], c_contact_id=new.contact[1])
        return int(await _NEW_TENANT[new.contact is not None].scalar(
            session, params, identity_rows=rows))
    await people.HOT_PERSON.rows(session, new.row, identity_rows=rows)
    if new.contact:
        await people.HOT_CONTACT.rows(session, {
            "person_id": person_id, "transport": new.contact[0], "contact_id": new.contact[1],
            "created_at": now}, identity_rows=rows)
    await people.HOT_MEMBERSHIP.rows(session, {
        "person_id": person_id, "node_id": node_id, "role": Role.TENANT, "created_at": now},
        identity_rows=rows)
    return int(await _INSERT_STAY.scalar(session, stay))


async def _add_reading(
    session: AsyncSession, *, stay: TenantStay, tenant: Person, node: Node, by: Person,
    value: float, now: datetime, zone: ZoneInfo, threshold: float, inbound_id: int | None,
) -> bool:
    def flag() -> str:
        stay.fever = True
        return _fever_to_team(node, tenant, value, now, zone)

    return await keep_reading(
        session, TemperatureReading(stay_id=stay.id, value=value, taken_at=now, by_id=by.id,
                                    inbound_id=inbound_id),
        value=value, threshold=threshold, node=node, now=now, on_fever=flag)


def _fever_to_team(node: Node, tenant: Person, value: float, now: datetime, zone: ZoneInfo
                   ) -> str:
    """The alert for the tier-4 group (team member + landlords), who follow up: masked name,
    no numbers."""
    return texts.Tenant.FEVER_TO_TEAM.format(node=node.name, name=pii.mask_name(tenant.name),
                                             value=value, when=local_datetime(now, zone))


def _reading_insert(table: Any, keys: frozenset[str]) -> Hot:
    """keep_reading's INSERT of these columns into a readings table."""
    key = (table, keys)
    statement = _INSERT_READING.get(key)
    if statement is None:
        statement = _INSERT_READING[key] = Hot(insert(table).values(
            {k: bindparam(k, type_=table.c[k].type) for k in sorted(keys)}))
    return statement


@hot.makes
def _warm_readings(_dialect: str) -> None:
    """The readings' INSERTs as their callers (a tenant's, a worker's) give the columns."""
    for model, owner in ((TemperatureReading, "stay_id"), (WorkerReading, "card_id")):
        _reading_insert(model.__table__, frozenset(
            {owner, "value", "taken_at", "by_id", "inbound_id"}))


async def keep_reading(session: AsyncSession, reading: object, *, value: float,
                       threshold: float, node: Node, now: datetime,
                       on_fever: Callable[[], str]) -> bool:
    """Store a reading (a tenant's or a worker's); at or above the threshold `on_fever` flags
    its record and gives the alert for the group one tier up (health.alert_fever). Returns whether
    it was a fever. `reading` is a new mapped object, written as one Core INSERT of the values
    it was given (it is not added to the session)."""
    table = type(reading).__table__  # type: ignore[attr-defined]
    values = {k: v for k, v in vars(reading).items() if k in table.c}
    await _reading_insert(table, frozenset(values)).rows(session, values)
    return await _alert_if_fever(session, value=value, threshold=threshold, node=node, now=now,
                                 on_fever=on_fever)


async def _alert_if_fever(session: AsyncSession, *, value: float, threshold: float, node: Node,
                          now: datetime, on_fever: Callable[[], str]) -> bool:
    """keep_reading's second half, once the reading is stored."""
    if value < threshold:
        return False
    text = on_fever()
    await session.flush()
    await health.alert_fever(session, node=node, text=text, now=now)
    return True


async def report_possible_fever(
    session: AsyncSession, *, node: Node, name: str, value: float | None, now: datetime,
    zone: ZoneInfo,
) -> None:
    """A fever said but not read for sure: the team's group (tier 4) is told to check."""
    await health.alert_fever(
        session, node=node, now=now, text=texts.Tenant.MAYBE_FEVER_TO_TEAM.format(
            node=node.name, name=pii.mask_name(name), when=local_datetime(now, zone),
            value=texts.Tenant.MAYBE_FEVER_VALUE.format(value=value) if value else ""))


@dataclass(frozen=True, slots=True)
class ReadingResult:
    """A stored reading and whether it raised a fever flag."""

    stay: TenantStay | StayFacts
    tenant: Person
    value: float
    fever: bool


async def record_temperature(
    session: AsyncSession, *, node: Node, cmd: Temperature, sender: Person | None,
    as_landlord: bool, now: datetime, zone: ZoneInfo, fever_threshold: float,
    inbound_id: int | None,
) -> ReadingResult:
    """体温: the tenant's own reading, or a landlord's for a named tenant of this group."""
    if as_landlord and cmd.name is None and sender is not None:
        own = await _LATEST_STAY_ID.scalar(session, {"tenant_id": sender.id,
                                                      "node_id": node.id})
        if own is None:
            raise UserError(texts.Tenant.TEMP_NEEDS_NAME)
    if cmd.name is not None and as_landlord:
        row = (await session.execute(
            select(TenantStay, Person).join(Person, Person.id == TenantStay.tenant_id)
            .where(TenantStay.node_id == node.id, Person.name == cmd.name,
                   TenantStay.ended_at.is_(None), ~Person.id.in_(_UNCONFIRMED))
            .order_by(TenantStay.arrived_at.desc()).limit(1)
        )).first()
        if row is None:
            raise UserError(texts.Tenant.TEMP_NAME_UNKNOWN.format(name=pii.mask_name(cmd.name)))
        stay, tenant = row
    else:
        if sender is None:
            raise UserError(texts.Tenant.TEMP_NO_STAY)
        return await _own_reading(session, node=node, tenant=sender, value=cmd.value, now=now,
                                  zone=zone, threshold=fever_threshold, inbound_id=inbound_id)
    assert sender is not None
    fever = await _add_reading(session, stay=stay, tenant=tenant, node=node, by=sender,
                               value=cmd.value, now=now, zone=zone, threshold=fever_threshold,
                               inbound_id=inbound_id)
    return ReadingResult(stay, tenant, cmd.value, fever)


async def _own_reading(session: AsyncSession, *, node: Node, tenant: Person, value: float,
                       now: datetime, zone: ZoneInfo, threshold: float, inbound_id: int | None,
                       ) -> ReadingResult:
    """A tenant's own 体温: looked up and written in one statement (the most common command
    after 收到)."""
    rows = await _READING_ON_LATEST_STAY.rows(session, {
        "tenant_id": tenant.id, "node_id": node.id, "value": value, "taken_at": now,
        "by_id": tenant.id, "inbound_id": inbound_id})
    if not rows:
        hot.wrote_nothing(session)  # the batch's watch counted the INSERT as a write
        raise UserError(texts.Tenant.TEMP_NO_STAY)
    stay = StayFacts(*rows[0])
    fever = await _alert_if_fever(session, value=value, threshold=threshold, node=node, now=now,
                                  on_fever=lambda: _fever_to_team(node, tenant, value, now, zone))
    if fever:
        await _flag_fever(session, stay.id)
    return ReadingResult(stay, tenant, value, fever)


@dataclass(frozen=True, slots=True)
class TenantRow:
    """One line of 我的租客."""

    tenant: Person
    stay: TenantStay
    last_reading: float | None


async def list_tenants(session: AsyncSession, *, node_ids: Collection[int] | Select[tuple[int]]
                       ) -> list[TenantRow]:
    """The latest stay of every tenant at these nodes (ids, or a query of ids), newest arrival
    first."""
    stays = (await session.execute(
        select(TenantStay, Person).join(Person, Person.id == TenantStay.tenant_id)
        .where(TenantStay.node_id.in_(node_ids), TenantStay.ended_at.is_(None))
        .order_by(TenantStay.arrived_at.desc(), TenantStay.id.desc())
    )).all()
    seen: set[int] = set()
    latest = []
    for stay, person in stays:
        if person.id not in seen:
            seen.add(person.id)
            latest.append((stay, person))
    return await _with_readings(session, latest)


@dataclass(frozen=True, slots=True)
class TenantLine:
    """One line of 我的租客 as columns: a landlord may have hundreds of tenants, and loading
    each stay and person as objects held the event loop for tens of milliseconds."""

    name: str
    mobile_mask: str | None
    origin: str | None
    fever: bool
    watch_until: datetime
    last_reading: float | None


_LINES = (select(TenantStay.id, TenantStay.tenant_id, Person.name, Person.mobile_mask,
                 TenantStay.origin, TenantStay.fever, TenantStay.watch_until)
          .join(Person, Person.id == TenantStay.tenant_id)
          .where(TenantStay.node_id.in_(bindparam("node_ids", expanding=True)),
                 TenantStay.ended_at.is_(None))
          .order_by(TenantStay.arrived_at.desc(), TenantStay.id.desc()))


async def tenant_lines(session: AsyncSession, *, node_ids: Collection[int]) -> list[TenantLine]:
    """list_tenants for a few nodes (a landlord's), as columns: the same tenants in the same
    order, each with their latest stay's last reading."""
    seen: set[int] = set()
    latest = []
    for row in await session.execute(_LINES, {"node_ids": list(node_ids)}):
        if row.tenant_id not in seen:
            seen.add(row.tenant_id)
            latest.append(row)
    readings: dict[int, float] = {}
    if latest:
        for stay_id, value in await session.execute(
            select(TemperatureReading.stay_id, TemperatureReading.value)
            .where(TemperatureReading.stay_id.in_([r.id for r in latest]))
            .order_by(TemperatureReading.taken_at, TemperatureReading.id)
        ):
            readings[stay_id] = value
    return [TenantLine(r.name, r.mobile_mask, r.origin, r.fever, r.watch_until,
                       readings.get(r.id)) for r in latest]


async def page_tenants(session: AsyncSession, *, node_ids: Collection[int] | Select[tuple[int]],
                       after_id: int | None, limit: int) -> list[TenantRow]:
    """list_tenants one page at a time, in stay id order: at most `limit` rows with ids above
    `after_id` (the database picks each tenant's latest stay, not the caller)."""
    newer = aliased(TenantStay)
    stays = (await session.execute(
        select(TenantStay, Person).join(Person, Person.id == TenantStay.tenant_id)
        .where(TenantStay.node_id.in_(node_ids), TenantStay.ended_at.is_(None),
               TenantStay.id > (after_id or 0),
               ~exists().where(newer.tenant_id == TenantStay.tenant_id,
                               newer.node_id.in_(node_ids), newer.ended_at.is_(None),
                               or_(newer.arrived_at > TenantStay.arrived_at,
                                   and_(newer.arrived_at == TenantStay.arrived_at,
                                        newer.id > TenantStay.id))))
        .order_by(TenantStay.id).limit(limit)
    )).tuples().all()
    return await _with_readings(session, list(stays))


async def _with_readings(session: AsyncSession, stays: list[tuple[TenantStay, Person]]
                         ) -> list[TenantRow]:
    """Rows with each stay's last temperature reading."""
    readings: dict[int, float] = {}
    if stays:
        for stay_id, value in await session.execute(
            select(TemperatureReading.stay_id, TemperatureReading.value)
            .where(TemperatureReading.stay_id.in_([s.id for s, _ in stays]))
            .order_by(TemperatureReading.taken_at, TemperatureReading.id)
        ):
            readings[stay_id] = value
    return [TenantRow(p, s, readings.get(s.id)) for s, p in stays]
