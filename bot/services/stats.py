"""统计: a subtree's figures of one day, in the article's terms, as a list of sections.

The contract a section keeps (another unit plugs in with one line in SECTIONS):

    Section(key, title, compute)
    compute(session, node_ids, day) -> list[(label, value)]   (awaitable, ordered)

- `node_ids`: every node of the subtree asked about (the root included): a collection of
  ints or, at city scale, a `chain.Subtree` (or a Select of ids) to use as a subquery.
  Filter on it with `chain.in_nodes`, with `down_to` the lowest tier the rows read hang on
  (a city's 100,000 tier-5 ids are gathered only for rows that hang on tier 5) and `scan`
  for a sparse table (shops: the table is scanned and each row's node checked, so an empty
  or small table costs nothing however large the subtree); a subtree that is the whole
  chain filters nothing. Never load it whole (a city's subtree has more ids than a
  statement may bind parameters).
- `day`: a `Day`, which IS a `datetime.date` (the users' calendar day asked about) and also
  carries `start`/`end` (aware UTC datetimes bounding that day in the users' zone) and `now`
  (the moment "as of": the end of a past day, the clock for today). A section that only
  wants the date treats it as a date.
- `label` is Chinese and short (it heads a column of the export), `value` an int. Labels of
  one section are unique and come in the same order every time (the API and the XLSX export
  key on them).
- Read only: a section never writes, never sends, never commits.

`统计`, the daily roll-up, GET /api/stats and `tierbot stats export` all read compute().
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    distinct,
    func,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.services.chain import (
    NodeIds,
    Subtree,
    in_nodes,
    is_everything,
    subtree_select,
    whole_tree,
)
from models import (
    FigureKey,
    LandlordReport,
    Membership,
    Node,
    NodeKind,
    ReopeningStatus,
    ReportKind,
    Role,
    Shop,
    ShopCheckin,
    ShopPatrol,
    ShopReopening,
    SubtreeFigure,
    TenantStay,
)

# The days a figure can be asked for: the first and last a date holds have bounds outside
# what a datetime holds in UTC (0001-01-01 00:00 in Shanghai is in year 0).
FIRST_DAY, LAST_DAY = date.min + timedelta(days=1), date.max - timedelta(days=1)


def day_in_range(day: date) -> bool:
    """Whether figures can be asked for this day (FIRST_DAY to LAST_DAY)."""
    return FIRST_DAY <= day <= LAST_DAY


class Day(date):
    """A calendar day with its bounds: a date that also knows start, end and now."""

    start: datetime
    end: datetime
    now: datetime
    # The kept figures read for this day, by root (see kept_figures): a Day serves one read
    # session (one 统计, one roll-up), whose sections would each read them again.
    kept: dict[int, dict[str, int] | None]

    @classmethod
    def of(cls, day: date, *, zone: ZoneInfo, now: datetime) -> Day:
        """The day in the users' zone; `now` is capped at its end (a past day is read whole)."""
        out = cls(day.year, day.month, day.day)
        out.start = datetime.combine(day, time(0, 0), zone)
        out.end = out.start + timedelta(days=1)
        out.now = min(now, out.end)
        out.kept = {}
        return out


Items = list[tuple[str, int]]
Compute = Callable[[AsyncSession, NodeIds, Day], Awaitable[Items]]


@dataclass(frozen=True, slots=True)
class Section:
    """One block of figures: a key (API), a Chinese title, and how to compute it."""

    key: str
    title: str
    compute: Compute


async def counts(session: AsyncSession, *stmts: Select[Any]) -> list[int]:
    """Several one-value statements as one (`SELECT (a), (b), ...`): one round trip, where
    each statement costs a few hops to the SQLite reader's thread or to PostgreSQL."""
    row = (await session.execute(select(*(s.scalar_subquery() for s in stmts)))).one()
    return [int(n or 0) for n in row]


async def kept_figures(session: AsyncSession, node_ids: NodeIds, day: Day
                       ) -> dict[str, int] | None:
    """The subtree's figures kept by triggers (models.SubtreeFigure: landlords, tenants,
    stays), when they are the day's; else None (count the rows). They are the figures of
    every row as it stands: the day's when `node_ids` is a Subtree (its root's row) and no
    membership or stay is dated after the day's moment (registered after its end, ended
    after `now`: a past day, or a clock set back). Those three dates are the last entries
    of their indexes; the figures are read in the same statement (one snapshot), once per
    Day and root (the people and the tenants sections both ask)."""
    if not isinstance(node_ids, Subtree):
        return None
    if node_ids.root_id not in day.kept:
        day.kept[node_ids.root_id] = await _read_kept(session, node_ids.root_id, day)
    return day.kept[node_ids.root_id]


