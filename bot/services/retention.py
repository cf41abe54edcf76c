"""Retention: the daily purge of personal records past their period, and the end of the
epidemic campaign, which purges every record whose only purpose was the campaign.

Counts per kind are returned (never the records), so a dry run can list what would go.

Ids that key other records are never handed out twice: points events are keyed by a stay's
or an inbound message's id (`source_key`), and SQLite gives a new row the largest id + 1, so
deleting the newest row would let its id come back. The newest stay and the newest inbound
row therefore stay as anonymised high-water rows (no origin, building, readings, sender,
room or command), and are deleted with the next purge once a newer row exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    and_,
    delete,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.config import RetentionSettings
from models import (
    AccessLog,
    Base,
    Contact,
    Echo,
    InboundMessage,
    InviteAttempt,
    JobRun,
    LandlordReport,
    LinkRequest,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Person,
    PointsEvent,
    Removal,
    Role,
    TemperatureReading,
    TenantStay,
    Ticket,
    WorkerCard,
    WorkerHealth,
    WorkerReading,
)

# Outbox rows whose text is an aggregate without personal data (tests/test_retention.py
# checks it): kept whole past the outbox period.
KEPT_SOURCES = ("rollup",)
# Rows per statement when ids are handed over in lists (SQLite's limit of bound variables).
CHUNK = 5000

PURGE_KINDS = ("readings", "stays", "inbound", "outbox_text", "access_log")
CAMPAIGN_KINDS = ("readings", "stays", "inbound", "outbox_text", "reports", "points_evidence",
                  "tickets", "people", "contacts", "roles", "link_requests", "removals",
                  "echoes", "invite_attempts")


@dataclass
class Counts:
    """Rows deleted or anonymised, per kind (no record content)."""

    kinds: tuple[str, ...]
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int) -> None:
        assert kind in self.kinds, kind
        self.rows[kind] = self.rows.get(kind, 0) + max(n, 0)

    def get(self, kind: str) -> int:
        return self.rows.get(kind, 0)

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(self.get(k) for k in self.kinds)

    def lines(self) -> list[str]:
        return [f"{k}: {self.get(k)}" for k in self.kinds]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


async def _ids(session: AsyncSession, stmt: Any) -> list[int]:
    return list((await session.execute(stmt)).scalars())


async def _newest(session: AsyncSession, col: Any) -> int | None:
    value = (await session.execute(select(func.max(col)))).scalar_one_or_none()
    return int(value) if value is not None else None


async def _rowcount(session: AsyncSession, stmt: Any) -> int:
    result: Any = await session.execute(stmt, execution_options={"synchronize_session": False})
    return int(result.rowcount or 0)


async def _drop_stays(session: AsyncSession, due: ColumnElement[bool], counts: Counts) -> None:
    """Readings of the due stays deleted, the stays deleted (the newest anonymised)."""
    newest = await _newest(session, TenantStay.id)
    ids = await _ids(session, select(TenantStay.id).where(due).order_by(TenantStay.id))
    for part in _chunks(ids):
        counts.add("readings", await _rowcount(session, delete(TemperatureReading).where(
            TemperatureReading.stay_id.in_(part))))
        await session.execute(update(LandlordReport).where(LandlordReport.stay_id.in_(part))
                              .values(stay_id=None), execution_options={
                                  "synchronize_session": False})
        counts.add("stays", await _rowcount(session, delete(TenantStay).where(
            TenantStay.id.in_(part), TenantStay.id != newest)))
    if newest is not None and newest in ids:
        counts.add("stays", await _rowcount(session, update(TenantStay).where(
            TenantStay.id == newest,
            or_(TenantStay.origin.is_not(None), TenantStay.building_id.is_not(None),
                TenantStay.flat_id.is_not(None), TenantStay.fever.is_(True),
                TenantStay.self_reported_at.is_not(None),
                TenantStay.landlord_reported_at.is_not(None)))
            .values(origin=None, building_id=None, flat_id=None, fever=False,
                    self_reported_at=None, landlord_reported_at=None)))


def _references_to(model: type[Base]) -> list[Column[Any]]:
    """Every column of every table holding a foreign key to this model's rows (all nullable:
    a record keeps its row when what it came from is purged). Read from the metadata, so a
    table added later (a shop check-in, a worker's reading) is covered without a list here."""
    target = model.__table__
    found = [fk.parent for table in Base.metadata.sorted_tables for fk in table.foreign_keys
             if fk.column.table is target]
    assert all(c.nullable for c in found), [str(c) for c in found if not c.nullable]
    return found


async def _drop_worker_health(session: AsyncSession, due: ColumnElement[bool],
                              counts: Counts) -> None:
    """Workers' readings of the due cards deleted and the cards' whereabouts and health
    cleared (counted as readings and stays: the same kinds of record as a tenant's); the card
    itself stays (enterprise, workshop, person), so the head counts hold."""
    ids = await _ids(session, select(WorkerCard.id).where(due).order_by(WorkerCard.id))
    for part in _chunks(ids):
        counts.add("readings", await _rowcount(session, delete(WorkerReading).where(
            WorkerReading.card_id.in_(part))))
        counts.add("stays", await _rowcount(session, update(WorkerCard).where(
            WorkerCard.id.in_(part), or_(
                WorkerCard.origin.is_not(None), WorkerCard.returned_on.is_not(None),
                WorkerCard.watch_until.is_not(None), WorkerCard.health != WorkerHealth.NORMAL))
            .values(origin=None, returned_on=None, watch_until=None,
                    health=WorkerHealth.NORMAL)))


async def _drop_inbound(session: AsyncSession, due: ColumnElement[bool], counts: Counts) -> None:
    """Inbound rows deleted (references to them cleared; the newest anonymised)."""
    newest = await _newest(session, InboundMessage.id)
    ids = await _ids(session, select(InboundMessage.id).where(due).order_by(InboundMessage.id))
    for part in _chunks(ids):
        for column in _references_to(InboundMessage):
            await session.execute(update(column.table).where(column.in_(part))
                                  .values({column.name: None}))
        counts.add("inbound", await _rowcount(session, delete(InboundMessage).where(
            InboundMessage.id.in_(part), InboundMessage.id != newest)))
    if newest is not None and newest in ids:
        counts.add("inbound", await _rowcount(session, update(InboundMessage).where(
            InboundMessage.id == newest, InboundMessage.sender_id != "")
            .values(transport="", message_id=f"purged-{newest}", room_id="", sender_id="",
                    command="")))


async def _drop_outbox_text(session: AsyncSession, due: ColumnElement[bool],
                            counts: Counts) -> None:
    """The text and mentions of finished outbox rows (not pending or being sent) cleared."""
    counts.add("outbox_text", await _rowcount(session, update(OutboxMessage).where(
        due, OutboxMessage.status.in_([OutboxStatus.SENT, OutboxStatus.FAILED]),
        OutboxMessage.source.not_in(KEPT_SOURCES), OutboxMessage.text.is_not(None))
        .values(text=None, mentions=[])))


async def purge_due(session: AsyncSession, *, now: datetime,
                    settings: RetentionSettings) -> Counts:
    """Delete or anonymise what is past its retention period as of `now`."""
    counts = Counts(PURGE_KINDS)
    stays_before = now - timedelta(days=settings.stay_days)
    await _drop_stays(session, or_(TenantStay.watch_until < stays_before,
                                   TenantStay.ended_at < stays_before), counts)
    # A worker's card is due like a stay: its watch over (or none) and no reading for as long.
    await _drop_worker_health(session, and_(
        or_(WorkerCard.watch_until.is_(None), WorkerCard.watch_until < stays_before),
        WorkerCard.updated_at < stays_before,
        ~select(WorkerReading.id).where(WorkerReading.card_id == WorkerCard.id,
                                        WorkerReading.taken_at >= stays_before).exists()),
        counts)
    await _drop_inbound(session, InboundMessage.received_at
                        < now - timedelta(days=settings.inbound_days), counts)
    await _drop_outbox_text(session, func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at)
                            < now - timedelta(days=settings.outbox_text_days), counts)
    counts.add("access_log", await _rowcount(session, delete(AccessLog).where(
        AccessLog.at < now - timedelta(days=settings.access_log_days))))
    return counts


