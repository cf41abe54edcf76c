"""统计's kept figures (subtree_figure: landlords, tenants, stays per subtree, kept by
triggers) always equal a recount of the rows: through random inserts, deletes and updates of
memberships and stays (one row or many per statement, a person at several places, a stay
ended, moved, given another tenant), a node given another parent, the chain import, the
bulk rebuild and the migration's backfill; and 统计 reads them only on a day they are the
day's."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.app import BotApp
from bot.services import stats
from bot.services.chain import whole_tree
from models import (
    LandlordReport,
    Membership,
    Node,
    Person,
    SubtreeFigure,
    TemperatureReading,
    TenantStay,
)
from tests.conftest import (
    OLD_CHAIN,
    PG_URL,
    SHANGHAI,
    WORKER,
    Chat,
    DemoChain,
    _create_or_drop,
    _downgrade,
    _worker_url,
    database_at,
)

Figures = dict[tuple[int, str], int]


async def kept(s: AsyncSession) -> Figures:
    """What the triggers kept, each key's shards summed (keys brought back to 0 left out)."""
    f = SubtreeFigure
    rows = await s.execute(select(f.node_id, f.key, func.sum(f.value))
                           .group_by(f.node_id, f.key).having(func.sum(f.value) != 0))
    return {(node_id, key): value for node_id, key, value in rows}


async def recount(s: AsyncSession) -> Figures:
    """The rows one by one, each up its node's parents (no SQL shared with the triggers)."""
    parent = dict((await s.execute(select(Node.id, Node.parent_id))).tuples().all())

    def up(node_id: int | None) -> list[int]:
        out = []
        while node_id is not None:
            out.append(node_id)
            node_id = parent[node_id]
        return out

    landlords: dict[int, set[int]] = {}
    for person_id, node_id in await s.execute(select(Membership.person_id, Membership.node_id)
                                              .where(Membership.role == "landlord")):
        for a in up(node_id):
            landlords.setdefault(a, set()).add(person_id)
    tenants: dict[int, set[int]] = {}
    stays: dict[int, int] = {}
    for tenant_id, node_id, ended_at in await s.execute(
            select(TenantStay.tenant_id, TenantStay.node_id, TenantStay.ended_at)):
        for a in up(node_id):
            stays[a] = stays.get(a, 0) + 1
            if ended_at is None:
                tenants.setdefault(a, set()).add(tenant_id)
    out = {(a, "landlords"): len(p) for a, p in landlords.items()}
    out |= {(a, "tenants"): len(p) for a, p in tenants.items()}
    out |= {(a, "stays"): n for a, n in stays.items()}
    return out


async def assert_exact(bot: BotApp) -> Figures:
    async with bot.session() as s:
        figures = await kept(s)
        assert figures == await recount(s)
        return figures


async def free(s: AsyncSession, person_id: int, node_id: int, role: str) -> bool:
    """No such membership yet (one per person, node and role)."""
    return await s.scalar(select(Membership.id).where(
        Membership.person_id == person_id, Membership.node_id == node_id,
        Membership.role == role)) is None


