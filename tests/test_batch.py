"""The batch machinery: one dedupe INSERT and one lookup of rooms, senders and roles per batch,
no SAVEPOINT per message, and still each failing message rolls back alone."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import event, select

import bot.services.tenant as tenant_service
from bot import pipeline, texts
from bot.crypto import blind_index
from bot.domain import UserError
from bot.grammar import Temperature
from bot.services import people
from bot.transports.base import IncomingMessage
from models import (
    Contact,
    InboundMessage,
    Membership,
    Node,
    Person,
    TemperatureReading,
    TenantStay,
)
from tests.conftest import Chat, DemoChain, count


def record_statements(bot) -> list[str]:
    seen: list[str] = []
    event.listen(bot.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


async def register(chat: Chat, chain: DemoChain, n: int) -> list[str]:
    """n tenants who have returned (one message each), in the demo's tenant group."""
    contacts = [f"sim-batch-{i}" for i in range(n)]
    for i, contact in enumerate(contacts):
        await chat.say(chain.tenant_group, contact, f"我回来了 湖南长沙 1380000{i:04d}")
    return contacts


async def test_a_batch_looks_rooms_senders_and_roles_up_once(bot, chat: Chat,
                                                            chain: DemoChain):
    contacts = await register(chat, chain, 4)
    seen = record_statements(bot)
    await chat.say_together([(chain.tenant_group, c, f"体温 36.{i}")
                             for i, c in enumerate(contacts)])
    assert len(chat.replies(chain.tenant_group)) == 4
    assert await count(bot, TemperatureReading) == 4
    lower = [s.lower() for s in seen]
    assert sum("from chat_group" in s for s in lower) == 1
    # The senders and their roles: one statement.
    assert sum("join contact" in s for s in lower) == 1
    assert sum("membership" in s and "contact" in s for s in lower) == 1
    assert not any(s.startswith("select") and "from membership" in s for s in lower)
    assert sum("insert into inbound_message" in s for s in lower) == 1
    if bot.engine.dialect.name == "postgresql":
        # The dedupe rows, the rooms and the senders: one statement, one round trip.
        (opening,) = [s for s in lower if "insert into inbound_message" in s]
        assert "from chat_group" in opening and "join contact" in opening
    # No SAVEPOINT per message (the batch has no failure to isolate).
    assert not any(s.startswith("savepoint") for s in lower)


async def test_identity_made_earlier_in_the_batch_is_seen_by_later_messages(
        bot, chat: Chat, chain: DemoChain):
    # A new contact registers and reports a reading in the same batch: the second message
    # must see the person, role and stay the first one made (the batch lookup is refreshed).
    await chat.say_together([
        (chain.tenant_group, "sim-fresh", "我回来了 湖南长沙 13800001111"),
        (chain.tenant_group, "sim-fresh", "体温 36.5"),
        (chain.tenant_group, "sim-fresh", "我回来了 湖南长沙 13800001111"),
    ])
    first, second, third = chat.replies(chain.tenant_group)
    assert first.startswith("已登记")
    assert "36.5" in second and "没有找到" not in second
    assert "已经登记过返回" in third  # the stay made earlier in the batch is found
    assert await count(bot, Person, Person.mobile_bidx == blind_index("mobile", "13800001111")) == 1
    assert await count(bot, Contact, Contact.contact_id == "sim-fresh") == 1
    assert await count(bot, TenantStay) == 1
    assert await count(bot, TemperatureReading) == 1


async def test_a_message_failing_after_writing_rolls_back_alone_without_savepoints(
        bot, chat: Chat, chain: DemoChain, monkeypatch, caplog):
    contacts = await register(chat, chain, 3)
    original = tenant_service.record_temperature

    async def half_then_boom(session, *, inbound_id, sender, **kwargs):
        if sender is not None and sender.mobile_bidx == blind_index("mobile", "13800000001"):
            stay = (await session.execute(select(TenantStay).where(
                TenantStay.tenant_id == sender.id))).scalar_one()
            session.add(TemperatureReading(stay_id=stay.id, value=36.0, taken_at=bot.now(),
                                           by_id=sender.id, inbound_id=inbound_id))
            await session.flush()
            raise RuntimeError("disk on fire")
        return await original(session, inbound_id=inbound_id, sender=sender, **kwargs)

    monkeypatch.setattr(tenant_service, "record_temperature", half_then_boom)
    commits: list[int] = []
    event.listen(bot.engine.sync_engine, "commit", lambda conn: commits.append(1))
    seen = record_statements(bot)
    with caplog.at_level(logging.INFO):
        await chat.say_together([(chain.tenant_group, c, "体温 36.6") for c in contacts])
    replies = chat.replies(chain.tenant_group)
    assert replies[1] == "抱歉，处理出错了，请稍后再试。"
    assert "36.6" in replies[0] and "36.6" in replies[2]
    # The others' readings are stored once each, the failing message's not at all ...
    readings = await count(bot, TemperatureReading)
    assert readings == 2
    # ... while its record is kept, so a redelivery is not handled again.
    assert await count(bot, InboundMessage) == 3 + 3
    # The batch ran again with a SAVEPOINT per message, and committed once.
    assert any(s.lower().startswith("savepoint") for s in seen)
    assert "again with savepoints" in caplog.text
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert len(commits) <= 3