async def _read_kept(session: AsyncSession, root_id: int, day: Day) -> dict[str, int] | None:
    """kept_figures' one statement: the latest dates and the root's figures."""

    def kept(key: FigureKey) -> Any:
        return select(func.coalesce(func.sum(SubtreeFigure.value), 0)).where(
            SubtreeFigure.node_id == root_id, SubtreeFigure.key == key
        ).scalar_subquery()

    row = (await session.execute(select(
        select(func.max(Membership.created_at)).scalar_subquery(),
        select(func.max(TenantStay.created_at)).scalar_subquery(),
        select(func.max(TenantStay.ended_at)).where(TenantStay.ended_at.is_not(None))
        .scalar_subquery(),  # the partial index of ended stays
        *(kept(key) for key in FigureKey)))).one()
    registered, returned, ended = row[:3]
    if (registered is not None and registered >= day.end) \
            or (returned is not None and returned >= day.end) \
            or (ended is not None and ended > day.now):
        return None
    return {key.value: int(value) for key, value in zip(FigureKey, row[3:], strict=True)}


async def people_section(session: AsyncSession, node_ids: NodeIds, day: Day) -> Items:
    """Combat teams, their members, landlords."""
    kept = await kept_figures(session, node_ids, day)
    teams, members, landlords = await counts(
        session,
        select(func.count(Node.id)).where(in_nodes(Node.id, node_ids, down_to=3, tiered=True),
                                          Node.tier == 3, Node.kind == NodeKind.TEAM),
        select(func.count(distinct(Membership.person_id)))
        .join(Node, Node.id == Membership.node_id)
        .where(in_nodes(Membership.node_id, node_ids, down_to=4), Node.tier.in_((3, 4)),
               Membership.role.in_((Role.COMMANDER, Role.MEMBER)),
               Membership.created_at < day.end),
        select(literal(kept[FigureKey.LANDLORDS])) if kept is not None else
        select(func.count(distinct(Membership.person_id)))
        .where(in_nodes(Membership.node_id, node_ids),
               _in_order(Membership.person_id, node_ids),
               Membership.role == Role.LANDLORD, Membership.created_at < day.end))
    return [("作战小组", teams), ("小组成员", members), ("房东", landlords)]


async def tenants_section(session: AsyncSession, node_ids: NodeIds, day: Day) -> Items:
    """Tenants registered, returns today and in total, under home watch, fevers."""
    live = (TenantStay.ended_at.is_(None)) | (TenantStay.ended_at > day.now)
    watched = and_(live, TenantStay.watch_until > day.now)
    before_end = TenantStay.created_at < day.end
    kept = await kept_figures(session, node_ids, day)
    if kept is not None:
        # Registered and in total as kept; the day's returns and the stays watched are
        # ranges of their indexes (the returns of the day, the watches still running), each
        # row's node checked (coalesce: the watched are not the range of every return).
        today, watching, fevers = await counts(
            session,
            select(func.count()).select_from(TenantStay).where(
                in_nodes(TenantStay.node_id, node_ids, scan=True),
                TenantStay.created_at >= day.start, before_end),
            *(select(func.count()).select_from(TenantStay).where(
                in_nodes(TenantStay.node_id, node_ids, scan=True), watched, fever,
                func.coalesce(TenantStay.created_at, TenantStay.created_at) < day.end)
              for fever in (true(), TenantStay.fever.is_(True))))
        registered, total = kept[FigureKey.TENANTS], kept[FigureKey.STAYS]
    elif not is_everything(node_ids):
        # A subtree's stays by its nodes' index: one pass over them gives every figure.
        registered, today, total, watching, fevers = (int(n or 0) for n in (
            await session.execute(
                select(func.count(distinct(case((live, TenantStay.tenant_id)))),
                       func.count(case((TenantStay.created_at >= day.start, TenantStay.id))),
                       func.count(TenantStay.id),
                       func.count(case((watched, TenantStay.id))),
                       func.count(case((and_(watched, TenantStay.fever.is_(True)),
                                        TenantStay.id))))
                .where(in_nodes(TenantStay.node_id, node_ids), before_end))).one())
    else:
        # Every stay of the chain (a city) on a day the kept figures are not: each figure
        # from the index that has its rows in order (distinct tenants, without a sort) or as
        # a range (returns by their time, the stays still watched), not one pass over all
        # of them (4x the time at 100,000).
        watched_by_end = and_(watched, func.coalesce(TenantStay.created_at,
                                                     TenantStay.created_at) < day.end)
        registered, total, today, watching, fevers = await counts(
            session,
            select(func.count(distinct(TenantStay.tenant_id)))
            .where(_in_order(TenantStay.tenant_id, node_ids), live, before_end),
            select(func.count()).select_from(TenantStay).where(before_end),
            select(func.count()).select_from(TenantStay)
            .where(TenantStay.created_at >= day.start, before_end),
            select(func.count()).select_from(TenantStay).where(watched_by_end),
            select(func.count()).select_from(TenantStay)
            .where(watched_by_end, TenantStay.fever.is_(True)))
    return [("登记租客", registered), ("今日返回", today), ("累计返回", total),
            ("居家观察", watching), ("发热", fevers)]


