"""PointsTotal (kept by triggers) against the ledger, and the counted rank of 积分 and the
weekly close against an independent model of the ranking order, on both databases.

The model: a landlord's score is the start score plus the counted deltas of the period up to
the end; ties go to this week's change (high first), the period's deductions (fewer first),
registration (earlier first), person id. Data is random (seeded) with many ties, events
dated ahead and before the campaign, landlords in two places and late registrations.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.config import PointsSettings
from bot.services import chain as chains
from bot.services import points as pts
from models import (
    Membership,
    Node,
    NodeKind,
    Person,
    PointsEvent,
    PointsScopeCount,
    PointsStanding,
    PointsStatus,
    PointsTotal,
    Role,
)
from tests.conftest import OLD_CHAIN, database_at

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2020, 3, 4, 15, 30, tzinfo=ZONE)  # a Wednesday
LONG_AGO = datetime(2020, 1, 1, tzinfo=ZONE)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = store.create_engine(db_url)
    yield store.sessionmaker(engine)
    await engine.dispose()


@dataclass
class World:
    landlords: list[int]
    nodes: dict[int, list[int]]  # tier-5 nodes of each landlord
    scope_of_node: dict[int, tuple[int, int]]  # tier-5 node -> (tier-1, tier-2 ancestor)


async def _build(s: AsyncSession, rng: random.Random, *, landlords: int) -> World:
    """Two subdistricts, four communities, eight teams; landlords with one node (some two),
    a few registered after NOW."""
    scope_of_node: dict[int, tuple[int, int]] = {}
    fours = []
    for d in range(2):
        n1 = await chains.create_node(s, name=f"街道{d}", kind=NodeKind.SUBDISTRICT, parent=None,
                                      now=LONG_AGO)
        for c in range(2):
            n2 = await chains.create_node(s, name=f"社区{d}{c}", kind=NodeKind.COMMUNITY,
                                          parent=n1, now=LONG_AGO)
            for t in range(2):
                n3 = await chains.create_node(s, name=f"小组{d}{c}{t}", kind=NodeKind.TEAM,
                                              parent=n2, now=LONG_AGO)
                n4 = await chains.create_node(s, name=f"房东群{d}{c}{t}",
                                              kind=NodeKind.TEAM_LANDLORDS, parent=n3,
                                              now=LONG_AGO)
                fours.append((n4, n1.id, n2.id))
    world = World([], {}, scope_of_node)
    for i in range(landlords):
        person = Person(name=f"房东{i}", created_at=LONG_AGO)
        s.add(person)
        await s.flush()
        world.landlords.append(person.id)
        for _ in range(2 if rng.random() < 0.1 else 1):
            n4, s1, s2 = rng.choice(fours)
            n5 = await chains.create_node(s, name=f"出租房{i}-{rng.random():.6f}",
                                          kind=NodeKind.LANDLORD_TENANTS, parent=n4,
                                          now=LONG_AGO)
            scope_of_node[n5.id] = (s1, s2)
            # Registrations on few distinct days (ties), a few after NOW.
            when = LONG_AGO + timedelta(days=rng.choice([0, 0, 3, 9])) \
                if rng.random() > 0.05 else NOW + timedelta(days=1)
            s.add(Membership(person_id=person.id, node_id=n5.id, role=Role.LANDLORD,
                             created_at=when))
            world.nodes.setdefault(person.id, []).append(n5.id)
    await s.flush()
    return world


async def _events(s: AsyncSession, rng: random.Random, world: World, *, n: int) -> None:
    """Events from before the campaign to after NOW, mostly counted, small deltas (ties)."""
    first = NOW - timedelta(days=60)
    for i in range(n):
        landlord = rng.choice(world.landlords)
        when = first + timedelta(minutes=rng.randrange(0, 63 * 24 * 60))  # some after NOW
        counted = rng.random() < 0.8
        decided = when + timedelta(hours=rng.choice([1, 30, 200])) if counted else None
        s.add(PointsEvent(
            landlord_id=landlord, node_id=world.nodes[landlord][0], rule="manual",
            delta=rng.choice([1, 1, 2, -1, -2, -3]),
            status=PointsStatus.APPROVED if counted else PointsStatus.PENDING, counts=counted,
            source_kind="test", source_key=str(i), evidence="", decided_at=decided,
            occurred_at=when, created_at=when))
    await s.flush()


async def _ledger_totals(s: AsyncSession) -> dict[int, tuple[int, int]]:
    rows = (await s.execute(select(PointsEvent.landlord_id, PointsEvent.delta).where(
        PointsEvent.counts.is_(True)))).all()
    out: dict[int, tuple[int, int]] = {}
    for landlord, delta in rows:
        total, lost = out.get(landlord, (0, 0))
        out[landlord] = (total + delta, lost + max(-delta, 0))
    return out


async def _stored_totals(s: AsyncSession) -> dict[int, tuple[int, int]]:
    rows = (await s.execute(select(PointsTotal.landlord_id, PointsTotal.total,
                                   PointsTotal.deducted))).all()
    return {r[0]: (r[1], r[2]) for r in rows if (r[1], r[2]) != (0, 0)}


async def _assert_scope_counts(s: AsyncSession) -> int:
    """PointsScopeCount (kept by triggers on points_total) says exactly how many landlords
    each (tier, scope, total) has, counted here from PointsTotal; returns the landlords."""
    rows = (await s.execute(select(PointsTotal.scope1_id, PointsTotal.scope2_id,
                                   PointsTotal.total))).all()
    expected: dict[tuple[int, int, int], int] = {}
    for scope1, scope2, total in rows:
        for tier, scope in ((1, scope1), (2, scope2)):
            if scope is not None:
                expected[(tier, scope, total)] = expected.get((tier, scope, total), 0) + 1
    c = PointsScopeCount
    stored = {(tier, scope, total): n for tier, scope, total, n in (await s.execute(
        select(c.tier, c.scope_id, c.total, func.sum(c.landlords))
        .group_by(c.tier, c.scope_id, c.total))).tuples()}
    assert all(n >= 0 for n in stored.values()), stored
    assert {k: n for k, n in stored.items() if n} == expected
    return sum(n for (tier, _, _), n in expected.items() if tier == 1)


def _model_ranks(world: World, events: list[PointsEvent], memberships: list[Membership],
                 settings: PointsSettings, *, week_start: datetime, end: datetime,
                 since: datetime | None) -> dict[int, tuple[int, int, int, int]]:
    """landlord -> (scope, score, rank, n), computed in Python from the rows."""
    registered: dict[int, tuple[datetime, int]] = {}
    for m in memberships:
        if m.role != Role.LANDLORD or m.created_at >= end:
            continue
        at, node = registered.get(m.person_id, (m.created_at, m.node_id))
        registered[m.person_id] = (min(at, m.created_at), min(node, m.node_id))
    figures: dict[int, list[int]] = {}
    for e in events:
        if not e.counts or e.occurred_at >= end:
            continue
        f = figures.setdefault(e.landlord_id, [0, 0, 0])
        if since is None or e.occurred_at >= since:
            f[0] += e.delta
            f[2] += max(-e.delta, 0)
        if e.occurred_at >= week_start:
            f[1] += e.delta
    per_scope: dict[int, list[tuple[tuple[object, ...], int, int]]] = {}
    for landlord, (at, node) in registered.items():
        total, change, lost = figures.get(landlord, [0, 0, 0])
        scope = world.scope_of_node[node][0 if settings.ranking_tier == 1 else 1]
        score = settings.start_score + total
        per_scope.setdefault(scope, []).append(
            ((-score, -change, lost, at, landlord), landlord, score))
    out = {}
    for scope, rows in per_scope.items():
        rows.sort()
        for rank, (_, landlord, score) in enumerate(rows, 1):
            out[landlord] = (scope, score, rank, len(rows))
    return out


async def _check_live_ranks(s: AsyncSession, world: World, settings: PointsSettings) -> int:
    events = list((await s.execute(select(PointsEvent))).scalars())
    memberships = list((await s.execute(select(Membership))).scalars())
    week_start, _ = pts.week_bounds(pts.current_week(NOW, ZONE), ZONE)
    model = _model_ranks(world, events, memberships, settings, week_start=week_start,
                         end=NOW + timedelta(seconds=1),
                         since=pts.period_start(settings, week_start=week_start, zone=ZONE))
    checked = 0
    for landlord in world.landlords:
        got = await pts.standing(s, landlord_id=landlord, now=NOW, zone=ZONE,
                                 settings=settings)
        expected = model.get(landlord)
        if expected is None or got.scope is None or got.scope.id != expected[0]:
            assert got.rank is None, landlord
            continue
        assert (got.rank, got.total) == (expected[2], expected[3]), landlord
        checked += 1
    return checked


@pytest.mark.parametrize("seed", [1, 2])
async def test_totals_follow_the_ledger_through_every_kind_of_write(
        sessions: async_sessionmaker[AsyncSession], seed: int) -> None:
    rng = random.Random(seed)
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=30)
        await _events(s, rng, world, n=300)
    async with sessions() as s:
        assert await _stored_totals(s) == await _ledger_totals(s)
    async with sessions() as s, s.begin():
        # Decisions one by one (ORM), in bulk (Core), a change of landlord, deletions.
        pending = list((await s.execute(select(PointsEvent).where(
            PointsEvent.counts.is_(False)).order_by(PointsEvent.id))).scalars())
        for event in pending[::3]:
            event.counts, event.status = True, PointsStatus.APPROVED
        await s.flush()
        await s.execute(update(PointsEvent).where(PointsEvent.id % 7 == 0)
                        .values(counts=False, status=PointsStatus.REJECTED))
        await s.execute(update(PointsEvent).where(PointsEvent.id % 11 == 0)
                        .values(delta=PointsEvent.delta * 2))
        await s.execute(update(PointsEvent).where(PointsEvent.id % 13 == 0)
                        .values(landlord_id=world.landlords[0]))
        await s.execute(delete(PointsEvent).where(PointsEvent.id % 17 == 0))
        assert await _stored_totals(s) == await _ledger_totals(s)
        assert await _assert_scope_counts(s) > 20
    async with sessions() as s:
        # Committed, and the same seen from a new transaction.
        assert await _stored_totals(s) == await _ledger_totals(s)
        assert await _assert_scope_counts(s) > 20
        assert await _check_live_ranks(s, world, PointsSettings()) > 20


async def test_a_rolled_back_write_leaves_the_totals_as_they_were(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    rng = random.Random(5)
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=5)
        await _events(s, rng, world, n=40)
    async with sessions() as s:
        before = await _stored_totals(s)
    async with sessions() as s:
        async with s.begin():
            await s.execute(update(PointsEvent).values(counts=True))
            assert await _stored_totals(s) == await _ledger_totals(s)
            await s.rollback()
    async with sessions() as s:
        assert await _stored_totals(s) == before == await _ledger_totals(s)
        assert await _assert_scope_counts(s) == 5


async def test_placement_follows_memberships(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Where a landlord is ranked moves with their memberships, added or removed."""
    rng = random.Random(7)
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=4)
        await _events(s, rng, world, n=20)
        landlord = world.landlords[0]
        first = min(world.nodes[landlord])
        row = await s.get(PointsTotal, landlord)
        assert row is not None and row.node_id == first
        assert (row.scope1_id, row.scope2_id) == world.scope_of_node[first]
        await s.execute(delete(Membership).where(Membership.person_id == landlord))
        await s.refresh(row)
        assert (row.node_id, row.scope1_id, row.scope2_id, row.registered_at) == (
            None, None, None, None)
        other = world.nodes[world.landlords[1]][0]
        s.add(Membership(person_id=landlord, node_id=other, role=Role.LANDLORD,
                         created_at=NOW))
        # A role that is not landlord does not place anybody.
        s.add(Membership(person_id=landlord, node_id=first, role=Role.TENANT, created_at=NOW))
        await s.flush()
        await s.refresh(row)
        assert (row.node_id, row.registered_at) == (other, NOW)
        assert (row.scope1_id, row.scope2_id) == world.scope_of_node[other]
        # A person with events and no landlord role is in the table, placed nowhere.
        stranger = Person(name="路人", created_at=NOW)
        s.add(stranger)
        await s.flush()
        s.add(PointsEvent(landlord_id=stranger.id, node_id=other, rule="manual", delta=2,
                          status=PointsStatus.APPROVED, counts=True, source_kind="test",
                          source_key="stranger", evidence="", occurred_at=NOW, created_at=NOW))
        await s.flush()
        placed = await s.get(PointsTotal, stranger.id)
        assert placed is not None and (placed.total, placed.node_id) == (2, None)
        # Moved, unplaced, placed again, a stranger placed nowhere: the counts follow.
        assert await _assert_scope_counts(s) == 4
        await s.execute(delete(Membership).where(Membership.person_id == world.landlords[1]))
        assert await _assert_scope_counts(s) == 3
        await s.execute(delete(PointsTotal).where(PointsTotal.landlord_id == landlord))
        assert await _assert_scope_counts(s) == 2


