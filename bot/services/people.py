"""Identity: people, their contact ids and their roles at nodes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, and_, bindparam, func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot import hot
from bot.domain import HeldRole
from bot.hot import IDENTITY_ROWS, Hot
from bot.services import locks, personal
from models import Contact, Membership, Node, Person, Role

# The look-ups every command makes, built once: a statement object keeps its compiled form
# and cache key, so a run costs only the parameters (building one costs more than SQLite
# takes to answer it).
_BY_CONTACT = (select(Person).join(Contact, Contact.person_id == Person.id)
               .where(Contact.transport == bindparam("transport"),
                      Contact.contact_id == bindparam("contact_id")))
_BY_CONTACTS = (select(Contact.contact_id, Person).join(Contact, Contact.person_id == Person.id)
                .where(Contact.transport == bindparam("transport"),
                       Contact.contact_id.in_(bindparam("contact_ids", expanding=True))))
# Who sent each message and every role they hold, in one statement (a person repeated per
# role; one without roles once, the role columns NULL): the pipeline's look-ups.
# Run hot, the people built from its columns (hot.loaded): through the ORM this look-up,
# made for every batch, cost 333-425 us of CPU for three senders on SQLite and 507-563 on
# PostgreSQL, against 136-198 and 314-367.
# Per row: the contact id, the person's columns, then one of their roles (role, node, the
# node's parent, the membership's id: the roles' order), or NULLs for a person with none.
SENDER_AND_ROLE_COLUMNS = (Contact.contact_id, *hot.columns(Person), Membership.role,
                           Membership.node_id, Node.parent_id, Membership.id)


def senders_and_roles_of(member: hot.Member) -> Select[Any]:
    """senders_and_roles' query (also part of the pipeline's first statement on PostgreSQL,
    bot.pipeline._opening): `member(column)` picks the contact ids."""
    return (select(*SENDER_AND_ROLE_COLUMNS)
            .join_from(Person, Contact, Contact.person_id == Person.id)
            .outerjoin(Membership, Membership.person_id == Person.id)
            .outerjoin(Node, Node.id == Membership.node_id)
            .where(Contact.transport == bindparam("transport"), member(Contact.contact_id))
            .order_by(Membership.id))


_SENDERS_AND_ROLES = hot.WithList(senders_and_roles_of, "contact_ids")
_HELD_ROLES_OF = (select(Membership.person_id, Membership.role, Membership.node_id,
                         Node.parent_id)
                  .join(Node, Node.id == Membership.node_id)
                  .where(Membership.person_id.in_(bindparam("person_ids", expanding=True)))
                  .order_by(Membership.id))
_BY_MOBILE = (select(Person).where(Person.mobile_bidx == bindparam("bidx"))
              .order_by(Person.id).limit(1))
_HELD_ROLES = (select(Membership.role, Membership.node_id, Node.parent_id)
               .join(Node, Node.id == Membership.node_id)
               .where(Membership.person_id == bindparam("person_id")))
_HOLDERS = (select(Person).join(Membership, Membership.person_id == Person.id)
            .where(Membership.node_id == bindparam("node_id"),
                   Membership.role == bindparam("role"))
            .order_by(Membership.id))
_CONTACT_IDS = select(Contact.contact_id).where(Contact.person_id == bindparam("person_id"),
                                                Contact.transport == bindparam("transport"))
# The hot path's own statements, on the tables (not the ORM entities): no unit of work, no
# object loading; built once, bound per run.
PERSON = cast(Table, Person.__table__)
CONTACT = cast(Table, Contact.__table__)
MEMBERSHIP = cast(Table, Membership.__table__)
_PERSON_ID_BY_MOBILE = (select(PERSON.c.id).where(PERSON.c.mobile_bidx == bindparam("bidx"))
                        .order_by(PERSON.c.id).limit(1))
# The holders of a role at a node, each with their contact ids on one transport (or none).
_HOLDERS_JOIN = MEMBERSHIP.outerjoin(CONTACT, and_(
    CONTACT.c.person_id == MEMBERSHIP.c.person_id, CONTACT.c.transport == bindparam("transport")))
_HOLDERS_AT = and_(MEMBERSHIP.c.node_id == bindparam("node_id"),
                   MEMBERSHIP.c.role == bindparam("role"))
_HOLDER_CONTACTS = Hot(select(MEMBERSHIP.c.person_id, CONTACT.c.contact_id)
                       .select_from(_HOLDERS_JOIN).where(_HOLDERS_AT)
                       .order_by(MEMBERSHIP.c.id, CONTACT.c.id))
_HOLDER_CONTACT_IDS = (select(CONTACT.c.contact_id)
                       .join(MEMBERSHIP, MEMBERSHIP.c.person_id == CONTACT.c.person_id)
                       .where(MEMBERSHIP.c.node_id == bindparam("node_id"),
                              MEMBERSHIP.c.role == bindparam("role"),
                              CONTACT.c.transport == bindparam("transport"))
                       .order_by(MEMBERSHIP.c.id, CONTACT.c.id))
_HAS_ROLE = (select(MEMBERSHIP.c.id)
             .where(MEMBERSHIP.c.person_id == bindparam("person_id"),
                    MEMBERSHIP.c.node_id == bindparam("node_id"),
                    MEMBERSHIP.c.role == bindparam("role")).limit(1))
# SQLite: past the largest id. The transaction holds the write lock from its BEGIN (IMMEDIATE,
# see bot/store.py), so no other writer can take it; rows are never written with ids out of
# order, so this is the id SQLite itself would give. PostgreSQL: the column's sequence.
_NEXT_PERSON_ID_SQLITE = select(func.coalesce(func.max(PERSON.c.id), 0) + 1)
# (A SELECT, not text(): the pipeline's look-ups are forgotten on any statement it cannot read.)
_NEXT_PERSON_ID_PG_VALUE = func.nextval(func.pg_get_serial_sequence("person", "id"))
_NEXT_PERSON_ID_PG = select(_NEXT_PERSON_ID_PG_VALUE)
# Both in one round trip, for a command that will create a person unless the mobile has one.
_OWNER_AND_NEXT_ID = {
    "sqlite": Hot(select(_PERSON_ID_BY_MOBILE.scalar_subquery(),
                         _NEXT_PERSON_ID_SQLITE.scalar_subquery())),
    "postgresql": Hot(select(_PERSON_ID_BY_MOBILE.scalar_subquery(), _NEXT_PERSON_ID_PG_VALUE)),
}


def _holders_owner_and_next_id(dialect: str) -> Hot:
    """_HOLDER_CONTACTS and _OWNER_AND_NEXT_ID in one statement: a tenant's own return asks
    both (its landlords for the mentions, its mobile's owner and a new id), and on
    PostgreSQL each statement is a round trip. The one row of the owner and the new id
    (computed once: a CTE with nextval is not inlined), joined to every holder row."""
    next_id = (_NEXT_PERSON_ID_PG_VALUE if dialect == "postgresql"
               else _NEXT_PERSON_ID_SQLITE.scalar_subquery())
    one = select(_PERSON_ID_BY_MOBILE.scalar_subquery().label("owner_id"),
                 next_id.label("new_id")).cte("one")
    holders = (select(MEMBERSHIP.c.id.label("m_id"), MEMBERSHIP.c.person_id,
                      CONTACT.c.id.label("c_id"), CONTACT.c.contact_id)
               .select_from(_HOLDERS_JOIN).where(_HOLDERS_AT).subquery("holders"))
    return Hot(select(one.c.owner_id, one.c.new_id, holders.c.person_id, holders.c.contact_id)
               .select_from(one.outerjoin(holders, true()))
               .order_by(holders.c.m_id, holders.c.c_id))


_HOLDERS_OWNER_AND_NEXT_ID = {d: _holders_owner_and_next_id(d) for d in ("sqlite", "postgresql")}
INSERT_PERSON = insert(PERSON)
INSERT_CONTACT = insert(CONTACT)
INSERT_MEMBERSHIP = insert(MEMBERSHIP)
# The same, hot (bot.hot), with every column given: a new tenant's rows on SQLite.
HOT_PERSON, HOT_CONTACT, HOT_MEMBERSHIP = (
    Hot(insert(t).values({c.key: bindparam(c.key, type_=c.type) for c in t.c
                          if c.key != "id" or t is PERSON}), identity=True)
    for t in (PERSON, CONTACT, MEMBERSHIP))

_T = TypeVar("_T")


# session.info key: the objects known() attached, in order (see forget_known).
KNOWN = "tierbot_known"


def known(session: AsyncSession, obj: _T) -> _T:
    """An object whose row a Core INSERT just wrote, every column given: made persistent in
    the session as if loaded (no SQL), so the ORM code after it sees a normal object."""
    make_transient_to_detached(obj)
    session.add(obj)
    session.info.setdefault(KNOWN, []).append(obj)
    return obj


def known_mark(session: AsyncSession) -> int:
    """Where the list of known() objects stands (for forget_known after a SAVEPOINT)."""
    return len(session.info.get(KNOWN, ()))


def forget_known(session: AsyncSession, mark: int) -> None:
    """A SAVEPOINT rolled back: the rows of the objects known() attached since `mark` are
    gone, so the objects leave the session (the ORM rolls back only what it wrote itself;
    left in, a new row given the same id, as SQLite does, would clash with one of them)."""
    objects = session.info.get(KNOWN, [])
    for obj in objects[mark:]:
        if obj in session:
            session.expunge(obj)
    del objects[mark:]


async def find_by_contact(session: AsyncSession, *, transport: str, contact_id: str
                          ) -> Person | None:
    """The person a platform contact id belongs to, if any."""
    return (await session.execute(
        _BY_CONTACT, {"transport": transport, "contact_id": contact_id})).scalar_one_or_none()


async def find_by_contacts(session: AsyncSession, *, transport: str, contact_ids: Iterable[str]
                           ) -> dict[str, Person]:
    """find_by_contact for many contact ids in one query: contact id -> person (found ones)."""
    wanted = list(set(contact_ids))
    if not wanted:
        return {}
    rows = await session.execute(_BY_CONTACTS, {"transport": transport, "contact_ids": wanted})
    return {contact_id: person for contact_id, person in rows}


async def senders_and_roles(session: AsyncSession, *, transport: str,
                            contact_ids: Iterable[str]
                            ) -> dict[str, tuple[Person, list[HeldRole]]]:
    """find_by_contacts and each person's held_roles, in one query: contact id -> (person,
    roles), found ones only."""
    wanted = list(set(contact_ids))
    if not wanted:
        return {}
    return senders_from_rows(session, await _SENDERS_AND_ROLES.rows(
        session, {"transport": transport, "contact_ids": wanted}))


def senders_from_rows(session: AsyncSession, rows: Iterable[Sequence[Any]]
                      ) -> dict[str, tuple[Person, list[HeldRole]]]:
    """senders_and_roles' answer from its query's rows (SENDER_AND_ROLE_COLUMNS, in the
    memberships' order)."""
    out: dict[str, tuple[Person, list[HeldRole]]] = {}
    for contact_id, *person, role, node_id, parent_id, _membership_id in rows:
        found = out.get(contact_id)
        if found is None:
            found = out[contact_id] = (hot.loaded(session, Person, person), [])
        if role is not None:
            found[1].append(HeldRole(Role(role), node_id, parent_id))
    return out


async def lock_mobile(session: AsyncSession, mobile: str | None) -> None:
    """Hold this mobile's lock (bot.services.locks) until the transaction ends; taken before
    a look-up by mobile that creates a person when none is found. Two transactions at once
    (a tenant's 我回来了 and the landlord's 房东上报 返回 for one mobile, in two processes)
    would otherwise both find none and make two people and two stays (bench/LANES.md, F1). A
    unique index is no option: a shop owner of another name is deliberately a second person
    with the same mobile."""
    if mobile is not None:
        await locks.hold(session, "mobile:" + personal.blind_index("mobile", mobile))


async def id_by_mobile(session: AsyncSession, *, mobile: str) -> int | None:
    """find_by_mobile's id alone (no object loaded: usually there is none)."""
    return (await session.execute(
        _PERSON_ID_BY_MOBILE, {"bidx": personal.blind_index("mobile", mobile)})
    ).scalar_one_or_none()


async def find_by_mobile(session: AsyncSession, *, mobile: str) -> Person | None:
    """The person registered with this mobile number, if any (the oldest when several)."""
    return (await session.execute(
        _BY_MOBILE, {"bidx": personal.blind_index("mobile", mobile)})).scalar_one_or_none()


async def held_roles(session: AsyncSession, *, person_id: int) -> list[HeldRole]:
    """Every role the person holds, with each node's parent (so a tier up can be seen)."""
    rows = await session.execute(_HELD_ROLES, {"person_id": person_id})
    return [HeldRole(Role(role), node_id, parent_id) for role, node_id, parent_id in rows]


async def held_roles_of(session: AsyncSession, *, person_ids: Iterable[int]
                        ) -> dict[int, list[HeldRole]]:
    """held_roles for many people in one query (everyone asked for gets a list, maybe empty)."""
    wanted = list(set(person_ids))
    out: dict[int, list[HeldRole]] = {pid: [] for pid in wanted}
    if not wanted:
        return out
    rows = await session.execute(_HELD_ROLES_OF, {"person_ids": wanted})
    for person_id, role, node_id, parent_id in rows:
        out[person_id].append(HeldRole(Role(role), node_id, parent_id))
    return out


async def create_person(
    session: AsyncSession, *, name: str, now: datetime, mobile: str | None = None,
    id_number: str | None = None,
) -> Person:
    """A new person record (flushed for its id, then its numbers sealed to that row)."""
    person = Person(name=name, created_at=now)
    session.add(person)
    await session.flush()
    await personal.set_numbers(session, person, mobile=mobile, id_number=id_number)
    return person


async def owner_and_new_id(session: AsyncSession, *, mobile: str) -> tuple[int | None, int]:
    """id_by_mobile and an id for a new person (add_person's person_id), in one query. The
    new id is taken whether or not it is used (on PostgreSQL a sequence value is skipped)."""
    rows = await _OWNER_AND_NEXT_ID[session.bind.dialect.name].rows(
        session, {"bidx": personal.blind_index("mobile", mobile)})
    return rows[0][0], int(rows[0][1])


def person_row(*, person_id: int, name: str, now: datetime, mobile: str | None = None,
               id_number: str | None = None) -> dict[str, Any]:
    """A new person's row, every column, its numbers sealed to `person_id`."""
    values: dict[str, Any] = dict.fromkeys(PERSON.c.keys())
    values.update(id=person_id, name=name, created_at=now,
                  **personal.index_columns(mobile=mobile, id_number=id_number),
                  **personal.sealed_columns(person_id, mobile=mobile, id_number=id_number))
    return values


async def new_person_id(session: AsyncSession) -> int:
    """An id for a person row written with it (person_row)."""
    if session.bind.dialect.name == "postgresql":
        return int((await session.execute(_NEXT_PERSON_ID_PG)).scalar_one())
    return int((await session.execute(_NEXT_PERSON_ID_SQLITE)).scalar_one())


async def add_person(
    session: AsyncSession, *, name: str, now: datetime, mobile: str | None = None,
    id_number: str | None = None, person_id: int | None = None,
) -> Person:
    """create_person in one INSERT: the id is taken first, so the numbers are sealed to it
    before the row is written (no flush, no second write of the row). `person_id`: an id
    owner_and_new_id gave in this transaction, nothing written to `person` since."""
    if person_id is None:
        person_id = await new_person_id(session)
    values = person_row(person_id=person_id, name=name, now=now, mobile=mobile,
                        id_number=id_number)
    await session.execute(INSERT_PERSON, values, execution_options={IDENTITY_ROWS: {}})
    return known(session, Person(**values))


async def add_contact(session: AsyncSession, *, person_id: int, transport: str,
                      contact_id: str, now: datetime) -> None:
    """attach_contact as one Core INSERT, now."""
    await session.execute(
        INSERT_CONTACT, {"person_id": person_id, "transport": transport,
                          "contact_id": contact_id, "created_at": now},
        execution_options={IDENTITY_ROWS: {"contacts": [(transport, contact_id)]}})


async def add_role(session: AsyncSession, *, person_id: int, node_id: int, role: Role,
                   now: datetime, new_person: bool = False) -> bool:
    """grant_role as Core statements, written now; False when they already had it."""
    params = {"person_id": person_id, "node_id": node_id, "role": role}
    if not new_person and (await session.execute(_HAS_ROLE, params)).first() is not None:
        return False
    await session.execute(INSERT_MEMBERSHIP, {**params, "created_at": now},
                          execution_options={IDENTITY_ROWS: {"roles": [person_id]}})
    return True


async def attach_contact(
    session: AsyncSession, *, person: Person, transport: str, contact_id: str, now: datetime,
    flush: bool = True,
) -> None:
    """Make this contact id identify the person (flush=False: with the session's next flush)."""
    session.add(Contact(person_id=person.id, transport=transport, contact_id=contact_id,
                        created_at=now))
    if flush:
        await session.flush()


async def grant_role(
    session: AsyncSession, *, person_id: int, node_id: int, role: Role, now: datetime,
    new_person: bool = False, flush: bool = True,
) -> bool:
    """Give the person a role at a node; False when they already had it.

    new_person: the person was created in this transaction and holds no role yet (no need to
    look); flush=False: the membership is written with the session's next flush."""
    if not new_person:
        exists = (await session.execute(
            select(Membership.id).where(Membership.person_id == person_id,
                                        Membership.node_id == node_id, Membership.role == role)
        )).first()
        if exists:
            return False
    session.add(Membership(person_id=person_id, node_id=node_id, role=role, created_at=now))
    if flush:
        await session.flush()
    return True


async def holders(session: AsyncSession, *, node_id: int, role: Role) -> list[Person]:
    """The people holding a role at a node, oldest first."""
    return list((await session.execute(
        _HOLDERS, {"node_id": node_id, "role": role})).scalars())


async def holder_contacts(session: AsyncSession, *, node_id: int, role: Role, transport: str
                          ) -> tuple[list[int], list[str]]:
    """The ids of everyone holding a role at a node (oldest first) and their contact ids on
    one transport (for mentions), in one query."""
    return _holders_of(await _HOLDER_CONTACTS.rows(
        session, {"node_id": node_id, "role": role, "transport": transport}))


def _holders_of(rows: Iterable[Sequence[Any]]) -> tuple[list[int], list[str]]:
    """Rows ending in (holder id or None, contact id or None), holders oldest first: the
    holders' ids, each once, and their contact ids."""
    ids: list[int] = []
    contacts: list[str] = []
    for *_, person_id, contact_id in rows:
        if person_id is not None and (not ids or ids[-1] != person_id):
            ids.append(person_id)
        if contact_id is not None:
            contacts.append(contact_id)
    return ids, contacts


async def holder_contacts_and_owner(
    session: AsyncSession, *, node_id: int, role: Role, transport: str, mobile: str
) -> tuple[list[int], list[str], int | None, int]:
    """holder_contacts and owner_and_new_id in one query: the holders' ids and contact ids,
    the id of the person this mobile belongs to (or None) and an id for a new person."""
    rows = await _HOLDERS_OWNER_AND_NEXT_ID[session.bind.dialect.name].rows(session, {
        "node_id": node_id, "role": role, "transport": transport,
        "bidx": personal.blind_index("mobile", mobile)})
    ids, contacts = _holders_of(rows)
    return ids, contacts, rows[0][0], int(rows[0][1])


async def holder_contact_ids(session: AsyncSession, *, node_id: int, role: Role,
                             transport: str) -> list[str]:
    """The contact ids on one transport of everyone holding a role at a node, holders oldest
    first (their mentions, in one query)."""
    return list((await session.execute(
        _HOLDER_CONTACT_IDS, {"node_id": node_id, "role": role, "transport": transport}
    )).scalars())


async def contact_ids(session: AsyncSession, *, person_id: int, transport: str) -> list[str]:
    """The person's contact ids on one transport (for mentions)."""
    return list((await session.execute(
        _CONTACT_IDS, {"person_id": person_id, "transport": transport})).scalars())