async def test_figures_follow_every_kind_of_write_in_random_batches(
        bot: BotApp, chat: Chat, chain: DemoChain) -> None:
    rng = random.Random(7)
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 李四 13900001111 来自湖北武汉 体温36.5")
    start = await assert_exact(bot)
    async with bot.session() as s:
        leaves = list((await s.execute(select(Node.id).where(Node.tier >= 4))).scalars())
        root = (await s.execute(select(Node.id).where(Node.parent_id.is_(None)))).scalar_one()
    assert start[(root, "landlords")] >= 1 and start[(root, "tenants")] >= 1
    now = bot.now()
    async with bot.session() as s, s.begin():
        people = [Person(name=f"人{i}", created_at=now) for i in range(8)]
        s.add_all(people)
        await s.flush()
        persons = [p.id for p in people]
    for _ in range(80):
        async with bot.session() as s, s.begin():
            members = list((await s.execute(select(Membership.id))).scalars())
            stays = list((await s.execute(select(TenantStay.id))).scalars())
            kind = rng.choice(["roles", "role", "unrole", "rerole", "move_role", "stays",
                               "stay", "end", "unend", "move_stay", "retenant", "unstay"])
            some_members = Membership.id.in_(rng.sample(members, min(3, len(members))))
            some_stays = TenantStay.id.in_(rng.sample(stays, min(3, len(stays))))
            if kind == "roles":  # several rows in one statement, a person perhaps twice
                picks = {(rng.choice(persons), rng.choice(leaves),
                          rng.choice(["landlord", "landlord", "tenant"])) for _ in range(3)}
                rows = [{"person_id": p, "node_id": n, "role": r, "created_at": now}
                        for p, n, r in picks if await free(s, p, n, r)]
                if rows:
                    await s.execute(insert(Membership), rows)
            elif kind == "role":
                p, n = rng.choice(persons), rng.choice(leaves)
                if await free(s, p, n, "landlord"):
                    s.add(Membership(person_id=p, node_id=n, role="landlord", created_at=now))
            elif kind == "unrole":
                await s.execute(delete(Membership).where(some_members))
            elif kind in ("rerole", "move_role") and members:
                row = await s.get(Membership, rng.choice(members))
                assert row is not None
                role = rng.choice(["landlord", "member"]) if kind == "rerole" else row.role
                node_id = rng.choice(leaves) if kind == "move_role" else row.node_id
                if await free(s, row.person_id, node_id, role):
                    await s.execute(update(Membership).where(Membership.id == row.id)
                                    .values(role=role, node_id=node_id))
            elif kind == "stays":
                await s.execute(insert(TenantStay), [
                    {"tenant_id": rng.choice(persons), "node_id": rng.choice(leaves),
                     "arrived_at": now, "watch_until": now + timedelta(days=14),
                     "ended_at": rng.choice([None, None, now]), "created_at": now}
                    for _ in range(rng.randint(1, 4))])
            elif kind == "stay":
                s.add(TenantStay(tenant_id=rng.choice(persons), node_id=rng.choice(leaves),
                                 arrived_at=now, watch_until=now, created_at=now))
            elif kind == "end":
                await s.execute(update(TenantStay).where(some_stays).values(ended_at=now))
            elif kind == "unend":
                await s.execute(update(TenantStay).where(some_stays).values(ended_at=None))
            elif kind == "move_stay":
                await s.execute(update(TenantStay).where(some_stays).values(
                    node_id=rng.choice(leaves)))
            elif kind == "retenant":
                await s.execute(update(TenantStay).where(some_stays).values(
                    tenant_id=rng.choice(persons), fever=True))
            elif kind == "unstay":
                # Stays nothing else names (the test's own: readings and reports do).
                loose = TenantStay.id.not_in(select(TemperatureReading.stay_id)) \
                    & TenantStay.id.not_in(select(LandlordReport.stay_id)
                                           .where(LandlordReport.stay_id.is_not(None)))
                await s.execute(update(TenantStay).where(some_stays).values(fever=True))
                await s.execute(delete(TenantStay).where(some_stays, loose))
        await assert_exact(bot)
    # A node given another parent: everything below it counts under its new ancestors.
    async with bot.session() as s, s.begin():
        community = Node(tier=2, kind="community", name="新社区", parent_id=root, created_at=now)
        s.add(community)
        await s.flush()
        team = Node(tier=3, kind="team", name="新小组", parent_id=community.id, created_at=now)
        s.add(team)
        await s.flush()
        four = (await s.execute(select(Node).where(Node.tier == 4).order_by(Node.id)
                                .limit(1))).scalar_one()
        four.parent_id = team.id
    figures = await assert_exact(bot)
    assert figures[(community.id, "stays")] == figures[(four.id, "stays")] > 0