def _in_order(column: Any, node_ids: NodeIds) -> ColumnElement[bool]:
    """For a read of every node (nothing filters the rows): `column > 0`, true of every row
    (ids start at 1), so that SQLite walks the index led by `column` and counts its distinct
    values in order, without a temporary B-tree (it would rather take an index serving
    another condition, then sort). Nothing for a subtree (its nodes' index is the way in)."""
    return column > 0 if is_everything(node_ids) else true()


REPORT_LABELS = (
    (ReportKind.DISINFECT, "消毒"), (ReportKind.ERRAND, "代办"),
    (ReportKind.VIOLATION, "违规"), (ReportKind.MEDIATION, "调解"), (ReportKind.RETURN, "返回"),
)


async def reports_section(session: AsyncSession, node_ids: NodeIds, day: Day) -> Items:
    """Landlord reports of the day, by kind."""
    counts = dict((await session.execute(
        select(LandlordReport.kind, func.count(LandlordReport.id))
        # The day's rows by their time, each checked against the subtree.
        .where(in_nodes(LandlordReport.node_id, node_ids, scan=True),
               LandlordReport.created_at >= day.start, LandlordReport.created_at < day.end)
        .group_by(LandlordReport.kind))).tuples().all())
    return [(label, int(counts.get(kind, 0))) for kind, label in REPORT_LABELS]


async def shops_section(session: AsyncSession, node_ids: NodeIds, day: Day) -> Items:
    """Shops: total, reopened (approved), checked in and open today (an approved shop not
    checked in as open counts as closed), reopenings waiting."""
    approved = and_(ShopReopening.status == ReopeningStatus.APPROVED,
                    ShopReopening.reviewed_at < day.end)
    pending = and_(ShopReopening.status.in_((ReopeningStatus.CAPTAIN, ReopeningStatus.REVIEW)),
                   ShopReopening.created_at < day.end)
    in_tree = in_nodes(ShopReopening.node_id, node_ids, scan=True)
    total, reopened, waiting = await counts(
        session,
        select(func.count(Shop.id)).where(in_nodes(Shop.node_id, node_ids, scan=True),
                                          Shop.created_at < day.end),
        select(func.count(distinct(ShopReopening.shop_id))).where(in_tree, approved),
        select(func.count(ShopReopening.id)).where(in_tree, pending))
    # Per row: what the captain counted for the row, or the shops named, whichever is more.
    per_shop = {node_id: (n, opened or 0) for node_id, n, opened in (await session.execute(
        select(ShopCheckin.node_id, func.count(ShopCheckin.id),
               func.sum(case((ShopCheckin.is_open.is_(True), 1), else_=0)))
        .where(in_nodes(ShopCheckin.node_id, node_ids, scan=True),
               ShopCheckin.day == date(day.year, day.month, day.day))
        .group_by(ShopCheckin.node_id))).tuples()}
    patrols = {node_id: (checked, opened) for node_id, checked, opened in (await session.execute(
        select(ShopPatrol.node_id, ShopPatrol.checked, ShopPatrol.opened)
        .where(in_nodes(ShopPatrol.node_id, node_ids, scan=True),
               ShopPatrol.day == date(day.year, day.month, day.day)))).tuples()}
    checked = opened = 0
    for node_id in set(per_shop) | set(patrols):
        shop_n, shop_open = per_shop.get(node_id, (0, 0))
        row_n, row_open = patrols.get(node_id, (0, 0))
        checked += max(shop_n, row_n)
        opened += max(int(shop_open), row_open)
    return [("商铺总数", total), ("已复工", reopened), ("待审核", waiting),
            ("今日打卡", checked), ("今日营业", opened)]


async def units_section(session: AsyncSession, node_ids: NodeIds, day: Day) -> Items:
    """Enterprises (reopened, reports, workers back, isolated, fevers) and key projects (work
    cards, on site, anomalies): bot.services.unit.unit_stats, in the day's own zone."""
    from bot.services import unit

    zone = day.start.tzinfo
    assert isinstance(zone, ZoneInfo)
    return await unit.unit_stats(session, node_ids, day, zone=zone)


