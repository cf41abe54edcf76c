"""Who belongs where: links a landlord confirms, and removals of roles, tenancies and contacts.

A contact id is attached to a person only by an invite code, the chain file, or a link the
person responsible confirms; a typed mobile number never attaches anything by itself. Whoever
may grant a role may take it away, and every removal is recorded (who, when, why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii, texts
from bot.domain import HeldRole, UserError
from bot.services import outbox, people, personal
from bot.services.chain import COMMANDING_ROLE, commanding_role
from bot.transports.base import RoomEvent
from models import (
    Contact,
    Group,
    LinkRequest,
    LinkStatus,
    Membership,
    Node,
    Person,
    Removal,
    RemovalKind,
    Role,
    TemperatureReading,
    TenantStay,
)

# Roles held at a child node that still put their holder in this node's group (a landlord and
# a shop captain sit in the team's tier-4 group).
SITS_ONE_UP = (Role.LANDLORD, Role.CAPTAIN)


async def community_of(session: AsyncSession, *, node: Node) -> Node:
    """The tier-2 node above (or at) `node`: whom people are told to ask; the node itself when
    it is above tier 2."""
    current = node
    while current.tier > 2 and current.parent_id is not None:
        parent = await session.get(Node, current.parent_id)
        if parent is None:
            break
        current = parent
    return current


async def mobile_taken(session: AsyncSession, *, node: Node) -> UserError:
    """The answer to a mobile that may not be used here: no name, no initial, whom to ask."""
    community = await community_of(session, node=node)
    return UserError(texts.Identity.MOBILE_TAKEN.format(community=community.name))


async def belongs_elsewhere(session: AsyncSession, *, person: Person, node: Node,
                            now: datetime) -> bool:
    """Whether the person holds a role other than tenant, or is a tenant of another node (a
    role there, or a stay there not ended): their mobile is then never used at `node`."""
    for held in await people.held_roles(session, person_id=person.id):
        if held.role != Role.TENANT or held.node_id != node.id:
            return True
    elsewhere = (await session.execute(
        select(TenantStay.id).where(TenantStay.tenant_id == person.id,
                                    TenantStay.node_id != node.id,
                                    TenantStay.ended_at.is_(None),
                                    TenantStay.watch_until > now).limit(1))).first()
    return elsewhere is not None


async def _has_contact(session: AsyncSession, *, person_id: int) -> bool:
    return (await session.execute(
        select(Contact.id).where(Contact.person_id == person_id).limit(1))).first() is not None


async def _registered_here(session: AsyncSession, *, person_id: int, node_id: int) -> bool:
    tenant = (await session.execute(
        select(Membership.id).where(Membership.person_id == person_id,
                                    Membership.node_id == node_id,
                                    Membership.role == Role.TENANT).limit(1))).first()
    if tenant is not None:
        return True
    stay = (await session.execute(
        select(TenantStay.id).where(TenantStay.tenant_id == person_id,
                                    TenantStay.node_id == node_id,
                                    TenantStay.ended_at.is_(None)).limit(1))).first()
    return stay is not None


async def may_claim(session: AsyncSession, *, person: Person, node: Node, now: datetime
                    ) -> bool:
    """Whether a new contact typing this person's mobile at `node` may be offered to the
    landlord as that person: a tenant registered here, of nowhere else, with no contact yet."""
    if await belongs_elsewhere(session, person=person, node=node, now=now):
        return False
    if await _has_contact(session, person_id=person.id):
        return False
    return await _registered_here(session, person_id=person.id, node_id=node.id)


async def open_link(session: AsyncSession, *, node: Node, person: Person, claimant: Person,
                    transport: str, contact_id: str, now: datetime) -> LinkRequest:
    """Ask the landlord: is this new contact (now the unconfirmed `claimant`) `person`?"""
    request = LinkRequest(node_id=node.id, person_id=person.id, claimant_id=claimant.id,
                          transport=transport, contact_id=contact_id,
                          status=LinkStatus.PENDING, created_at=now)
    session.add(request)
    await session.flush()
    return request


async def pending_claim(session: AsyncSession, *, claimant_id: int, person_id: int
                        ) -> LinkRequest | None:
    """The open link request of this claimant for this person, if any."""
    return (await session.execute(
        select(LinkRequest).where(LinkRequest.claimant_id == claimant_id,
                                  LinkRequest.person_id == person_id,
                                  LinkRequest.status == LinkStatus.PENDING).limit(1)
    )).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """A decided link request and the registered tenant it was about."""

    request: LinkRequest
    person: Person
    confirmed: bool


async def decide_link(session: AsyncSession, *, node: Node, request_id: int, by: Person,
                      confirm: bool, now: datetime) -> LinkDecision:
    """确认 N / 不是 N. Confirmed: the contact now identifies the registered tenant, and what
    the unconfirmed record reported (its stay's readings) moves to the tenant's stay. Not
    confirmed: the unconfirmed record stays a tenant of its own (without the mobile). The
    request's row is locked and read afresh: of 确认 and 不是 at once (two groups of one
    node), the second finds it decided."""
    request = (await session.execute(
        select(LinkRequest).where(LinkRequest.id == request_id, LinkRequest.node_id == node.id,
                                  LinkRequest.status == LinkStatus.PENDING)
        .with_for_update().execution_options(populate_existing=True)
    )).scalar_one_or_none()
    if request is None:
        raise UserError(texts.Identity.LINK_UNKNOWN.format(id=request_id))
    person = await session.get(Person, request.person_id)
    assert person is not None
    request.decided_at = now
    request.decided_by_id = by.id
    if not confirm:
        request.status = LinkStatus.REJECTED
        await session.flush()
        return LinkDecision(request, person, False)
    contact = (await session.execute(
        select(Contact).where(Contact.transport == request.transport,
                              Contact.contact_id == request.contact_id,
                              Contact.person_id == request.claimant_id))).scalar_one_or_none()
    if contact is None or await _has_contact(session, person_id=person.id):
        # The contact was unlinked meanwhile, or the tenant got a contact another way.
        raise UserError(texts.Identity.LINK_STALE.format(id=request_id))
    request.status = LinkStatus.CONFIRMED
    contact.person_id = person.id
    await people.grant_role(session, person_id=person.id, node_id=node.id, role=Role.TENANT,
                            now=now)
    claimant = await session.get(Person, request.claimant_id)
    assert claimant is not None
    await personal.copy_numbers(session, source=claimant, target=person, kinds=["id_number"])
    await _merge_stays(session, node=node, claimant=claimant, person=person, now=now)
    # The unconfirmed record keeps its history but no longer belongs anywhere.
    await session.execute(delete(Membership).where(Membership.person_id == claimant.id))
    await session.flush()
    return LinkDecision(request, person, True)


async def _merge_stays(session: AsyncSession, *, node: Node, claimant: Person, person: Person,
                       now: datetime) -> None:
    current = (await session.execute(
        select(TenantStay).where(TenantStay.tenant_id == person.id,
                                 TenantStay.node_id == node.id,
                                 TenantStay.ended_at.is_(None))
        .order_by(TenantStay.arrived_at.desc(), TenantStay.id.desc()).limit(1)
    )).scalar_one_or_none()
    claimed = list((await session.execute(
        select(TenantStay).where(TenantStay.tenant_id == claimant.id,
                                 TenantStay.node_id == node.id,
                                 TenantStay.ended_at.is_(None)).order_by(TenantStay.id)
    )).scalars())
    for stay in claimed:
        if current is None:
            stay.tenant_id = person.id  # the tenant's own return, told by themselves
            current = stay
            continue
        # The same return told by both sides: one stay, the tenant's side filled in.
        await session.execute(update(TemperatureReading)
                              .where(TemperatureReading.stay_id == stay.id)
                              .values(stay_id=current.id))
        current.self_reported_at = current.self_reported_at or stay.self_reported_at
        current.fever = current.fever or stay.fever
        stay.ended_at = now
    await session.execute(update(TemperatureReading)
                          .where(TemperatureReading.by_id == claimant.id)
                          .values(by_id=person.id))


# --- removals ------------------------------------------------------------------------------


async def record_removal(
    session: AsyncSession, *, kind: RemovalKind, person_id: int, via: str, reason: str,
    now: datetime, by: Person | None = None, node_id: int | None = None,
    role: Role | None = None, contact_id: str | None = None,
) -> Removal:
    """One line of the removal record."""
    removal = Removal(kind=kind, person_id=person_id, node_id=node_id,
                      role=str(role) if role is not None else None, contact_id=contact_id,
                      by_id=by.id if by is not None else None, via=via,
                      reason=reason[:200], at=now)
    session.add(removal)
    return removal


async def _end_stays(session: AsyncSession, *, person_id: int, node_id: int,
                     now: datetime) -> None:
    await session.execute(update(TenantStay).where(
        TenantStay.tenant_id == person_id, TenantStay.node_id == node_id,
        TenantStay.ended_at.is_(None)).values(ended_at=now))


async def remove_roles(
    session: AsyncSession, *, person: Person, roles: list[HeldRole], via: str, reason: str,
    now: datetime, by: Person | None = None,
) -> list[HeldRole]:
    """Take these roles away (a tenant role ends the stays there too); each one recorded."""
    for held in roles:
        await session.execute(delete(Membership).where(
            Membership.person_id == person.id, Membership.node_id == held.node_id,
            Membership.role == held.role))
        if held.role == Role.TENANT:
            await _end_stays(session, person_id=person.id, node_id=held.node_id, now=now)
        await record_removal(session, kind=RemovalKind.ROLE, person_id=person.id,
                             node_id=held.node_id, role=held.role, by=by, via=via,
                             reason=reason, now=now)
    await session.flush()
    return roles


def roles_in_group(held: list[HeldRole], node: Node) -> list[HeldRole]:
    """The roles that put their holder in this node's group (see Context.roles)."""
    return [h for h in held if h.node_id == node.id
            or (h.parent_id == node.id and h.role in SITS_ONE_UP)]