async def test_a_persons_rows_changed_together_in_one_statement(bot: BotApp,
                                                               chain: DemoChain) -> None:
    """Where row triggers would see each other's changes (PostgreSQL runs them after the
    whole statement): a tenant's two stays under one team, and a landlord's two groups,
    inserted, given another person, ended and deleted each in one statement."""
    now = bot.now()
    async with bot.session() as s, s.begin():
        leaves = list((await s.execute(select(Node.id).where(Node.tier == 5)
                                       .order_by(Node.id).limit(2))).scalars())
        a, b = Person(name="甲", created_at=now), Person(name="乙", created_at=now)
        s.add_all([a, b])
        await s.flush()
        ids = (a.id, b.id)
    assert len(leaves) == 2
    stays = TenantStay.tenant_id.in_(ids)
    roles = Membership.person_id.in_(ids)
    steps = [
        insert(TenantStay).values([{"tenant_id": ids[0], "node_id": n, "arrived_at": now,
                                    "watch_until": now, "created_at": now} for n in leaves]),
        insert(Membership).values([{"person_id": ids[0], "node_id": n, "role": "landlord",
                                    "created_at": now} for n in leaves]),
        update(TenantStay).where(stays).values(tenant_id=ids[1]),
        update(Membership).where(roles).values(person_id=ids[1]),
        update(TenantStay).where(stays).values(ended_at=now),
        update(TenantStay).where(stays).values(ended_at=None),
        update(Membership).where(roles).values(role="member"),
        update(Membership).where(roles).values(role="landlord"),
        delete(TenantStay).where(stays),
        delete(Membership).where(roles),
    ]
    for step in steps:
        async with bot.session() as s, s.begin():
            await s.execute(step)
        await assert_exact(bot)


async def test_the_rebuild_gives_what_the_triggers_kept(bot: BotApp, chat: Chat,
                                                        chain: DemoChain) -> None:
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李四 13900001111 来自湖北武汉")
    await chat.say(chain.ying_group, chain.ying_tenant, "租客返回 赵丽 13900003333 来自安徽阜阳")
    before = await assert_exact(bot)
    async with bot.session() as s, s.begin():
        await s.execute(delete(SubtreeFigure))
        await s.execute(text(stats.REBUILD_FIGURES))
    assert await assert_exact(bot) == before


async def test_migration_backfills_the_figures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = {"t": datetime(2020, 2, 1, 8)}
    engine = await database_at(tmp_path, "0019_statsidx", (
        OLD_CHAIN + ", (6, 5, 'landlord_tenants', 'f', 4, :t)",
        "INSERT INTO person (id, name, created_at) VALUES (1, 'x', :t), (2, 'y', :t)",
        "INSERT INTO membership (person_id, node_id, role, created_at) VALUES "
        "(1, 5, 'landlord', :t), (1, 6, 'landlord', :t), (2, 4, 'member', :t)",
        "INSERT INTO tenant_stay (tenant_id, node_id, arrived_at, watch_until, fever, "
        "ended_at, created_at) VALUES (2, 5, :t, :t, 0, NULL, :t), "
        "(2, 6, :t, :t, 0, NULL, :t), (1, 6, :t, :t, 0, :t, :t)"), t)
    await store.upgrade(engine)
    async with store.sessionmaker(engine)() as s, s.begin():
        figures = await kept(s)
        assert figures == await recount(s)
        assert {k: v for k, v in figures.items() if k[0] in (1, 6)} == {
            (1, "landlords"): 1, (1, "tenants"): 1, (1, "stays"): 3,
            (6, "landlords"): 1, (6, "tenants"): 1, (6, "stays"): 2}
        await s.execute(text("UPDATE tenant_stay SET ended_at = :t WHERE node_id = 5"), t)
    async with store.sessionmaker(engine)() as s:
        assert await kept(s) == await recount(s)
        assert (await kept(s))[(1, "tenants")] == 1  # still at node 6
    await engine.dispose()


