"""Identity: people, their contact ids and their roles at nodes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import HeldRole
from bot.services import personal
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


async def contact_ids(session: AsyncSession, *, person_id: int, transport: str) -> list[str]:
    """The person's contact ids on one transport (for mentions)."""
    return list((await session.execute(
        _CONTACT_IDS, {"person_id": person_id, "transport": transport})).scalars())