async def find_member(session: AsyncSession, *, node: Node, target: str,
                      contact_ids: tuple[str, ...], transport: str
                      ) -> tuple[Person, list[HeldRole]]:
    """The person a 移除 names (by @mention, else by registered name) with their roles in
    this node's group; UserError when nobody there matches."""
    candidates: list[Person] = []
    if contact_ids:
        found = await people.find_by_contacts(session, transport=transport,
                                              contact_ids=contact_ids)
        candidates = list({p.id: p for p in found.values()}.values())
    if not candidates:
        candidates = list((await session.execute(
            select(Person).where(Person.name == target).order_by(Person.id))).scalars())
    roles = await people.held_roles_of(session, person_ids=[p.id for p in candidates])
    matches = [(p, here) for p in candidates if (here := roles_in_group(roles[p.id], node))]
    if len(matches) != 1:
        key = texts.Identity.REMOVE_UNKNOWN if not matches else texts.Identity.REMOVE_SEVERAL
        raise UserError(key.format(name=pii.mask_name(target)))
    return matches[0]


async def node_names(session: AsyncSession, *, ids: set[int]) -> dict[int, str]:
    """Node id -> name."""
    rows = await session.execute(select(Node.id, Node.name).where(Node.id.in_(ids)))
    return {node_id: name for node_id, name in rows}


