"""Personal numbers at rest, on a real database: stored sealed and found by blind index,
revealed only with an access-log row in the same transaction, re-sealed by a key rotation that
is interrupted and resumed, encrypted by migration 0009, and erased by `forget`."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from bot import crypto, pii, store
from bot.app import BotApp
from bot.services import people, personal
from models import (
    AccessLog,
    Contact,
    LandlordReport,
    Membership,
    Person,
    TemperatureReading,
    TenantStay,
    Ticket,
)
from tests.conftest import TEST_KEYRING, Chat, DemoChain, count
from tests.dump import FULL_ID, FULL_MOBILE, dump_async

ID_NUMBER = "33078219900101" + "123"
ID_NUMBER += pii.id_check_digit(ID_NUMBER)
MOBILE = "13905791234"


async def _raw_person(bot: BotApp, person_id: int) -> dict[str, object]:
    async with bot.engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM person WHERE id = :id"),
                                  {"id": person_id})).mappings().one()
    return dict(row)


async def _register(chat: Chat, chain: DemoChain) -> Person:
    await chat.say(chain.tenant_group, chain.tenant,
                   f"我回来了 江西上饶 {MOBILE} 身份证{ID_NUMBER} 体温36.6", name="潘先生")
    assert any("已登记" in r for r in chat.replies(chain.tenant_group)), chat.all_texts()
    async with chat.app.session() as s:
        found = await people.find_by_mobile(s, mobile=MOBILE)
    assert found is not None and found.name == "潘先生"
    return found


async def test_a_registered_number_is_stored_sealed_indexed_and_masked(
        bot: BotApp, chat: Chat, chain: DemoChain):
    person = await _register(chat, chain)
    row = await _raw_person(bot, person.id)
    assert "mobile" not in row and "id_number" not in row  # the plain columns are gone
    assert MOBILE not in str(row) and ID_NUMBER not in str(row)
    assert row["mobile_mask"] == "139****1234" and row["id_number_mask"] == pii.mask_id(ID_NUMBER)
    assert str(row["mobile_enc"]).startswith(f"v1.{TEST_KEYRING.active}.")
    assert row["id_number_bidx"] == crypto.blind_index("id_number", ID_NUMBER)
    # Found however the number is typed.
    async with bot.session() as s:
        again = await people.find_by_mobile(s, mobile="139-0579-1234")
        by_id = (await s.execute(select(Person).where(
            personal.matches("id_number", ID_NUMBER.lower())))).scalar_one()
    assert again is not None and again.id == person.id == by_id.id


async def test_reveal_logs_in_the_same_transaction_or_not_at_all(bot: BotApp, chat: Chat,
                                                                 chain: DemoChain):
    person = await _register(chat, chain)
    async with bot.session() as s:
        async with s.begin():
            p = await s.get(Person, person.id)
            assert p is not None
            assert await personal.reveal(s, p, "id_number", who="cli", why="核对身份",
                                         now=bot.now()) == ID_NUMBER
            await s.rollback()
    assert await count(bot, AccessLog) == 0  # rolled back: no trace, as if never shown
    async with bot.session() as s, s.begin():
        p = await s.get(Person, person.id)
        assert p is not None
        assert await personal.reveal(s, p, "mobile", who="api:ops", why="回访",
                                     now=bot.now()) == MOBILE
    async with bot.session() as s:
        [log] = (await s.execute(select(AccessLog))).scalars().all()
    assert (log.who, log.action, log.person_id, log.field, log.why) == (
        "api:ops", "reveal", person.id, "mobile", "回访")
    assert log.at == bot.now()


@pytest.mark.parametrize(("field", "who", "why"), [
    ("mobile", "cli", " "), ("mobile", "", "x"), ("name", "cli", "x")])
async def test_reveal_refuses_without_a_reason_or_a_known_field(
        bot: BotApp, chat: Chat, chain: DemoChain, field: str, who: str, why: str):
    person = await _register(chat, chain)
    async with bot.session() as s, s.begin():
        p = await s.get(Person, person.id)
        with pytest.raises(ValueError):
            await personal.reveal(s, p, field, who=who, why=why,  # type: ignore[arg-type]
                                  now=bot.now())
    assert await count(bot, AccessLog) == 0


async def test_a_value_copied_to_another_row_does_not_open(bot: BotApp, chat: Chat,
                                                         chain: DemoChain):
    person = await _register(chat, chain)
    async with bot.session() as s, s.begin():
        landlord = await people.find_by_contact(s, transport="sim", contact_id=chain.landlord)
        victim = await s.get(Person, person.id)
        assert landlord is not None and victim is not None
        landlord.mobile_enc = victim.mobile_enc  # a database writer swaps ciphertexts
        await s.flush()
        with pytest.raises(crypto.SealedValueError, match=f"#{landlord.id}"):
            await personal.reveal(s, landlord, "mobile", who="cli", why="x", now=bot.now())


async def _many_people(bot: BotApp, n: int) -> dict[int, tuple[str, str]]:
    out = {}
    async with bot.session() as s, s.begin():
        for i in range(n):
            first17 = f"3307821990010{i:04d}"
            idn = first17 + pii.id_check_digit(first17)
            p = await people.create_person(s, name=f"人{i}", mobile=f"1380000{i:04d}",
                                           id_number=idn, now=bot.now())
            out[p.id] = (f"1380000{i:04d}", idn)
    return out


async def test_rotation_interrupted_and_resumed_reseals_everything(bot: BotApp):
    expected = await _many_people(bot, 7)
    newer = TEST_KEYRING.with_new_key()

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(done: int) -> None:
        raise Interrupted(done)

    with pytest.raises(Interrupted):
        await personal.rotate(bot.sessions, keyring=newer, batch=3,
                              progress=stop_after_first_batch)
    async with bot.session() as s:
        keys = [crypto.key_id_of(t) for t in (await s.execute(
            select(Person.mobile_enc).order_by(Person.id))).scalars() if t]
        assert await personal.pending_rotation(s, keyring=newer) == 4
        # Half-way, every number is still found (the index key does not rotate).
        for mobile, _ in expected.values():
            assert await people.find_by_mobile(s, mobile=mobile) is not None
    assert keys.count("k2") == 3 and keys.count("k1") == 4
    # The process still holding only the old key names the new one when it meets it.
    async with bot.session() as s, s.begin():
        first = await s.get(Person, min(expected))
        assert first is not None
        with pytest.raises(crypto.UnknownKeyError, match="'k2'"):
            await personal.reveal(s, first, "mobile", who="cli", why="x", now=bot.now())
    # Resumed: the rest, and nothing twice.
    seen: list[int] = []
    assert await personal.rotate(bot.sessions, keyring=newer, batch=3,
                                 progress=seen.append) == 4
    assert seen == [3, 4]
    assert await personal.rotate(bot.sessions, keyring=newer) == 0
    crypto.use(newer)
    try:
        async with bot.session() as s, s.begin():
            assert await personal.pending_rotation(s, keyring=newer) == 0
            for person_id, (mobile, idn) in expected.items():
                p = await s.get(Person, person_id)
                assert p is not None and crypto.key_id_of(p.id_number_enc or "") == "k2"
                assert await personal.reveal(s, p, "mobile", who="t", why="t",
                                             now=bot.now()) == mobile
                assert await personal.reveal(s, p, "id_number", who="t", why="t",
                                             now=bot.now()) == idn
    finally:
        crypto.use(TEST_KEYRING)


async def test_migration_0009_encrypts_rows_written_by_the_old_schema(db_url: str):
    engine = store.create_engine(db_url)
    try:
        async with engine.begin() as conn:
            if db_url.startswith("postgresql"):
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            else:
                for (name,) in (await conn.execute(text(
                        "SELECT name FROM sqlite_master WHERE type='table'"))).all():
                    await conn.execute(text(f'DROP TABLE "{name}"'))
        await store.upgrade(engine, "0008")
        async with engine.begin() as conn:
            for i, (name, mobile, idn) in enumerate([
                    ("甲", MOBILE, ID_NUMBER), ("乙", "13611112222", None),
                    ("丙", None, None), ("丁", "", None)], 1):
                await conn.execute(text(
                    "INSERT INTO person (id, name, mobile, id_number, created_at) "
                    "VALUES (:i, :n, :m, :d, '2020-02-21 02:00:00')"),
                    {"i": i, "n": name, "m": mobile, "d": idn})
        assert MOBILE in await dump_async(db_url)
        await store.upgrade(engine)
        dumped = await dump_async(db_url)
        assert not FULL_MOBILE.search(dumped) and not FULL_ID.search(dumped)
        sessions = store.sessionmaker(engine)
        async with sessions() as s, s.begin():
            a = await people.find_by_mobile(s, mobile=MOBILE)
            b = await people.find_by_mobile(s, mobile="13611112222")
            assert a is not None and a.name == "甲" and b is not None and b.name == "乙"
            assert a.mobile_mask == "139****1234" and a.id_number_mask == pii.mask_id(ID_NUMBER)
            assert await personal.reveal(s, a, "id_number", who="t", why="t",
                                         now=store_now()) == ID_NUMBER
            assert await personal.reveal(s, b, "mobile", who="t", why="t",
                                         now=store_now()) == "13611112222"
            empty = [p for p in (await s.execute(select(Person).where(
                Person.id.in_([3, 4])))).scalars()]
            assert all(p.mobile_enc is None and p.mobile_bidx is None for p in empty)
    finally:
        await engine.dispose()


def store_now():  # type: ignore[no-untyped-def]
    from tests.conftest import START
    return START


async def test_migration_0009_without_keys_stops_and_says_what_to_do(
        monkeypatch: pytest.MonkeyPatch, tmp_path):
    # The key check is the same on both databases: a fresh SQLite file is enough.
    engine = store.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await store.upgrade(engine, "0008")
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO person (name, mobile, created_at) "
                                    f"VALUES ('甲', '{MOBILE}', '2020-02-21 02:00:00')"))
        crypto.use(None)
        monkeypatch.delenv("TIERBOT_KEYRING")
        monkeypatch.chdir(tmp_path)
        with pytest.raises(crypto.MissingKeyError, match="tierbot keys init"):
            await store.upgrade(engine)
        async with engine.connect() as conn:  # nothing half done: still 0008, still there
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))
                    ).scalar_one() == "0008"
    finally:
        crypto.use(TEST_KEYRING)
        await engine.dispose()


async def test_forget_leaves_no_trace_but_counts(bot: BotApp, chat: Chat, chain: DemoChain):
    person = await _register(chat, chain)
    await chat.say(chain.tenant_group, chain.tenant, "体温 36.8")
    await chat.say(chain.tenant_group, chain.landlord, f"房东上报 代办 帮潘先生{MOBILE}买菜")
    await chat.say(chain.tenant_group, chain.tenant, "反馈 潘先生想问隔离什么时候结束")
    before = {m: await count(bot, m) for m in (TenantStay, TemperatureReading, LandlordReport,
                                               Ticket)}
    assert before[TemperatureReading] == 2 and before[Ticket] == 1
    async with bot.session() as s, s.begin():
        done = await personal.forget(s, number=f"+86 {MOBILE}", who="cli",
                                     why="本人申请删除（个保法第47条）", now=bot.now())
    assert done.person_ids == [person.id]
    dumped = await dump_async(bot.settings.database_url)
    for trace in ("潘先生", MOBILE, ID_NUMBER, "139****1234", pii.mask_id(ID_NUMBER),
                  chain.tenant, "江西上饶", "隔离什么时候结束",
                  crypto.blind_index("mobile", MOBILE), crypto.blind_index("id_number",
                                                                         ID_NUMBER)):
        assert trace not in dumped, trace
    for model, n in before.items():
        assert await count(bot, model) == n, model
    # The landlord's own report stays his, with the tenant taken out of it.
    assert await count(bot, LandlordReport, LandlordReport.detail.contains("买菜")) == 1
    assert await count(bot, Contact, Contact.person_id == person.id) == 0
    assert await count(bot, Membership, Membership.person_id == person.id) == 0
    async with bot.session() as s:
        [log] = (await s.execute(select(AccessLog))).scalars().all()
        assert (log.action, log.person_id, log.who) == ("forget", person.id, "cli")
        assert await people.find_by_mobile(s, mobile=MOBILE) is None
        stays = (await s.execute(select(func.count()).select_from(TenantStay).where(
            TenantStay.tenant_id == person.id))).scalar_one()
    assert stays == before[TenantStay]
    # The contact is a stranger now: coming back registers someone new.
    await chat.say(chain.tenant_group, chain.tenant, f"我回来了 江西上饶 {MOBILE}", name="潘")
    async with bot.session() as s:
        again = await people.find_by_mobile(s, mobile=MOBILE)
    assert again is not None and again.id != person.id
    # Forgetting a number nobody has is nothing, not an error in the log.
    async with bot.session() as s, s.begin():
        assert (await personal.forget(s, number="13700000000", who="cli", why="x",
                                      now=bot.now())).person_ids == []
    with pytest.raises(ValueError):
        async with bot.session() as s, s.begin():
            await personal.forget(s, number="12345", who="cli", why="x", now=bot.now())