async def test_placement_of_a_landlord_made_twice_at_once(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """Two transactions at once (two processes' pipelines) each make a landlord of the same
    person somewhere: the place is the first node of all three (bench/LANES.md F6 feared the
    second's answer from before the first committed). On PostgreSQL the second's trigger
    waits in its points_total INSERT … ON CONFLICT (the unique check waits for the first's
    update of that row), so it places the person after the first has committed."""
    async with sessions() as s, s.begin():
        world = await _build(s, random.Random(11), landlords=4)
        nodes = sorted({n for ns in world.nodes.values() for n in ns})
        person = Person(name="甲", created_at=NOW)
        s.add(person)
        await s.flush()
        s.add(Membership(person_id=person.id, node_id=nodes[-1], role=Role.LANDLORD,
                         created_at=NOW))
    first = sessions()
    async with first as s1:
        await s1.begin()
        s1.add(Membership(person_id=person.id, node_id=nodes[0], role=Role.LANDLORD,
                          created_at=NOW))
        await s1.flush()

        async def second() -> None:
            async with sessions() as s2, s2.begin():
                s2.add(Membership(person_id=person.id, node_id=nodes[1], role=Role.LANDLORD,
                                  created_at=NOW))

        other = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not other.done()  # waits for the first
        await s1.commit()
    await asyncio.wait_for(other, 30)
    async with sessions() as s:
        row = await s.get(PointsTotal, person.id)
        assert row is not None and row.node_id == nodes[0]
        assert (row.scope1_id, row.scope2_id) == world.scope_of_node[nodes[0]]
        assert await _assert_scope_counts(s) == 5


@pytest.mark.parametrize(("tier", "campaign", "seed"), [
    (1, False, 3), (2, False, 4), (1, True, 5), (2, True, 6)])
async def test_counted_rank_equals_the_model(
        sessions: async_sessionmaker[AsyncSession], tier: int, campaign: bool,
        seed: int) -> None:
    rng = random.Random(seed)
    settings = PointsSettings(ranking_tier=tier,
                              campaign_start=date(2020, 2, 12) if campaign else None)
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=60)
        await _events(s, rng, world, n=rng.choice([0, 40, 400]))
    async with sessions() as s:
        assert await _check_live_ranks(s, world, settings) > 40


