"""Exports: a subtree's XLSX reports (统计 of a day, a closed week's red and black lists, the
people under home watch), one service for the CLI and the console. Each export is recorded in
the access log (who, which report, the subtree's root) in the caller's transaction; the list
of people under watch only for authorised roles."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot.domain import UserError
from bot.export_texts import Export as T
from bot.services import chain, points, stats_export, tenant
from models import AccessAction, AccessLog, Membership, Node, Person, Role, WorkerCard
from models.unit import WorkerHealth, WorkerReading


class Report(StrEnum):
    """Which report."""

    STATS = "stats"  # 统计 of a day
    LISTS = "lists"  # a closed week's standings, red and black lists
    WATCH = "watch"  # tenants and workers under home watch (masked)


# Who may export the people under home watch: the commanders and secretaries of tiers 1-3
# (subdistrict, community, team) over the subtree, and superusers. A landlord, captain or
# team member sees their own tenants in chat but takes no list of the area's returnees away.
WATCH_ROLES = frozenset({Role.COMMANDER, Role.SECRETARY})
WATCH_MAX_TIER = 3


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks: `who` as the access log writes it ("cli", "person:<id>"), their person (None
    for the CLI or a superuser with no person) and whether they are a superuser."""

    who: str
    person_id: int | None = None
    superuser: bool = False


@dataclass(frozen=True, slots=True)
class Exported:
    """A written report: its file name and bytes."""

    report: Report
    key: str  # the day or the week it covers
    filename: str
    data: bytes


class ExportRefused(UserError):
    """The requester may not take this report of this subtree."""


async def may_export(session: AsyncSession, *, report: Report, root: Node,
                     by: Requester) -> bool:
    """Whether `by` may export `report` of the subtree under `root` (its scope is checked by
    the caller; this is the role rule on top of it)."""
    if report != Report.WATCH or by.superuser:
        return True
    if by.person_id is None:
        return False
    ancestors = await _ancestors(session, root)
    held = await session.execute(
        select(Membership.id).join(Node, Node.id == Membership.node_id)
        .where(Membership.person_id == by.person_id, Membership.node_id.in_(ancestors),
               Membership.role.in_([str(r) for r in WATCH_ROLES]),
               Node.tier <= WATCH_MAX_TIER))
    return held.first() is not None


async def _ancestors(session: AsyncSession, node: Node) -> list[int]:
    """The node and every node above it."""
    out = [node.id]
    parent = node.parent_id
    while parent is not None:
        out.append(parent)
        above = await session.get(Node, parent)
        parent = above.parent_id if above is not None else None
    return out


async def export(session: AsyncSession, *, report: Report, root: Node, by: Requester,
                 day: date, week: str | None = None, zone: ZoneInfo, now: datetime
                 ) -> Exported:
    """Write `report` of the subtree under `root` (统计 and the watch list as of `day`, the
    lists of `week`, an ISO week) and record the export; ExportRefused when `by` may not."""
    if not await may_export(session, report=report, root=root, by=by):
        raise ExportRefused(T.REFUSED.format(name=T.NAMES[report]))
    out = io.BytesIO()
    key = day.isoformat()
    if report == Report.STATS:
        figures, regs = await stats_export.collect(session, root=root, day=day, zone=zone,
                                                   now=now)
        stats_export.write(out, figures=figures, reopenings=regs, zone=zone)
    elif report == Report.LISTS:
        key = week or points.last_week(now, zone)
        try:
            points.parse_week(key)
        except ValueError:
            raise UserError(T.BAD_WEEK.format(week=key)) from None
        rows = await points.week_rows(session, week=key,
                                      within=chain.subtree_select(root.id))
        if not rows:
            raise UserError(T.NOT_CLOSED.format(week=key))
        _write_lists(out, rows, root=root, week=key)
    else:
        await _write_watch(session, out, root=root, day=day, zone=zone, now=now)
    session.add(AccessLog(at=now, who=by.who[:128], action=AccessAction.EXPORT,
                          person_id=None, node_id=root.id, field=str(report),
                          why=f"{T.NAMES[report]} {key}"[:200]))
    await session.flush()
    return Exported(report, key, T.FILENAMES[report].format(node=root.name, key=key),
                    out.getvalue())