async def test_stats_reads_the_kept_figures_only_on_a_day_they_are_the_days(
        bot: BotApp, chat: Chat, chain: DemoChain, clock) -> None:
    """The kept figures are every row as it stands; a day they are not (a row dated after
    its moment) is counted from the rows. Poisoned kept figures show which was read."""
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李四 13900001111 来自湖北武汉")
    async with bot.session() as s, s.begin():
        city = (await s.execute(select(Node).where(Node.parent_id.is_(None)))).scalar_one()
        await s.execute(update(SubtreeFigure).where(SubtreeFigure.node_id == city.id)
                        .values(value=SubtreeFigure.value + 1000))

    async def figures(now: datetime) -> dict[str, int]:
        async with bot.session() as s:
            root = await s.get(Node, city.id)
            assert root is not None
            computed = await stats.compute(s, node=root, day=now.astimezone(SHANGHAI).date(),
                                           zone=SHANGHAI, now=now,
                                           node_ids=await whole_tree(s, root))
            return dict(item for _, items in computed.sections for item in items)

    now = bot.now()
    today = await figures(now)
    assert today["房东"] >= 1000 and today["登记租客"] >= 1000 and today["累计返回"] >= 1000
    yesterday = await figures(now - timedelta(days=1))  # the return is after its end
    assert yesterday["累计返回"] < 1000 and yesterday["登记租客"] < 1000
    # A stay ended later than the moment asked about (a clock set back): counted.
    async with bot.session() as s, s.begin():
        await s.execute(update(TenantStay).values(ended_at=now + timedelta(hours=1)))
    assert (await figures(now))["登记租客"] < 1000
    assert (await figures(now + timedelta(hours=2)))["登记租客"] >= 1000


async def test_a_persons_rows_changed_by_two_transactions_at_once(bot: BotApp,
                                                                  chain: DemoChain) -> None:
    """Two transactions at once (the pipelines of two processes): each ends one of a tenant's
    two stays under one team, and each landlord role of one person at two groups. Each
    trigger's check for the person's other counting rows saw the other's still counting
    (not committed yet), so neither took the person out of the team's figures; now the
    second waits for the first's lock on the person (PostgreSQL; SQLite has one writer)."""
    now = bot.now()
    async with bot.session() as s, s.begin():
        leaves = list((await s.execute(select(Node.id).where(Node.tier == 5)
                                       .order_by(Node.id).limit(2))).scalars())
        person = Person(name="甲", created_at=now)
        s.add(person)
        await s.flush()
        await s.execute(insert(TenantStay).values([
            {"tenant_id": person.id, "node_id": n, "arrived_at": now, "watch_until": now,
             "created_at": now} for n in leaves]))
        await s.execute(insert(Membership).values([
            {"person_id": person.id, "node_id": n, "role": "landlord", "created_at": now}
            for n in leaves]))
    await assert_exact(bot)
    for table, ends in ((TenantStay, {"ended_at": now}), (Membership, {"role": "member"})):
        column = TenantStay.node_id if table is TenantStay else Membership.node_id
        first = bot.session()
        async with first as s1:
            await s1.begin()
            await s1.execute(update(table).where(column == leaves[0]).values(**ends))

            async def second(statement: Any) -> None:
                async with bot.session() as s2, s2.begin():
                    await s2.execute(statement)

            other = asyncio.create_task(second(
                update(table).where(column == leaves[1]).values(**ends)))
            await asyncio.sleep(0.3)
            assert not other.done()  # waits for the first (the person's lock; SQLite's)
            await s1.commit()
        await asyncio.wait_for(other, 30)
        await assert_exact(bot)


async def _lock_table_size(s: AsyncSession) -> int:
    """How many locks the server's lock table holds in all (PostgreSQL; 0 on SQLite)."""
    if s.bind.dialect.name != "postgresql":
        return 0
    per, connections, prepared = [int((await s.execute(text(f"SHOW {name}"))).scalar_one())
                                  for name in ("max_locks_per_transaction", "max_connections",
                                               "max_prepared_transactions")]
    return per * (connections + prepared)


async def _people(s: AsyncSession, n: int, now: datetime) -> list[int]:
    """n new people (the ORM's executemany: pages of rows)."""
    return list((await s.execute(insert(Person).returning(Person.id), [
        {"name": f"房东{k}", "created_at": now} for k in range(n)])).scalars())