async def test_weekly_period_rank_equals_the_model(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    rng = random.Random(8)
    settings = PointsSettings(period="weekly")
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=40)
        await _events(s, rng, world, n=300)
    async with sessions() as s:
        assert await _check_live_ranks(s, world, settings) > 30


@pytest.mark.parametrize(("tier", "campaign"), [(1, False), (2, True)])
async def test_weekly_close_equals_the_model(
        sessions: async_sessionmaker[AsyncSession], tier: int, campaign: bool) -> None:
    """Closing last week (events after its end exist) stores the model's ranks and scores."""
    rng = random.Random(9)
    settings = PointsSettings(ranking_tier=tier,
                              campaign_start=date(2020, 2, 12) if campaign else None)
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=50)
        await _events(s, rng, world, n=500)
    async with sessions() as s, s.begin():
        weeks = await pts.close_week(s, now=NOW, zone=ZONE, settings=settings)
        assert weeks
    async with sessions() as s:
        start, end = pts.week_bounds(pts.last_week(NOW, ZONE), ZONE)
        events = list((await s.execute(select(PointsEvent))).scalars())
        memberships = list((await s.execute(select(Membership))).scalars())
        model = _model_ranks(world, events, memberships, settings, week_start=start, end=end,
                             since=pts.period_start(settings, week_start=start, zone=ZONE))
        got = {r.landlord_id: (r.score, r.rank) for r in
               (await s.execute(select(PointsStanding))).scalars()}
        assert got == {k: (v[1], v[2]) for k, v in model.items()}
        # The events after the week's end are what the close corrected for.
        assert (await s.execute(select(func.count()).select_from(PointsEvent).where(
            PointsEvent.counts.is_(True), PointsEvent.occurred_at >= end))).scalar_one() > 0