async def campaign_people(session: AsyncSession) -> list[int]:
    """People known only as tenants or carded workers: a stay, a tenant role, a claim or a
    worker card, and no role other than a tenant's."""
    tenantish = union(select(TenantStay.tenant_id), select(WorkerCard.person_id),
                      select(Membership.person_id).where(Membership.role == Role.TENANT),
                      select(LinkRequest.claimant_id))
    other = select(Membership.person_id).where(Membership.role != Role.TENANT)
    return await _ids(session, select(Person.id).where(Person.id.in_(tenantish),
                                                      Person.id.not_in(other))
                      .order_by(Person.id))


def _person_blanks() -> dict[str, Any]:
    """Every personal column of Person blanked: the name replaced, the rest NULL (so columns
    added later, e.g. encrypted numbers and their look-up hashes, are covered when nullable)."""
    values: dict[str, Any] = {"name": texts.Retention.ERASED_NAME}
    for col in Person.__table__.columns:
        if col.name not in ("id", "name", "created_at") and col.nullable:
            values[col.key] = None
    return values


async def end_campaign(session: AsyncSession, *, now: datetime) -> Counts:
    """Purge every record whose only purpose was the epidemic campaign (README, "Personal
    data"); the chain, its people other than tenants, notices, points totals and standings
    and the daily roll-ups stay."""
    counts = Counts(CAMPAIGN_KINDS)
    people = await campaign_people(session)
    true: ColumnElement[bool] = TenantStay.id.is_not(None)
    await _drop_stays(session, true, counts)
    counts.add("readings", await _rowcount(session, delete(TemperatureReading)))
    await _drop_worker_health(session, WorkerCard.id.is_not(None), counts)
    await _drop_inbound(session, InboundMessage.id.is_not(None), counts)
    await _drop_outbox_text(session, OutboxMessage.id.is_not(None), counts)
    counts.add("reports", await _rowcount(session, update(LandlordReport).where(
        or_(LandlordReport.detail != "", LandlordReport.stay_id.is_not(None)))
        .values(detail="", stay_id=None)))
    counts.add("points_evidence", await _rowcount(session, update(PointsEvent).where(
        or_(PointsEvent.evidence != "", PointsEvent.decision_reason.is_not(None),
            PointsEvent.appeal_reason.is_not(None)))
        .values(evidence="", decision_reason=None, appeal_reason=None)))
    counts.add("echoes", await _rowcount(session, delete(Echo)))
    counts.add("invite_attempts", await _rowcount(session, delete(InviteAttempt)))
    blanks = _person_blanks()
    for part in _chunks(people):
        counts.add("link_requests", await _rowcount(session, delete(LinkRequest).where(
            or_(LinkRequest.person_id.in_(part), LinkRequest.claimant_id.in_(part)))))
        counts.add("contacts", await _rowcount(session, delete(Contact).where(
            Contact.person_id.in_(part))))
        counts.add("roles", await _rowcount(session, delete(Membership).where(
            Membership.person_id.in_(part), Membership.role == Role.TENANT)))
        counts.add("removals", await _rowcount(session, update(Removal).where(
            Removal.person_id.in_(part), Removal.contact_id.is_not(None))
            .values(contact_id=None)))
        counts.add("tickets", await _rowcount(session, update(Ticket).where(
            Ticket.asker_id.in_(part), Ticket.text != texts.Retention.ERASED_TEXT)
            .values(text=texts.Retention.ERASED_TEXT, answer=None)))
        counts.add("people", await _rowcount(session, update(Person).where(
            Person.id.in_(part)).values(**blanks)))
    session.add(JobRun(job="campaign-end", key=f"{now:%Y-%m-%dT%H:%M:%S}", at=now))
    return counts