async def test_a_user_error_after_writing_leaves_nothing_partial(bot, chat: Chat,
                                                                 chain: DemoChain,
                                                                 monkeypatch):
    contacts = await register(chat, chain, 2)
    original = tenant_service.record_temperature

    async def write_then_refuse(session, *, sender, **kwargs):
        if sender is not None and sender.mobile_bidx == blind_index("mobile", "13800000000"):
            sender.name = "改过的名字"  # a change still pending when the refusal comes
            raise UserError("不行")
        return await original(session, sender=sender, **kwargs)

    monkeypatch.setattr(tenant_service, "record_temperature", write_then_refuse)
    await chat.say_together([(chain.tenant_group, c, "体温 36.6") for c in contacts])
    replies = chat.replies(chain.tenant_group)
    assert replies[0] == "不行"
    assert "36.6" in replies[1]
    assert await count(bot, Person, Person.name == "改过的名字") == 0
    assert await count(bot, TemperatureReading) == 1


async def test_a_user_error_before_any_write_needs_no_second_run(bot, chat: Chat,
                                                                 chain: DemoChain):
    contacts = await register(chat, chain, 2)
    seen = record_statements(bot)
    await chat.say_together([
        (chain.tenant_group, contacts[0], "体温 36.6"),
        (chain.tenant_group, "sim-nobody", "体温 36.6"),   # no stay: UserError, nothing written
        (chain.tenant_group, contacts[1], "体温 36.7"),
    ])
    replies = chat.replies(chain.tenant_group)
    assert replies[1].startswith("没有找到您的返回登记")
    assert await count(bot, TemperatureReading) == 2
    # One run: the dedupe rows written once (on PostgreSQL inside the batch's first statement).
    assert sum("INSERT INTO inbound_message" in s for s in seen) == 1
    assert not any(s.lower().startswith("savepoint") for s in seen)