def _commands_parent(held: list[HeldRole], node: Node) -> bool:
    if node.parent_id is None or node.tier < 2:
        return False
    role = COMMANDING_ROLE[node.tier - 1]
    return any(h.node_id == node.parent_id and h.role == role for h in held)


async def remove_member(
    session: AsyncSession, *, node: Node, by: Person, by_roles: list[HeldRole], target: str,
    contact_ids: tuple[str, ...], transport: str, reason: str, now: datetime,
) -> tuple[Person, list[HeldRole]]:
    """移除: the sender (who commands this group or the one above) takes away the target's
    roles in this group. The group's own commander is removed only from one tier up."""
    person, roles = await find_member(session, node=node, target=target,
                                      contact_ids=contact_ids, transport=transport)
    if person.id == by.id:
        raise UserError(texts.Identity.REMOVE_SELF)
    heads = [h for h in roles if h.node_id == node.id and h.role == commanding_role(node)]
    if heads and not _commands_parent(by_roles, node):
        raise UserError(texts.Identity.REMOVE_HEAD)
    await remove_roles(session, person=person, roles=roles, via="chat",
                       reason=reason or texts.Identity.REASON_NONE, now=now, by=by)
    return person, roles


async def end_tenancy(
    session: AsyncSession, *, node: Node, name: str, by: Person | None, via: str, reason: str,
    now: datetime,
) -> Person:
    """退租: the named tenant of this node no longer lives here (role and stays end)."""
    by_role = select(Membership.person_id).where(Membership.node_id == node.id,
                                                 Membership.role == Role.TENANT)
    by_stay = select(TenantStay.tenant_id).where(TenantStay.node_id == node.id,
                                                 TenantStay.ended_at.is_(None))
    found = list((await session.execute(
        select(Person).where(Person.name == name,
                             Person.id.in_(by_role) | Person.id.in_(by_stay))
        .order_by(Person.id))).scalars())
    if not found:
        raise UserError(texts.Identity.TENANT_UNKNOWN.format(name=pii.mask_name(name)))
    if len(found) > 1:
        raise UserError(texts.Identity.REMOVE_SEVERAL.format(name=pii.mask_name(name)))
    person = found[0]
    await session.execute(delete(Membership).where(
        Membership.person_id == person.id, Membership.node_id == node.id,
        Membership.role == Role.TENANT))
    await _end_stays(session, person_id=person.id, node_id=node.id, now=now)
    await record_removal(session, kind=RemovalKind.TENANCY, person_id=person.id,
                         node_id=node.id, role=Role.TENANT, by=by, via=via,
                         reason=reason or texts.Identity.REASON_NONE, now=now)
    await session.flush()
    return person


