"""The one writer of outbox rows: every feature's rows go out on the account of the group
they are for, and no module but bot/services/outbox.py writes outbox rows."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import String, cast, literal, select, update

from bot.app import BotApp
from bot.services import notice as notices
from bot.services import outbox, points
from bot.transports.base import RoomEvent
from models import Group, OutboxMessage
from schedules.jobs import post_daily_rollup
from tests.conftest import Chat, DemoChain

ROOT = Path(__file__).resolve().parent.parent
# Ways of writing an outbox row by hand: the ORM constructor, a Core insert of the table,
# SQL text.
HAND_WRITTEN = re.compile(r"OutboxMessage\(|insert\w*\(\s*OutboxMessage|OutboxMessage\.__table__"
                          r"|insert\s+into\s+\"?outbox_message", re.IGNORECASE)


def test_only_the_writer_writes_outbox_rows():
    offenders = []
    for package in ("bot", "handlers", "schedules"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "bot" / "services" / "outbox.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if HAND_WRITTEN.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


async def test_replies_are_written_as_the_orm_would_write_them(bot, chain: DemoChain):
    # queue_replies writes its rows with one SQL statement of its own: each column must hold
    # what the mapped class would have stored (a reply masked, mentions as SQLAlchemy's JSON
    # type serialises them, non-ASCII included; a room bound to no group kept by its id).
    now = bot.now()
    drafts = [outbox.ReplyDraft("sim", chain.tenant_group, "acc-x",
                                "已登记 王明 13800138000", ("sim-张三", "wxid_b")),
              outbox.ReplyDraft("sim", "nobody@chatroom", "acc-y", "好的")]
    async with bot.session() as s, s.begin():
        assert await outbox.queue_replies(s, replies=drafts, now=now) == 2
        group = (await s.execute(select(Group).where(
            Group.room_id == chain.tenant_group))).scalar_one()
        s.add(OutboxMessage(group_id=group.id, room_id=chain.tenant_group, transport="sim",
                            text="已登记 王明 138****8000", account=group.account,
                            mentions=["sim-张三", "wxid_b"], source=outbox.REPLY,
                            created_at=now))
    columns = [c for c in OutboxMessage.__table__.c if c.key != "id"]
    async with bot.session() as s:
        rows = (await s.execute(select(*columns).order_by(OutboxMessage.id))).all()
        raw = (await s.execute(select(cast(OutboxMessage.mentions, String))
                               .order_by(OutboxMessage.id))).scalars().all()
    hot, other, orm = rows
    assert hot == orm
    assert raw[0] == raw[2]  # the same text in the column, not just the same list
    assert (other.group_id, other.room_id, other.account, other.text, other.mentions) == \
        (None, "nobody@chatroom", "acc-y", "好的", [])


async def _own_accounts(bot: BotApp) -> dict[int, str]:
    """Give every group an account of its own ("acct-<id>"); returns group id -> account."""
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).values(account=literal("acct-") + cast(Group.id, String)))
        return dict((await s.execute(select(Group.id, Group.account))).tuples().all())


async def _rows_on_wrong_account(bot: BotApp) -> list[tuple[str, str, str]]:
    async with bot.session() as s:
        rows = (await s.execute(select(OutboxMessage.source, OutboxMessage.account,
                                       Group.account)
                                .join(Group, Group.id == OutboxMessage.group_id))).tuples()
        return [r for r in rows if r[1] != r[2]]


async def test_every_feature_goes_out_on_the_groups_account(bot, chat: Chat, chain: DemoChain,
                                                           clock, transport):
    await _own_accounts(bot)
    # A fever alert, a ticket and its answer, a notice, a health note, a roll-up.
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 38.2")
    await chat.say(chain.tenant_group, chain.tenant, "反馈 楼道灯坏了")
    await chat.say(chain.landlords_group, chain.team_member, "答复 1 已报修")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 周末请各小组排查")
    await transport.room_event(RoomEvent(transport=transport.name, room_id=chain.ying_group,
                                         kind="left", at=clock.now()))
    await bot.idle()
    assert await post_daily_rollup(bot) > 0
    await bot.idle()
    async with bot.session() as s:
        sources = set((await s.execute(select(OutboxMessage.source))).scalars())
    assert {"fever", "ticket", "ticket-answer", "notice", "health", "rollup"} <= sources
    assert await _rows_on_wrong_account(bot) == []


async def test_reminders_escalations_and_weekly_lists_use_the_groups_account(
        bot, chat: Chat, chain: DemoChain, clock):
    await _own_accounts(bot)
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请回复收到")
    async with bot.session() as s, s.begin():
        reminded, escalated = await notices.remind_and_escalate(
            s, now=clock.now() + notices.timedelta(days=2), settings=bot.settings.notices)
    assert reminded and escalated
    async with bot.session() as s, s.begin():
        weeks = await points.close_week(s, now=clock.now() + notices.timedelta(days=7),
                                        zone=bot.settings.zone, settings=bot.settings.points)
        written = await points.post_lists(s, weeks=weeks, now=clock.now(),
                                          zone=bot.settings.zone)
    assert written > 0
    assert await _rows_on_wrong_account(bot) == []


async def test_writer_bulk_form_and_missing_groups(bot, chain: DemoChain, clock):
    accounts = await _own_accounts(bot)
    gids = sorted(accounts)
    async with bot.session() as s, s.begin():
        written = await outbox.queue_many(s, source="test", now=clock.now(), drafts=[
            outbox.Draft(gids[0], "一"), outbox.Draft(gids[1], "二", ("x",), True),
            outbox.Draft(10**9, "无此群")])
        assert written == 2
        assert await outbox.queue(s, group_id=10**9, text="无", source="test",
                                  now=clock.now()) == 0
    async with bot.session() as s:
        rows = (await s.execute(select(OutboxMessage).where(OutboxMessage.source == "test")
                                .order_by(OutboxMessage.id))).scalars().all()
    assert [(r.group_id, r.account, r.text, r.mentions, r.urgent) for r in rows] == [
        (gids[0], accounts[gids[0]], "一", [], False),
        (gids[1], accounts[gids[1]], "二", ["x"], True)]