async def test_roles_granted_earlier_in_the_batch_count_for_later_messages(
        bot, chat: Chat, chain: DemoChain):
    # The landlord registers a tenant; the tenant's own 体温 in the same batch finds the stay.
    await chat.say_together([
        (chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳"),
        (chain.tenant_group, "sim-lina", "我已返回 安徽阜阳 13611112222"),
        (chain.tenant_group, "sim-lina", "体温 36.4"),
    ])
    replies = chat.replies(chain.tenant_group)
    assert len(replies) == 3
    assert "36.4" in replies[2] and "没有找到" not in replies[2]
    async with bot.session() as s:
        person = (await s.execute(select(Person).join(Contact).where(
            Contact.contact_id == "sim-lina"))).scalar_one()
        roles = (await s.execute(select(Membership.role).where(
            Membership.person_id == person.id))).scalars().all()
    assert list(roles) == ["tenant"]


async def test_a_fever_flags_the_stay_in_the_database_and_in_a_stay_already_loaded(
        bot, chat: Chat, chain: DemoChain):
    # A reading looks its stay up as columns and flags a fever with an UPDATE: a stay the
    # session loaded before (earlier in the batch) must not keep saying "no fever".
    [contact] = await register(chat, chain, 1)
    async with bot.session() as session, session.begin():
        loaded = (await session.execute(select(TenantStay))).scalar_one()
        assert loaded.fever is False
        sender = await people.find_by_contact(session, transport="sim", contact_id=contact)
        node = await session.get(Node, loaded.node_id)
        assert sender is not None and node is not None
        result = await tenant_service.record_temperature(
            session, node=node, cmd=Temperature(value=38.6), sender=sender, as_landlord=False,
            now=bot.now(), zone=ZoneInfo("Asia/Shanghai"), fever_threshold=37.3,
            inbound_id=None)
        assert result.fever and result.stay.id == loaded.id
        assert loaded.fever is True
        assert (await session.execute(select(TenantStay.fever))).scalar_one() is True
    assert await count(bot, TenantStay, TenantStay.fever.is_(True)) == 1


async def test_a_refused_reading_does_not_run_the_batch_again(bot, chat: Chat,
                                                             chain: DemoChain, caplog):
    # A tenant's own 体温 is looked up and written in one INSERT ... SELECT: for someone with
    # no stay it writes nothing, and the batch must not take it for a write that failed
    # (which would run every message again with savepoints).
    contacts = await register(chat, chain, 2)
    # Known, but their stay is at another landlord's: none here.
    await chat.say(chain.ying_group, "sim-elsewhere", "我回来了 湖南长沙 13800009999")
    assert chat.replies(chain.ying_group)[0].startswith("已登记")
    seen = record_statements(bot)
    with caplog.at_level(logging.INFO):
        await chat.say_together([(chain.tenant_group, contacts[0], "体温 36.6"),
                                 (chain.tenant_group, "sim-elsewhere", "体温 36.7"),
                                 (chain.tenant_group, contacts[1], "体温 38.9")])
    first, refused, fever = chat.replies(chain.tenant_group)[:3]
    assert "36.6" in first
    assert refused == texts.Tenant.TEMP_NO_STAY
    assert "38.9" in fever
    assert await count(bot, TemperatureReading) == 2
    assert await count(bot, TenantStay, TenantStay.fever.is_(True)) == 1
    assert not any(s.lower().startswith("savepoint") for s in seen)
    assert "again with savepoints" not in caplog.text


async def test_the_first_statement_records_and_finds_what_separate_look_ups_find(
        bot, chain: DemoChain):
    # Rooms bound and not, senders with several roles, one, none, and a contact nobody has;
    # a message seen before, and one twice in the batch.
    said = [(chain.team_group, chain.team_member), (chain.community_group, chain.secretary),
            (chain.landlords_group, chain.landlord), (chain.tenant_group, chain.tenant),
            ("nowhere@chatroom", "sim-nobody"), (chain.tenant_group, chain.tenant)]
    at = bot.now()
    items = [pipeline.preparse(IncomingMessage("sim", f"first-{i}", room, sender, "某人",
                                               "体温 36.5", at), bot.settings.bot_names)
             for i, (room, sender) in enumerate(said)]
    items.append(items[0])
    handling = bot.pipeline.handling
    async with bot.session() as session, session.begin():
        await handling._record(session, items[-2:-1], at)  # seen before
    seen = record_statements(bot)
    async with bot.session() as session, session.begin():
        lookups = pipeline.Lookups(session)
        ids = await handling._record(session, items, at, lookups, items)
        await lookups.prime(items)  # what the first statement did not find (SQLite: all)
        statements = [s for s in seen if not s.upper().startswith("BEGIN")]
        lookups.close()
        assert [i is None for i in ids] == [False] * 5 + [True, True]
        rooms = {room for room, _ in said}
        contacts = {sender for _, sender in said}
        assert lookups.groups.keys() == {("sim", room) for room in rooms}
        assert lookups.senders.keys() == {("sim", c) for c in contacts}
        fresh = pipeline.Lookups(session)
        for room in rooms:
            await fresh._groups("sim", [room])
        await fresh._senders("sim", sorted(contacts))
        assert lookups.groups == fresh.groups  # the same objects: one identity map
        assert lookups.senders == fresh.senders
        assert lookups.roles == fresh.roles
        assert any(len(held) > 1 for held in lookups.roles.values())
        assert lookups.groups[("sim", "nowhere@chatroom")] is None
        assert lookups.senders[("sim", "sim-nobody")] is None
        group = lookups.groups[("sim", chain.team_group)]
        assert group is not None and group.node.name  # its node loaded with it
    # PostgreSQL: one round trip for all three; SQLite: the dedupe rows, rooms, senders.
    assert len(statements) == (1 if bot.engine.dialect.name == "postgresql" else 3)
    assert "inbound_message" in statements[0]


async def test_rooms_and_senders_past_the_first_statement_are_looked_up_after_it(
        bot, chain: DemoChain):
    # More rooms than the first statement takes (PRIME_CHUNK): the rest are primed.
    n = pipeline.PRIME_CHUNK + 3
    at = bot.now()
    items = [pipeline.preparse(IncomingMessage("sim", f"many-{i}", f"room-{i:03d}@chatroom",
                                               f"sim-many-{i:03d}", "某人", "体温 36.5", at),
                               bot.settings.bot_names)
             for i in range(n - 1)]
    items.append(pipeline.preparse(IncomingMessage("sim", "many-last", chain.tenant_group,
                                                   chain.tenant, "某人", "体温 36.5", at),
                                   bot.settings.bot_names))
    async with bot.session() as session, session.begin():
        lookups = pipeline.Lookups(session)
        await bot.pipeline.handling._record(session, items, at, lookups, items)
        await lookups.prime(items)
        assert len(lookups.groups) == len(lookups.senders) == n
        assert lookups.groups[("sim", chain.tenant_group)] is not None
        assert lookups.senders[("sim", chain.tenant)] is not None
        lookups.close()