async def unlink_contact(session: AsyncSession, *, transport: str, contact_id: str, via: str,
                         reason: str, now: datetime, by: Person | None = None) -> Person | None:
    """The contact id no longer identifies anyone (recorded); None when it identified nobody."""
    contact = (await session.execute(
        select(Contact).where(Contact.transport == transport, Contact.contact_id == contact_id)
    )).scalar_one_or_none()
    if contact is None:
        return None
    person = await session.get(Person, contact.person_id)
    await record_removal(session, kind=RemovalKind.CONTACT, person_id=contact.person_id,
                         contact_id=contact_id, by=by, via=via, reason=reason, now=now)
    await session.delete(contact)
    await session.flush()
    return person


async def member_left(session: AsyncSession, *, event: RoomEvent, group: Group,
                      now: datetime) -> int:
    """A member's contact left a bound group: nothing is removed, but whoever commands them is
    told (a tenant's landlord in the group itself; a commander's own commander one tier up).
    Returns how many notes were queued."""
    person = await people.find_by_contact(session, transport=event.transport,
                                          contact_id=event.member_id)
    if person is None:
        return 0
    node = await session.get(Node, group.node_id)
    assert node is not None
    roles = roles_in_group(await people.held_roles(session, person_id=person.id), node)
    if not roles:
        return 0
    names = await node_names(session, ids={h.node_id for h in roles})
    described = "、".join(texts.Identity.REMOVED_ROLE.format(
        node=names[h.node_id], role=texts.ROLE_NAMES[h.role]) for h in roles)
    text = texts.Identity.MEMBER_LEFT.format(name=pii.mask_name(person.name), roles=described,
                                             group=group.title)
    told: set[int] = set()
    queued = 0
    for held in roles:
        at = await session.get(Node, held.node_id)
        assert at is not None
        # Whoever commands the node commands its members; its commander answers one tier up.
        boss = at if held.role != commanding_role(at) else (
            await session.get(Node, at.parent_id) if at.parent_id is not None else None)
        if boss is None or boss.id in told:
            continue
        told.add(boss.id)
        mentions: list[str] = []
        for commander in await people.holders(session, node_id=boss.id,
                                              role=commanding_role(boss)):
            if commander.id != person.id:
                mentions += await people.contact_ids(session, person_id=commander.id,
                                                     transport=event.transport)
        queued += await outbox.queue_to_node(session, node_id=boss.id, text=text,
                                             source="member_left", now=now, mentions=mentions)
    return queued