# The sections of 统计, in order. Another unit's figures: one more Section here.
SECTIONS: list[Section] = [
    Section("people", "人员", people_section),
    Section("tenants", "租客", tenants_section),
    Section("reports", "今日房东上报", reports_section),
    Section("shops", "商铺", shops_section),
    Section("units", "企业和重点工程", units_section),
]


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one subtree and day."""

    node: Node
    day: Day
    sections: list[tuple[Section, Items]]


async def compute(session: AsyncSession, *, node: Node, day: date, zone: ZoneInfo,
                  now: datetime, node_ids: NodeIds | None = None,
                  sections: Sequence[Section] | None = None) -> Figures:
    """Every section's figures for `node`'s subtree on `day`."""
    ids = node_ids if node_ids is not None else await whole_tree(session, node)
    the_day = Day.of(day, zone=zone, now=now)
    out = [(s, await s.compute(session, ids, the_day)) for s in (sections or SECTIONS)]
    return Figures(node, the_day, out)


def line(section: Section, items: Items) -> str:
    """One section as one line: 商铺：商铺总数 10，已复工 1，…"""
    t = texts.Stats
    return t.LINE.format(title=section.title, items=t.ITEM_SEPARATOR.join(
        t.ITEM.format(label=label, value=value) for label, value in items))


def render(figures: Figures) -> str:
    """统计's reply: a header and one line per section."""
    header = texts.Stats.HEADER.format(
        date=texts.Shop.DATE.format(month=figures.day.month, day=figures.day.day),
        node=figures.node.name)
    return "\n".join([header, *(line(s, items) for s, items in figures.sections)])


# The roll-up's own body already gives these (returns, home watch, fevers, reports).
IN_ROLLUP_BODY = frozenset({"tenants", "reports"})


async def rollup_lines(session: AsyncSession, *, node_ids: NodeIds, day: Day) -> list[str]:
    """The sections the daily roll-up adds below its body, one line each."""
    return [line(s, await s.compute(session, node_ids, day))
            for s in SECTIONS if s.key not in IN_ROLLUP_BODY]


async def find_below(session: AsyncSession, *, root: Node, name: str) -> Node:
    """A node of this name in root's subtree (root itself included)."""
    from bot.domain import UserError

    found = list((await session.execute(
        select(Node).where(Node.id.in_(subtree_select(root.id, root.tier)), Node.name == name)
        .order_by(Node.id))).scalars())
    if not found:
        raise UserError(texts.Stats.UNKNOWN_NODE.format(name=name))
    if len(found) > 1:
        raise UserError(texts.Stats.AMBIGUOUS_NODE.format(name=name))
    return found[0]


# Each node with itself and its ancestors, a row each (a child is always one tier below its
# parent: at most four steps up).
_ANCESTRY = """
SELECT n.id AS node_id, n.id AS ancestor_id FROM node n
UNION ALL SELECT n.id, p1.id FROM node n JOIN node p1 ON p1.id = n.parent_id
UNION ALL SELECT n.id, p2.id FROM node n JOIN node p1 ON p1.id = n.parent_id
  JOIN node p2 ON p2.id = p1.parent_id
UNION ALL SELECT n.id, p3.id FROM node n JOIN node p1 ON p1.id = n.parent_id
  JOIN node p2 ON p2.id = p1.parent_id JOIN node p3 ON p3.id = p2.parent_id
UNION ALL SELECT n.id, p4.id FROM node n JOIN node p1 ON p1.id = n.parent_id
  JOIN node p2 ON p2.id = p1.parent_id JOIN node p3 ON p3.id = p2.parent_id
  JOIN node p4 ON p4.id = p3.parent_id"""

# The aggregate models.SubtreeFigure stands for, into the emptied table: the rebuild after a
# bulk load made with the triggers off (bench/bulk.py, the chain import on SQLite); the
# migration 0020_figures backfills with its own copy.
REBUILD_FIGURES = f"""
INSERT INTO subtree_figure (node_id, key, value)
WITH ancestry AS ({_ANCESTRY})
SELECT a.ancestor_id, 'landlords', count(DISTINCT m.person_id)
FROM membership m JOIN ancestry a ON a.node_id = m.node_id WHERE m.role = 'landlord'
GROUP BY a.ancestor_id
UNION ALL
SELECT a.ancestor_id, 'tenants', count(DISTINCT s.tenant_id)
FROM tenant_stay s JOIN ancestry a ON a.node_id = s.node_id WHERE s.ended_at IS NULL
GROUP BY a.ancestor_id
UNION ALL
SELECT a.ancestor_id, 'stays', count(*)
FROM tenant_stay s JOIN ancestry a ON a.node_id = s.node_id
GROUP BY a.ancestor_id
"""


async def rebuild_figures(session: AsyncSession) -> None:
    """Every kept figure (models.SubtreeFigure) again from the rows."""
    await session.execute(delete(SubtreeFigure))
    await session.execute(text(REBUILD_FIGURES))
