"""Reads counted in the database (进度, 待核查) give what the row-by-row versions gave."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import BotApp
from bot.services import chain as chains
from bot.services import notice as notices
from models import Contact, Group, Node, NodeKind, Notice, OutboxMessage, OutboxStatus
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
