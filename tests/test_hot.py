"""Hot statements (bot.hot): prebuilt Core statements run straight on the driver. They must
behave as the same statement through SQLAlchemy would: inside the session's transaction
(even as its first statement), with the same rows and the same errors, and a statement that
would go wrong hot is refused the first time it runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from bot import hot
from bot.app import BotApp, build_app, running
from bot.console import load_demo_chain
from bot.hot import Hot
from bot.services import notice, people
from models import Contact, Group, InboundMessage, Membership, Node, OutboxMessage, Person, Role
from tests.conftest import Chat, DemoChain, count

INBOUND = InboundMessage.__table__
NOW = datetime(2020, 2, 21, 2, 0, tzinfo=UTC)
INSERT_INBOUND = Hot(insert(INBOUND).values(
    {c.key: bindparam(c.key, type_=c.type) for c in INBOUND.c if c.key != "id"}
).returning(INBOUND.c.id))


def inbound(message_id: str) -> dict[str, Any]:
    return {"transport": "sim", "message_id": message_id, "room_id": "r", "sender_id": "s",
            "command": "体温", "received_at": NOW}


async def test_a_hot_statement_first_in_a_transaction_is_rolled_back_with_it(bot: BotApp):
    # On PostgreSQL the adapter starts its transaction on first use: a hot statement that
    # came first must start it too, or its row would be committed on its own.
    with pytest.raises(RuntimeError):
        async with bot.session() as session, session.begin():
            assert await INSERT_INBOUND.scalar(session, inbound("rolled-back")) is not None
            raise RuntimeError("the handler failed")
    assert await count(bot, InboundMessage) == 0
    async with bot.session() as session, session.begin():
        new_id = await INSERT_INBOUND.scalar(session, inbound("kept"))
    async with bot.session() as session:
        stored = await session.get(InboundMessage, new_id)
        assert stored is not None
        assert (stored.message_id, stored.received_at) == ("kept", NOW)  # the types' processing


async def test_result_columns_come_back_as_sqlalchemy_gives_them(bot: BotApp):
    # UTCDateTime makes a stored time aware on the way out (SQLite hands back text,
    # asyncpg a naive datetime); a column without processing comes as the driver gave it.
    async with bot.session() as session, session.begin():
        new_id = await INSERT_INBOUND.scalar(session, inbound("read"))
        hot = await Hot(select(INBOUND.c.received_at, INBOUND.c.message_id, INBOUND.c.id)
                        .where(INBOUND.c.id == bindparam("id"))).rows(session, {"id": new_id})
        orm = (await session.execute(select(INBOUND.c.received_at, INBOUND.c.message_id,
                                            INBOUND.c.id).where(INBOUND.c.id == new_id))).one()
    assert hot == [tuple(orm)] == [(NOW, "read", new_id)]
    assert hot[0][0].tzinfo is not None


async def test_a_hot_statement_sees_and_is_seen_by_the_orm_in_its_transaction(bot: BotApp):
    async with bot.session() as session, session.begin():
        session.add(InboundMessage(**inbound("orm")))
        await session.flush()
        await INSERT_INBOUND.rows(session, inbound("hot"))
        ids = (await session.execute(select(InboundMessage.message_id)
                                     .order_by(InboundMessage.id))).scalars().all()
        assert ids == ["orm", "hot"]
        assert await Hot(select(func.count()).select_from(INBOUND)).scalar(session) == 2


async def test_a_duplicate_raises_sqlalchemys_integrity_error_and_the_savepoint_recovers(
        bot: BotApp):
    async with bot.session() as session, session.begin():
        await INSERT_INBOUND.rows(session, inbound("once"))
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await INSERT_INBOUND.rows(session, inbound("once"))
        await INSERT_INBOUND.rows(session, inbound("twice"))
    assert await count(bot, InboundMessage) == 2


async def test_rows_are_the_ones_sqlalchemy_gives(bot: BotApp, chain: DemoChain, chat: Chat):
    # A notice reaches the team group and is sent: the 收到 look-up (literal enum values in
    # the statement, a bound group id) finds the same row hot as through SQLAlchemy.
    await chat.say(chain.subdistrict_group, chain.commander, "通知 明早八点开会")
    async with bot.session() as session:
        rows = (await session.execute(select(OutboxMessage.group_id)
                                      .where(OutboxMessage.notice_id.is_not(None)))).all()
        assert rows, "the notice went nowhere"
        for (group_id,) in rows:
            for key, statement in notice._ACK_ROW.items():
                params = {"group_id": group_id, "notice_id": 1} if key[0] else \
                    {"group_id": group_id}
                assert await statement.rows(session, params) == [
                    tuple(r) for r in await session.execute(statement.statement, params)]
        landlords = (await session.execute(select(Membership.node_id)
                                           .where(Membership.role == Role.LANDLORD))).scalars()
        for node_id in landlords:
            params = {"node_id": node_id, "role": Role.LANDLORD, "transport": "sim"}
            assert await people._HOLDER_CONTACTS.rows(session, params) == [
                tuple(r) for r in await session.execute(people._HOLDER_CONTACTS.statement,
                                                        params)]


PERSON = Person.__table__
MEMBERSHIP = Membership.__table__


@pytest.mark.parametrize("statement, refused", [
    # Writes the look-ups of who is who would not hear of (bot.pipeline.Lookups).
    (insert(PERSON).values(name=bindparam("name")), "may not write person"),
    (insert(Contact.__table__).values(person_id=bindparam("p")), "may not write contact"),
    (insert(INBOUND).values(command="x").add_cte(
        insert(MEMBERSHIP).values(person_id=1, node_id=1, role="tenant").cte("m")),
     "may not write"),
    # An IN list is rendered at execution time.
    (select(PERSON.c.id).where(PERSON.c.id.in_(bindparam("ids", expanding=True))),
     "rendered at execution"),
], ids=["person", "contact", "cte-membership", "expanding"])
async def test_statements_that_would_go_wrong_hot_are_refused(bot: BotApp, statement: Any,
                                                              refused: str):
    async with bot.session() as session, session.begin():
        with pytest.raises(TypeError, match=refused):
            await Hot(statement).rows(session, {"name": "x", "p": 1, "ids": [1]})


async def test_a_missing_parameter_is_an_error_not_a_null(bot: BotApp):
    async with bot.session() as session, session.begin():
        values = inbound("m")
        del values["room_id"]
        with pytest.raises(KeyError, match="room_id"):
            await INSERT_INBOUND.rows(session, values)


async def test_statement_listeners_see_them(bot: BotApp):
    seen: list[tuple[str, Any]] = []
    async with bot.session() as session, session.begin():
        connection = (await session.connection()).sync_connection
        assert connection is not None

        def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            seen.append((statement, parameters))

        event.listen(connection, "before_cursor_execute", note)
        try:
            await INSERT_INBOUND.rows(session, inbound("seen"))
        finally:
            event.remove(connection, "before_cursor_execute", note)
    [(statement, parameters)] = seen
    assert statement.startswith("INSERT INTO inbound_message") and "seen" in parameters


async def test_identity_writes_must_say_what_they_write(bot: BotApp):
    # The pipeline's look-ups hear of identity writes only from this declaration.
    async with bot.session() as session, session.begin():
        with pytest.raises(TypeError, match="must declare"):
            await people.HOT_MEMBERSHIP.rows(session, {
                "person_id": 1, "node_id": 1, "role": Role.TENANT, "created_at": NOW})
    # (tests/test_batch.py: a tenant registered hot is known to the next message of the batch)


async def test_a_hot_write_before_a_refusal_is_undone(bot: BotApp, chat: Chat,
                                                      chain: DemoChain, monkeypatch):
    # A batch first runs without SAVEPOINTs: a handler that wrote and then refuses makes it
    # run again with them (bot.pipeline.WriteWatch). A hot write must count as a write.
    from bot.domain import UserError
    from bot.services import tenant as tenant_service
    from models import TemperatureReading

    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    original = tenant_service.record_temperature

    async def write_then_refuse(session: Any, **kwargs: Any) -> Any:
        await original(session, **kwargs)  # its reading is a hot INSERT
        raise UserError("不能记录")

    monkeypatch.setattr(tenant_service, "record_temperature", write_then_refuse)
    await chat.say_together([(chain.tenant_group, chain.tenant, "体温 36.6"),
                             (chain.tenant_group, chain.landlord, "房东上报 消毒")])
    assert chat.replies(chain.tenant_group)[0] == "不能记录"
    assert await count(bot, TemperatureReading) == 0


# Objects built from a hot statement's columns (hot.loaded) stand in for ORM-loaded ones.

def _values(obj: Any) -> dict[str, Any]:
    return {prop.key: getattr(obj, prop.key) for prop in sa_inspect(type(obj)).column_attrs}


async def test_a_built_object_is_the_one_a_query_would_load(bot: BotApp, chain: DemoChain):
    async with bot.session() as session:
        orm = {type(o): _values(o) for o in (
            (await session.execute(select(Group).where(Group.room_id == chain.team_group)))
            .scalar_one(),
            (await session.execute(select(Node).where(Node.parent_id.is_not(None)).limit(1)))
            .scalar_one(),
            await people.find_by_contact(session, transport="sim", contact_id=chain.tenant))}
    for model, values in orm.items():
        async with bot.session() as session, session.begin():
            row = [values[prop.key] for prop in sa_inspect(model).column_attrs]
            built = hot.loaded(session, model, row)
            state = sa_inspect(built)
            assert state.persistent and not state.modified and not session.sync_session.dirty
            assert _values(built) == values
            # The session knows it: a query gives this very object, loading it again
            # gives the same one.
            again = (await session.execute(select(model).where(
                model.id == values["id"]))).scalar_one()  # type: ignore[attr-defined]
            assert again is built
            assert hot.loaded(session, model, row) is built
            # Its relationships are not loaded, as after a query (lazy="raise" says so).
            for rel in sa_inspect(model).relationships:
                with pytest.raises(InvalidRequestError, match="lazy='raise'"):
                    getattr(built, rel.key)


async def test_a_change_to_a_built_object_is_written(bot: BotApp, chain: DemoChain):
    async with bot.session() as session, session.begin():
        group = (await session.execute(select(Group).where(
            Group.room_id == chain.team_group))).scalar_one()
        row = [getattr(group, p.key) for p in sa_inspect(Group).column_attrs]
    async with bot.session() as session, session.begin():
        built = hot.loaded(session, Group, row)
        built.title = "一队（新）"
    async with bot.session() as session:
        assert (await session.execute(select(Group.title).where(
            Group.id == row[0]))).scalar_one() == "一队（新）"


async def test_an_expired_object_is_refreshed_from_the_row(bot: BotApp, chain: DemoChain):
    # After a SAVEPOINT rolled back a change, the object is expired: a query would set it
    # from its row, and so does hot.loaded (it returns the same object, not a second one).
    async with bot.session() as session, session.begin():
        person = await people.find_by_contact(session, transport="sim",
                                              contact_id=chain.tenant)
        assert person is not None
        row = [getattr(person, p.key) for p in sa_inspect(Person).column_attrs]
        nested = await session.begin_nested()
        person.name = "改了又撤回"
        await session.flush()
        await nested.rollback()
        assert "name" in sa_inspect(person).expired_attributes
        assert hot.loaded(session, Person, row) is person
        assert not sa_inspect(person).expired_attributes
        assert person.name == row[[p.key for p in sa_inspect(Person).column_attrs]
                                  .index("name")]


@pytest.mark.parametrize("wanted", [[], ["a"], ["a", "b", "c"], ["张三", "a'b", 'q"q']],
                         ids=["none", "one", "several", "quoted"])
async def test_a_list_parameter_is_in(bot: BotApp, wanted: list[str]):
    rows = [inbound(m) for m in ("a", "b", "c", "d", "张三", "a'b", 'q"q')]
    statement = hot.WithList(lambda member: select(INBOUND.c.message_id).where(
        member(INBOUND.c.message_id)).order_by(INBOUND.c.message_id), "ids")
    async with bot.session() as session, session.begin():
        await session.execute(insert(INBOUND), rows)
        found = await statement.rows(session, {"ids": wanted})
        expected = (await session.execute(select(INBOUND.c.message_id).where(
            INBOUND.c.message_id.in_(wanted)).order_by(INBOUND.c.message_id))).all()
    assert found == [tuple(r) for r in expected]
    assert sorted(m for (m,) in found) == sorted(wanted)


async def test_senders_and_roles_are_who_the_orm_finds(bot: BotApp, chain: DemoChain):
    # Someone with several roles, someone with one, a tenant, and a contact nobody has.
    contacts = [chain.team_member, chain.secretary, chain.landlord, chain.tenant, "sim-nobody"]
    async with bot.session() as session, session.begin():
        found = await people.senders_and_roles(session, transport="sim", contact_ids=contacts)
        by_orm = await people.find_by_contacts(session, transport="sim", contact_ids=contacts)
        roles = await people.held_roles_of(session, person_ids=[p.id for p in by_orm.values()])
        assert found.keys() == by_orm.keys() == set(contacts) - {"sim-nobody"}
        for contact_id, (person, held) in found.items():
            assert person is by_orm[contact_id]  # the same object: one identity map
            assert held == roles[person.id]
        assert any(len(held) > 1 for _, held in found.values())


async def test_a_started_bot_compiles_no_hot_statement_while_it_handles_messages(
        settings, transport, clock, monkeypatch):
    # Compiling one in a batch held the event loop (the pipeline's first statement of a
    # size: 10-13 ms); BotApp.start compiles them all before the first message is taken.
    for statement in list(hot._MADE):
        statement._plans.clear()  # as in a new process
    compiled: list[str] = []
    real = hot._compile

    def counted(statement: Any, dialect: Any, **kw: Any) -> Any:
        plan = real(statement, dialect, **kw)
        compiled.append(plan.sql)
        return plan

    monkeypatch.setattr(hot, "_compile", counted)
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock)
    async with running(app):
        assert len(compiled) >= 20  # BotApp.start compiled them
        assert await load_demo_chain(app)
        chain, chat = DemoChain(), Chat(app, transport)
        compiled.clear()
        await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
        await chat.say_together([
            (chain.tenant_group, f"sim-new-{i}", f"我回来了 湖南长沙 1380000{i:04d} 体温36.{i}")
            for i in range(5)] + [
            (chain.tenant_group, chain.tenant, "体温 36.6"),
            (chain.tenant_group, chain.tenant2, "收到"),
            (chain.tenant_group, "sim-new-1", "体温 36.8"),
            (chain.landlords_group, chain.landlord, "房东上报 返回 李四 13900001111 湖北武汉"),
        ])
        assert len(chat.replies(chain.tenant_group)) >= 6
        assert compiled == []