def _headers(sheet: object, head: object, groups: tuple[tuple[str, tuple[str, ...]], ...],
             *, title: str, row: int = 0) -> int:
    """A merged title over every column, then merged group headers over their columns, then
    the column labels; returns the first data row."""
    width = sum(len(labels) for _, labels in groups)
    sheet.merge_range(row, 0, row, width - 1, title, head)  # type: ignore[attr-defined]
    col = 0
    for group, labels in groups:
        if len(labels) > 1:
            sheet.merge_range(row + 1, col, row + 1, col + len(labels) - 1,  # type: ignore[attr-defined]
                              group, head)
        else:
            sheet.write_string(row + 1, col, group, head)  # type: ignore[attr-defined]
        for offset, label in enumerate(labels):
            sheet.write_string(row + 2, col + offset, label, head)  # type: ignore[attr-defined]
        col += len(labels)
    sheet.freeze_panes(row + 3, 0)  # type: ignore[attr-defined]
    sheet.set_column(0, width - 1, 14)  # type: ignore[attr-defined]
    return row + 3


def _write_lists(out: io.BytesIO, rows: list[points.WeekRow], *, root: Node,
                 week: str) -> None:
    book = stats_export.open_book(out)
    try:
        head, cell, as_text = stats_export.formats(book)
        sheet = book.add_worksheet(T.LISTS_SHEET)
        first = _headers(sheet, head, T.LISTS_GROUPS,
                         title=T.LISTS_TITLE.format(node=root.name, week=week))
        for r, row in enumerate(rows, start=first):
            values: list[object] = [row.scope, row.rank, pii.mask_name(row.landlord), row.node,
                                    row.score, row.week_change, row.deducted,
                                    T.BOARDS.get(row.board, row.board), row.reward_points,
                                    row.reward_fen / 100]
            for c, value in enumerate(values):
                if isinstance(value, int | float):
                    sheet.write_number(r, c, value, cell)
                else:
                    sheet.write_string(r, c, str(value), as_text)
    finally:
        book.close()


def _iso(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).date().isoformat()


async def _write_watch(session: AsyncSession, out: io.BytesIO, *, root: Node, day: date,
                       zone: ZoneInfo, now: datetime) -> None:
    ids = chain.subtree_select(root.id, root.tier)
    names = {n.id: n.name for n in (await session.execute(
        select(Node).where(Node.id.in_(ids)))).scalars()}
    lines: list[list[object]] = []
    for row in await tenant.list_tenants(session, node_ids=ids):
        if row.stay.watch_until <= now:
            continue
        lines.append([T.KIND_TENANT, names.get(row.stay.node_id, ""),
                      pii.mask_name(row.tenant.name), row.tenant.mobile_mask or "",
                      row.stay.origin or "", _iso(row.stay.arrived_at, zone),
                      _iso(row.stay.watch_until, zone),
                      T.FEVER[bool(row.stay.fever)],
                      "" if row.last_reading is None else f"{row.last_reading:.1f}"])
    cards = (await session.execute(
        select(WorkerCard, Person).join(Person, Person.id == WorkerCard.person_id)
        .where(WorkerCard.enterprise_node_id.in_(ids), WorkerCard.watch_until > now)
        .order_by(WorkerCard.id))).tuples().all()
    last: dict[int, float] = {}
    if cards:
        for card_id, value in await session.execute(
                select(WorkerReading.card_id, WorkerReading.value)
                .where(WorkerReading.card_id.in_([c.id for c, _ in cards]))
                .order_by(WorkerReading.taken_at, WorkerReading.id)):
            last[card_id] = value
    for card, person in cards:
        assert card.watch_until is not None
        lines.append([T.KIND_WORKER, names.get(card.enterprise_node_id, ""),
                      pii.mask_name(person.name), person.mobile_mask or "", card.origin or "",
                      card.returned_on.isoformat() if card.returned_on else "",
                      _iso(card.watch_until, zone),
                      T.FEVER[card.health == WorkerHealth.FEVER],
                      f"{last[card.id]:.1f}" if card.id in last else ""])
    book = stats_export.open_book(out)
    try:
        head, _cell, as_text = stats_export.formats(book)
        sheet = book.add_worksheet(T.WATCH_SHEET)
        first = _headers(sheet, head, T.WATCH_GROUPS,
                         title=T.WATCH_TITLE.format(node=root.name, date=day.isoformat()))
        for r, line in enumerate(lines, start=first):
            for c, value in enumerate(line):
                # Every cell as text: a masked phone or a date must not become a number.
                sheet.write_string(r, c, str(value), as_text)
    finally:
        book.close()