async def test_migration_backfills_rows_written_before_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An existing database upgraded past 0007 and 0012 gets its totals, placements and
    counts per (scope, total) from the rows."""
    now = datetime.combine(date(2020, 2, 1), time(), ZONE)
    engine = await database_at(tmp_path, "0003", (
        OLD_CHAIN,
        "INSERT INTO person (id, name, created_at) VALUES (1, 'x', :t)",
        "INSERT INTO membership (person_id, node_id, role, created_at) "
        "VALUES (1, 5, 'landlord', :t)",
        "INSERT INTO points_event (landlord_id, node_id, rule, delta, status, counts, "
        "source_kind, source_key, evidence, occurred_at, created_at) VALUES "
        "(1, 5, 'm', 3, 'approved', 1, 'k', '1', '', :t, :t), "
        "(1, 5, 'm', -2, 'approved', 1, 'k', '2', '', :t, :t), "
        "(1, 5, 'm', -5, 'pending', 0, 'k', '3', '', :t, :t)"),
        {"t": now.replace(tzinfo=None)})
    await store.upgrade(engine)
    async with store.sessionmaker(engine)() as s:
        row = await s.get(PointsTotal, 1)
        assert row is not None
        assert (row.total, row.deducted, row.node_id, row.scope2_id, row.scope1_id) == (
            1, 2, 5, 2, 1)
        # 0012_speed2 counted the landlords per (scope, total) from those rows.
        assert await _assert_scope_counts(s) == 1
        assert {(r.tier, r.scope_id, r.total, r.landlords) for r in (await s.execute(
            select(PointsScopeCount))).scalars()} == {(1, 1, 1, 1), (2, 2, 1, 1)}
    await engine.dispose()


async def test_bench_rebuild_matches_the_triggers(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """rebuild_totals (for bulk loads with triggers off) gives what the triggers kept."""
    rng = random.Random(10)
    async with sessions() as s, s.begin():
        world = await _build(s, rng, landlords=20)
        await _events(s, rng, world, n=200)
    async with sessions() as s:
        kept = sorted(tuple(r) for r in (await s.execute(select(
            PointsTotal.landlord_id, PointsTotal.total, PointsTotal.deducted,
            PointsTotal.node_id, PointsTotal.registered_at, PointsTotal.scope1_id,
            PointsTotal.scope2_id))).all())
    async with sessions() as s, s.begin():
        await pts.rebuild_totals(s)
    async with sessions() as s:
        rebuilt = sorted(tuple(r) for r in (await s.execute(select(
            PointsTotal.landlord_id, PointsTotal.total, PointsTotal.deducted,
            PointsTotal.node_id, PointsTotal.registered_at, PointsTotal.scope1_id,
            PointsTotal.scope2_id))).all())
    assert rebuilt == kept and len(kept) >= 20
    async with sessions() as s:
        assert await _assert_scope_counts(s) >= 20
    _ = Node
