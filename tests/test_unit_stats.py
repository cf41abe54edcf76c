"""unit_stats (the enterprise and key-project lines of 统计) against counts computed
independently, in Python, from the rows: random enterprises, cards, reports and work cards in
two communities over several days, for several subtrees and days."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from bot import unit_texts
from bot.app import BotApp
from bot.services import chain, people
from bot.services.unit import unit_stats
from models import (
    Enterprise,
    EnterpriseReport,
    Node,
    NodeKind,
    WorkCard,
    WorkerCard,
)
from tests.conftest import SHANGHAI

DAYS = [date(2020, 2, d) for d in (19, 20, 21, 22)]


def local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), SHANGHAI)


async def _random_units(app: BotApp, rng: random.Random) -> dict[str, int]:
    """Two communities under one subdistrict, each with enterprises and projects."""
    now = local(DAYS[0], 8)
    ids: dict[str, int] = {}
    async with app.session() as s, s.begin():
        top = await chain.create_node(s, name="福田街道", kind=NodeKind.SUBDISTRICT, parent=None,
                                      now=now)
        ids["top"] = top.id
        for c in range(2):
            community = await chain.create_node(s, name=f"社区{c}", kind=NodeKind.COMMUNITY,
                                                parent=top, now=now)
            ids[f"community{c}"] = community.id
            team = await chain.create_node(s, name=f"小组{c}", kind=NodeKind.TEAM,
                                           parent=community, now=now)
            ids[f"team{c}"] = team.id
            for e in range(rng.randint(1, 4)):
                node = await chain.create_node(s, name=f"企业{c}-{e}", kind=NodeKind.ENTERPRISE,
                                               parent=community, now=now)
                if e == 0:
                    ids[f"enterprise{c}"] = node.id
                status = rng.choice(["closed", "filed", "reopened"])
                s.add(Enterprise(node_id=node.id, address="", headcount=rng.randint(0, 200),
                                 status=status, created_at=now, updated_at=now,
                                 reopened_on=rng.choice(DAYS) if status == "reopened"
                                 else None))
                for w in range(rng.randint(0, 6)):
                    made = local(rng.choice(DAYS), rng.randint(7, 22))
                    person = await people.create_person(s, name=f"工{c}{e}{w}", now=made,
                                                        mobile=f"139{c}{e}{w:02d}0000"[:11])
                    back = made.date() - timedelta(days=rng.randint(0, 3))
                    watch = rng.random() < 0.4
                    s.add(WorkerCard(
                        enterprise_node_id=node.id, person_id=person.id, origin="安徽",
                        returned_on=back, created_at=made, updated_at=made,
                        watch_until=local(back, 12) + timedelta(days=rng.randint(1, 4))
                        if watch else None,
                        health=rng.choice(["normal", "normal", "fever", "isolated"])))
                for day in DAYS:
                    if rng.random() < 0.5:
                        s.add(EnterpriseReport(node_id=node.id, day=day, on_duty=1, returned=0,
                                               isolated=0, anomalies=rng.randint(0, 2),
                                               created_at=now, updated_at=now))
            for p in range(rng.randint(0, 3)):
                node = await chain.create_node(s, name=f"工程{c}-{p}", kind=NodeKind.PROJECT,
                                               parent=community, now=now)
                for day in DAYS:
                    if rng.random() < 0.6:
                        s.add(WorkCard(node_id=node.id, day=day, on_site=rng.randint(0, 90),
                                       arrivals=rng.randint(0, 5), anomalies=rng.randint(0, 3),
                                       problems="", created_at=now, updated_at=now))
    return ids


async def _expected(app: BotApp, root: int, day: date) -> list[tuple[str, int | str]]:
    """The same figures, counted in Python from every row."""
    end = datetime.combine(day + timedelta(days=1), time(0, 0), SHANGHAI)
    async with app.session() as s:
        nodes = list((await s.execute(select(Node))).scalars())
        files = list((await s.execute(select(Enterprise))).scalars())
        cards = list((await s.execute(select(WorkerCard))).scalars())
        reports = list((await s.execute(select(EnterpriseReport))).scalars())
        work = list((await s.execute(select(WorkCard))).scalars())
    below = {root}
    grew = True
    while grew:
        more = {n.id for n in nodes if n.parent_id in below} - below
        below |= more
        grew = bool(more)
    ents = {n.id for n in nodes if n.id in below and n.kind == "enterprise"}
    projs = {n.id for n in nodes if n.id in below and n.kind == "project"}
    mine = [c for c in cards if c.enterprise_node_id in ents and c.created_at < end]
    todays = [w for w in work if w.node_id in projs and w.day == day]
    figures = {
        "enterprises": len(ents),
        "reopened": sum(1 for f in files if f.node_id in ents and f.status == "reopened"
                        and (f.reopened_on is None or f.reopened_on <= day)),
        "reported": sum(1 for r in reports if r.node_id in ents and r.day == day),
        "workers": len(mine),
        "back": sum(1 for c in mine if c.returned_on is not None and c.returned_on <= day),
        "isolated": sum(1 for c in mine if c.health == "isolated"
                        or (c.watch_until is not None and c.watch_until >= end)),
        "fevers": sum(1 for c in mine if c.health == "fever"),
        "projects": len(projs),
        "cards": len(todays),
        "on_site": sum(w.on_site for w in todays),
        "anomalies": sum(w.anomalies for w in todays),
    }
    return [(unit_texts.STATS[k], v) for k, v in figures.items()]


async def test_unit_stats_match_counts_from_the_rows(bot: BotApp):
    rng = random.Random(12)
    ids = await _random_units(bot, rng)
    for root in ("top", "community0", "community1", "team0", "enterprise1"):
        for day in DAYS:
            async with bot.session() as s:
                subtree = await chain.subtree_ids(s, root_id=ids[root])
                got = await unit_stats(s, subtree, day)
            assert got == await _expected(bot, ids[root], day), (root, day)
    # Not vacuous: the whole chain has something on every line on some day.
    async with bot.session() as s:
        every = await chain.subtree_ids(s, root_id=ids["top"])
        lines = [await unit_stats(s, every, day) for day in DAYS]
    for i, label in enumerate(unit_texts.STATS.values()):
        assert any(day_lines[i] == (label, day_lines[i][1]) and day_lines[i][1]
                   for day_lines in lines), label
