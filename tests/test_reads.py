"""Reads counted in the database (进度, 待核查) give what the row-by-row versions gave."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from bot.app import BotApp
from bot.services import chain as chains
from bot.services import notice as notices
from bot.services import points as pts
from models import (
    Contact,
    Group,
    Node,
    NodeKind,
    Notice,
    OutboxMessage,
    OutboxStatus,
    Person,
    PointsEvent,
    PointsStatus,
)
from tests.conftest import Chat, DemoChain


async def test_progress_counts_by_tier_and_names_the_first_silent_groups(
        bot: BotApp, chat: Chat, chain: DemoChain) -> None:
    now = bot.now()
    async with bot.session() as s, s.begin():
        four = (await s.execute(select(Node).where(Node.tier == 4).order_by(Node.id))
                ).scalars().first()
        assert four is not None
        for i in range(9):
            node = await chains.create_node(s, name=f"出租房{i}", kind=NodeKind.LANDLORD_TENANTS,
                                            parent=four, now=now)
            s.add(Group(node_id=node.id, transport="sim", room_id=f"extra{i}@chatroom",
                        title=f"加群{i}", created_at=now))
        await s.flush()
        commander_group = (await s.execute(select(Group).where(
            Group.room_id == chain.subdistrict_group))).scalar_one()
        groups = list((await s.execute(select(Group).where(Group.id != commander_group.id)
                                       .order_by(Group.id.desc()))).scalars())
        commander = (await s.execute(select(Contact.person_id).where(
            Contact.contact_id == chain.commander))).scalar_one()
        notice = Notice(sender_id=commander, origin_node_id=commander_group.node_id,
                        text="测试", created_at=now, target_count=len(groups))
        s.add(notice)
        await s.flush()
        # Rows written newest group first: titles follow the rows' order, not the groups'.
        for i, group in enumerate(groups):
            status = OutboxStatus.FAILED if i % 4 == 3 else OutboxStatus.SENT
            s.add(OutboxMessage(group_id=group.id, notice_id=notice.id, source="notice",
                                status=status, created_at=now,
                                acked_at=now + timedelta(minutes=1) if i % 3 == 0 else None))
        await s.flush()
        rows = (await s.execute(
            select(OutboxMessage.status, OutboxMessage.acked_at, Group.title, Node.tier)
            .join(Group, Group.id == OutboxMessage.group_id)
            .join(Node, Node.id == Group.node_id)
            .where(OutboxMessage.notice_id == notice.id).order_by(OutboxMessage.id))).all()
    # The model: the rows one by one.
    expected: dict[int, list[object]] = {}
    for status, acked, title, tier in rows:
        line = expected.setdefault(tier, [0, 0, 0, []])
        line[0] += 1  # type: ignore[operator]
        line[1] += status == OutboxStatus.SENT  # type: ignore[operator]
        line[2] += acked is not None  # type: ignore[operator]
        if acked is None:
            line[3].append(title)  # type: ignore[union-attr]
    async with bot.session() as s:
        notice_row = await s.get(Notice, notice.id)
        assert notice_row is not None
        got = await notices.progress(s, notice=notice_row)
    assert got.failed == sum(1 for r in rows if r[0] == OutboxStatus.FAILED) > 0
    assert [t.tier for t in got.tiers] == sorted(expected)
    for t in got.tiers:
        total, delivered, acked, silent = expected[t.tier]
        assert (t.total, t.delivered, t.acked, t.silent) == (total, delivered, acked,
                                                              len(silent))  # type: ignore[arg-type]
        assert t.missing == silent[:5]  # type: ignore[index]
    five = next(t for t in got.tiers if t.tier == 5)
    assert five.silent > 5
    await chat.say(chain.subdistrict_group, chain.commander, f"进度 {notice.id}")
    [reply] = chat.replies(chain.subdistrict_group)
    line = next(x for x in reply.splitlines() if x.startswith("5级"))
    assert line.endswith(notices.titles(five.missing, count=five.silent))
    assert f"等{five.silent}个群" in line


async def test_subtree_by_tier_is_exactly_the_recursive_subtree_of_every_node(
        bot: BotApp) -> None:
    """The fixed-depth subtree (one level per tier below the root) against the recursive
    query and a walk in Python, from every node of a random forest of two tier-1 roots:
    siblings, cousins and other roots never come in, leaves give themselves."""
    rng = random.Random(3)
    now = bot.now()
    kinds = [NodeKind.SUBDISTRICT, NodeKind.COMMUNITY, NodeKind.TEAM, NodeKind.TEAM_LANDLORDS,
             NodeKind.LANDLORD_TENANTS]
    async with bot.session() as s, s.begin():
        level: list[Node | None] = [None, None]
        for depth, kind in enumerate(kinds):
            below: list[Node | None] = []
            for parent in level:
                for i in range(rng.randint(0 if depth else 1, 3)):
                    below.append(await chains.create_node(
                        s, name=f"树{depth}-{i}-{parent.id if parent else 0}", kind=kind,
                        parent=parent, now=now))
            level = below
        nodes = list((await s.execute(select(Node))).scalars())
        assert {n.tier for n in nodes} == {1, 2, 3, 4, 5}
        checked = 0
        for node in nodes:
            fixed = set((await s.execute(chains.subtree_select(node.id, node.tier))).scalars())
            walked = set(await chains.subtree_ids(s, root_id=node.id))
            recursive = set((await s.execute(chains.subtree_select(node.id))).scalars())
            assert fixed == walked == recursive, node.id
            checked += len(fixed) > 1
        assert checked > 5


async def test_pending_checks_are_those_of_the_verifiers_subtree_only(
        bot: BotApp, chain: DemoChain) -> None:
    """待核查 of a community lists and counts the pending or appealed events of its own
    landlords' nodes, whatever the depth of the node, not a neighbouring community's."""
    now = bot.now()
    async with bot.session() as s, s.begin():
        community = (await s.execute(select(Node).where(Node.tier == 2).order_by(Node.id))
                     ).scalars().first()
        assert community is not None
        subdistrict = await s.get(Node, community.parent_id)
        neighbour = await chains.create_node(s, name="邻社区", kind=NodeKind.COMMUNITY,
                                             parent=subdistrict, now=now)
        person = Person(name="房东测", created_at=now)
        s.add(person)
        await s.flush()
        inside = set((await s.execute(chains.subtree_select(community.id))).scalars())
        team = await chains.create_node(s, name="邻小组", kind=NodeKind.TEAM, parent=neighbour,
                                        now=now)
        statuses = [PointsStatus.PENDING, PointsStatus.APPEALED, PointsStatus.APPROVED]
        expected, neighbours = [], 0
        for i, node_id in enumerate([*sorted(inside), neighbour.id, team.id, subdistrict.id]):
            status = statuses[i % 3]
            event = PointsEvent(landlord_id=person.id, node_id=node_id, rule="manual", delta=-1,
                                status=status, counts=False, source_kind="test",
                                source_key=str(i), evidence="", occurred_at=now,
                                created_at=now)
            s.add(event)
            await s.flush()
            if node_id in inside and status != PointsStatus.APPROVED:
                expected.append(event.id)
            neighbours += node_id in (neighbour.id, team.id) and status != PointsStatus.APPROVED
        lines, total = await pts.pending(s, verifier_node=community, limit=1000)
        assert [line.event.id for line in lines] == expected and total == len(expected) > 2
        # The neighbour's own events and its team's; never the community's.
        theirs, n = await pts.pending(s, verifier_node=neighbour)
        assert n == neighbours > 0 and not {line.event.id for line in theirs} & set(expected)