# --- administrators: the CLI and the chain file ----------------------------------------------


async def remove_by_admin(session: AsyncSession, *, person: Person, node: Node | None,
                          role: Role | None, reason: str, now: datetime) -> list[HeldRole]:
    """`tierbot people remove`: the person's roles (at a node, of a kind, or all), recorded."""
    held = [h for h in await people.held_roles(session, person_id=person.id)
            if (node is None or h.node_id == node.id) and (role is None or h.role == role)]
    return await remove_roles(session, person=person, roles=held, via="cli", reason=reason,
                              now=now)


async def _file_person(session: AsyncSession, pspec: Any, transport: str) -> Person | None:
    # The person the import matched this entry to (contact, then mobile, then name alone).
    for ref in pspec.contacts:
        tr, cid = ref.split(":", 1) if ":" in ref else (transport, ref)
        found = await people.find_by_contact(session, transport=tr, contact_id=cid)
        if found is not None:
            return found
    if pspec.mobile:
        return await people.find_by_mobile(session, mobile=pspec.mobile)
    return (await session.execute(
        select(Person).where(Person.name == pspec.name, ~personal.has_number("mobile"))
        .order_by(Person.id).limit(1))).scalar_one_or_none()


async def prune_chain(session: AsyncSession, *, spec: Any, now: datetime) -> dict[str, int]:
    """`tierbot chain import --prune`, after the import: at every node the file lists, the
    roles it no longer lists are removed, and a listed person's contact ids on the file's
    transports that it no longer lists are unlinked; each removal recorded. Tenants come and
    go in chat (租客返回, 退租), so tenant roles are not pruned; nodes the file does not list
    are left alone."""
    persons: dict[str, Person] = {}
    for pspec in spec.people:
        found = await _file_person(session, pspec, spec.transport)
        if found is not None:
            persons[pspec.key] = found
    counts = {"roles": 0, "contacts": 0}
    nodes: dict[str, Node] = {}
    for nspec in spec.nodes:
        parent = nodes.get(nspec.parent) if nspec.parent is not None else None
        node = (await session.execute(select(Node).where(
            Node.name == nspec.name,
            Node.parent_id == parent.id if parent else Node.parent_id.is_(None)))
        ).scalar_one_or_none()
        if node is None:
            continue
        nodes[nspec.key or nspec.name] = nodes[nspec.name] = node
        listed = {(persons[k].id, Role(role)) for role, keys in nspec.roles.items()
                  for k in keys if k in persons}
        rows = (await session.execute(
            select(Membership.person_id, Membership.role).where(
                Membership.node_id == node.id, Membership.role != Role.TENANT))).all()
        for person_id, role in rows:
            if (person_id, Role(role)) in listed:
                continue
            person = await session.get(Person, person_id)
            assert person is not None
            await remove_roles(session, person=person,
                               roles=[HeldRole(Role(role), node.id, node.parent_id)],
                               via="import", reason=texts.Identity.PRUNED, now=now)
            counts["roles"] += 1
    for pspec in spec.people:
        person = persons.get(pspec.key)
        if person is None or not pspec.contacts:
            continue
        wanted = {tuple(ref.split(":", 1)) if ":" in ref else (spec.transport, ref)
                  for ref in pspec.contacts}
        transports = {tr for tr, _ in wanted}
        for contact in list((await session.execute(
                select(Contact).where(Contact.person_id == person.id))).scalars()):
            if contact.transport in transports and (
                    contact.transport, contact.contact_id) not in wanted:
                await unlink_contact(session, transport=contact.transport,
                                     contact_id=contact.contact_id, via="import",
                                     reason=texts.Identity.PRUNED, now=now)
                counts["contacts"] += 1
    return counts