async def test_one_transaction_changes_more_persons_than_the_lock_table_holds(
        bot: BotApp, chain: DemoChain) -> None:
    """A chain import's size: twice as many landlords as the server's lock table holds, their
    roles written in pages (the ORM's executemany) in one transaction. With a lock per person
    (0021_figure_locks) PostgreSQL failed with "out of shared memory"; past BULK persons the
    transaction takes the one bulk lock instead (0023_bulk_lock)."""
    now = bot.now()
    async with bot.session() as s, s.begin():
        n = max(2 * await _lock_table_size(s), 3000)
        leaf = (await s.execute(select(Node.id).where(Node.tier == 5).limit(1))).scalar_one()
        people = await _people(s, n, now)
        await s.execute(insert(Membership), [
            {"person_id": p, "node_id": leaf, "role": "landlord", "created_at": now}
            for p in people])
    figures = await assert_exact(bot)
    async with bot.session() as s:
        root = (await s.execute(select(Node.id).where(Node.parent_id.is_(None)))).scalar_one()
    assert figures[(root, "landlords")] >= n


async def test_a_bulk_transaction_holds_back_another_change_of_its_persons(
        bot: BotApp, chain: DemoChain) -> None:
    """One transaction registers more than BULK tenants' stays (the bulk lock, no lock per
    person); another, meanwhile, registers one of them at another tier-5 node (their
    ancestors shared). It waits until the first commits (stays have no other trigger or key
    to wait on), and its check then sees the first's row: the tenant counts once at each
    shared ancestor."""
    now = bot.now()
    async with bot.session() as s, s.begin():
        leaves = list((await s.execute(select(Node.id).where(Node.tier == 5)
                                       .order_by(Node.id).limit(2))).scalars())
        people = await _people(s, 1001, now)

    def stays(node: int, tenants: list[int]) -> Any:
        return insert(TenantStay).values([
            {"tenant_id": p, "node_id": node, "arrived_at": now, "watch_until": now,
             "created_at": now} for p in tenants])

    first = bot.session()
    async with first as s1:
        await s1.begin()
        await s1.execute(stays(leaves[0], people))

        async def second() -> None:
            async with bot.session() as s2, s2.begin():
                await s2.execute(stays(leaves[1], people[:1]))

        other = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not other.done()  # waits for the bulk lock (SQLite: for the writer's)
        await s1.commit()
    await asyncio.wait_for(other, 30)
    await assert_exact(bot)


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (TIERBOT_TEST_DATABASE_URL)")
async def test_the_bulk_lock_migration_goes_back_to_a_lock_per_person() -> None:
    """0022 → 0023 → 0022: each of the six figure functions gets the two-level lock and
    loses it again, 0021's statement kept throughout (both replacements are checked); the
    named locks' functions come and go."""
    base = _worker_url(PG_URL, WORKER) if WORKER else PG_URL
    url = _worker_url(base, "bulklock")
    name = make_url(url).database
    assert name is not None
    await asyncio.to_thread(_create_or_drop, PG_URL, name, create=True)
    engine = store.create_engine(url)
    functions = text("SELECT proname, prosrc FROM pg_proc WHERE proname ~ "
                     "'^subtree_figure_(membership|tenant_stay)_(insert|delete|update)$'")

    async def sources() -> dict[str, str]:
        async with engine.connect() as conn:
            return {r.proname: r.prosrc for r in await conn.execute(functions)}

    try:
        await store.upgrade(engine, "0022_counter_shards")
        before = await sources()
        await store.upgrade(engine)
        after = await sources()
        assert len(after) == 6
        async with engine.connect() as conn:
            assert set((await conn.execute(text(
                "SELECT proname FROM pg_proc WHERE proname LIKE 'tierbot%lock'"))).scalars()) \
                == {"tierbot_lock", "tierbot_bulk_lock"}
        assert all("tierbot_bulk_lock()" in s and "figure-person:" in s
                   for s in after.values())
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, "0022_counter_shards")
        assert await sources() == before
        assert not any("bulk" in s for s in before.values())
        async with engine.connect() as conn:
            assert (await conn.execute(text(
                "SELECT count(*) FROM pg_proc WHERE proname LIKE 'tierbot%lock'"))).scalar() == 0
    finally:
        await engine.dispose()
        await asyncio.to_thread(_create_or_drop, PG_URL, name, create=False)
