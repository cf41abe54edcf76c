"""The chain: nodes, bound groups, invite codes, import from a file and the printed tree."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot import texts
from bot.domain import UserError
from bot.services import people
from models import TIER_OF_KIND, Group, InviteCode, InviteKind, Node, NodeKind, Person, Role

# Nodes of the lowest tier (a landlord's tenants, a shop row) have no children.
LOWEST_TIER = max(TIER_OF_KIND.values())
# No 0/O, 1/I/L: codes are read off one phone and typed into another.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6

COMMANDING_ROLE: dict[int, Role] = {
    1: Role.COMMANDER, 2: Role.COMMANDER, 3: Role.COMMANDER, 4: Role.MEMBER, 5: Role.LANDLORD,
}


# Units whose group is commanded by someone other than the tier's usual commander.
COMMANDING_ROLE_OF_KIND: dict[str, Role] = {
    NodeKind.SHOP_ROW: Role.CAPTAIN,
    NodeKind.ENTERPRISE: Role.LIAISON,
    NodeKind.WORKGROUP: Role.LIAISON,
    NodeKind.PROJECT: Role.PROJECT_LEAD,
}


def commanding_role(node: Node) -> Role:
    """The role that commands a node's group (a shop row is commanded by its captain, an
    enterprise and its workshops and dorms by its liaison, a key project by its lead)."""
    return COMMANDING_ROLE_OF_KIND.get(node.kind) or COMMANDING_ROLE[node.tier]


def tier_under(*, name: str, kind: NodeKind, parent_tier: int | None) -> int:
    """The tier of a node of this kind under a parent of `parent_tier` (None: no parent);
    ValueError when it cannot hang there."""
    tier = TIER_OF_KIND[kind]
    if (parent_tier is None) != (tier == 1):
        raise ValueError(f"node {name!r}: a tier-{tier} node needs "
                         f"{'no parent' if tier == 1 else 'a parent'}")
    if parent_tier is not None and parent_tier != tier - 1:
        raise ValueError(f"node {name!r} (tier {tier}) cannot hang under tier {parent_tier}")
    return tier


async def create_node(
    session: AsyncSession, *, name: str, kind: NodeKind, parent: Node | None, now: datetime
) -> Node:
    """A new node; its tier follows from its kind and must be one below its parent's."""
    tier = tier_under(name=name, kind=kind, parent_tier=parent.tier if parent else None)
    node = Node(name=name, kind=kind, tier=tier, parent_id=parent.id if parent else None,
                created_at=now)
    session.add(node)
    await session.flush()
    return node


async def find_node(session: AsyncSession, *, ref: str) -> Node | None:
    """A node by id (digits) or by exact name."""
    stmt = select(Node).where(Node.id == int(ref)) if ref.isdigit() else (
        select(Node).where(Node.name == ref).order_by(Node.id).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


# Built once (a statement keeps its compiled form and cache key): every command asks it.
_GROUP_BY_ROOM = (select(Group, Node).join(Node, Node.id == Group.node_id)
                  .where(Group.transport == bindparam("transport"),
                         Group.room_id == bindparam("room_id")))


async def group_by_room(session: AsyncSession, *, transport: str, room_id: str) -> Group | None:
    """The group bound to a room, with its node loaded."""
    row = (await session.execute(
        _GROUP_BY_ROOM, {"transport": transport, "room_id": room_id})).first()
    if row is None:
        return None
    group, node = row
    set_committed_value(group, "node", node)  # loaded with it, not a change to flush
    return group


async def bind_group(
    session: AsyncSession, *, node: Node, transport: str, room_id: str, title: str,
    now: datetime, account: str = "",
) -> Group:
    """Bind a chat room to a node."""
    group = Group(node_id=node.id, transport=transport, room_id=room_id, title=title,
                  account=account, created_at=now)
    session.add(group)
    await session.flush()
    return group


async def issue_invite(
    session: AsyncSession, *, node: Node, kind: InviteKind, role: Role | None, now: datetime,
    ttl: timedelta, channel: str = "", fallback: str = "",
) -> InviteCode:
    """A fresh single-use code for a person's role at a node, or for binding a room to it
    (sent to by `channel`, else by the account that sees the code; `fallback` for failover)."""
    if (kind == InviteKind.PERSON) != (role is not None):
        raise ValueError("a person invite needs a role; a group invite takes none")
    if kind == InviteKind.PERSON and (channel or fallback):
        raise ValueError("only a group invite names a channel")
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        taken = (await session.execute(
            select(InviteCode.id).where(InviteCode.code == code))).first()
        if not taken:
            break
    invite = InviteCode(code=code, kind=kind, node_id=node.id, role=role, created_at=now,
                        expires_at=now + ttl, channel=channel, fallback=fallback)
    session.add(invite)
    await session.flush()
    return invite


class WrongInviteCode(UserError):
    """No invite has this code (counted against the contact's tries)."""


async def _take_invite(
    session: AsyncSession, *, code: str, kind: InviteKind, now: datetime, used_by: str
) -> tuple[InviteCode, Node]:
    # The code's row locked (PostgreSQL; SQLite has one writer at a time) and read afresh:
    # another transaction redeeming it at the same moment waits for this one to end, then
    # finds it used, instead of overwriting it (one code, two people).
    row = (await session.execute(
        select(InviteCode, Node).join(Node, Node.id == InviteCode.node_id)
        .where(InviteCode.code == code.upper())
        .with_for_update(of=InviteCode)
        .execution_options(populate_existing=True)
    )).first()
    if row is None:
        raise WrongInviteCode(texts.Bind.UNKNOWN)
    invite, node = row
    if invite.kind != kind:
        wrong = texts.Bind.IS_GROUP_CODE if invite.kind == InviteKind.GROUP else (
            texts.Bind.IS_PERSON_CODE)
        raise UserError(wrong.format(code=invite.code))
    if invite.used_at is not None:
        raise UserError(texts.Bind.USED.format(code=invite.code))
    if invite.expires_at <= now:
        raise UserError(texts.Bind.EXPIRED.format(code=invite.code))
    invite.used_at = now
    invite.used_by = used_by
    return invite, node


@dataclass(frozen=True, slots=True)
class PersonBinding:
    """The outcome of 绑定: who, which role where, and whether it was new."""

    person: Person
    node: Node
    role: Role
    created: bool


async def redeem_person_invite(
    session: AsyncSession, *, code: str, transport: str, contact_id: str, display_name: str,
    known: Person | None, now: datetime,
) -> PersonBinding:
    """绑定: the writer's contact id gets the invite's role at its node (single use)."""
    invite, node = await _take_invite(session, code=code, kind=InviteKind.PERSON, now=now,
                                      used_by=f"{transport}:{contact_id}")
    person = known
    if person is None:
        # The display name only labels the new record; the contact id is the identity.
        person = await people.create_person(session, name=display_name or contact_id, now=now)
        await people.attach_contact(session, person=person, transport=transport,
                                    contact_id=contact_id, now=now)
    assert invite.role is not None  # a person invite always names its role
    role = Role(invite.role)
    created = await people.grant_role(session, person_id=person.id, node_id=node.id, role=role,
                                      now=now)
    if not created:
        raise UserError(texts.Bind.PERSON_ALREADY.format(node=node.name,
                                                         role=texts.ROLE_NAMES[role]))
    return PersonBinding(person, node, role, created)


async def redeem_group_invite(
    session: AsyncSession, *, code: str, transport: str, room_id: str, title: str, now: datetime,
    account: str = "",
) -> Group:
    """绑定群: the room the code is written in is bound to the invite's node (single use)."""
    bound = await group_by_room(session, transport=transport, room_id=room_id)
    if bound is not None:
        raise UserError(texts.Bind.GROUP_ALREADY.format(node=bound.node.name))
    invite, node = await _take_invite(session, code=code, kind=InviteKind.GROUP, now=now,
                                      used_by=f"{transport}:{room_id}")
    # The invite's channel wins over the account that saw the code: a WeChat group whose
    # staff robot posts to it is bound by the code typed on WeChat.
    group = await bind_group(session, node=node, transport=transport, room_id=room_id,
                             title=title or node.name, now=now,
                             account=invite.channel or account)
    group.fallback_account = invite.fallback
    group.node = node
    return group


async def is_empty(session: AsyncSession) -> bool:
    """Whether no node exists yet."""
    return not (await session.execute(select(func.count(Node.id)))).scalar_one()


async def commanders(session: AsyncSession, *, node: Node) -> list[Person]:
    """Who commands a node."""
    return await people.holders(session, node_id=node.id, role=commanding_role(node))


async def all_nodes(session: AsyncSession) -> list[Node]:
    """Every node, in creation order."""
    return list((await session.execute(select(Node).order_by(Node.id))).scalars())


@dataclass(frozen=True, slots=True)
class Subtree:
    """A node and everything below it, as a read filters on it: `select(down_to)` gives the
    ids only down to the tier the read's rows hang on. A city's subtree is 100,000 ids, all
    but a few hundred of them tier-5 nodes (landlords, shop rows): counting teams, members,
    enterprises or projects need not gather those (SQLite builds the IN list again for every
    statement)."""

    root_id: int
    tier: int
    # The root is the only one of the chain: every node is in its subtree, so a read of it
    # filters nothing (see whole_tree).
    everything: bool = False
    # The subtree's nodes above the lowest tier, loaded (see whole_tree), or None.
    upper: tuple[int, ...] | None = None

    def select(self, down_to: int = 0) -> Select[tuple[int]]:
        lowest = min(down_to or LOWEST_TIER, LOWEST_TIER)
        if self.upper is None:
            return subtree_select(self.root_id, self.tier, down_to=lowest)
        # The nodes above the lowest tier are known (a row hanging on a node no lower than
        # `lowest` is in the subtree when its node is among them), and the lowest tier is
        # their children: PostgreSQL's planner then expects as many rows as there are (for
        # nested levels it expected 255 children per parent, the average, and scanned every
        # node at each level).
        upper = select(Node.id).where(Node.id.in_(self.upper))
        if lowest < LOWEST_TIER:
            return upper
        return select(union_all(upper, select(Node.id).where(Node.parent_id.in_(self.upper)))
                      .subquery("subtree").c.id)


# A subtree's nodes above the lowest tier are loaded when there are no more than this many
# (a city: 20 communities, 200 teams and their landlords' groups, a few hundred units).
UPPER_LOADED = 5000


async def whole_tree(session: AsyncSession, node: Node) -> Subtree:
    """`node`'s subtree, knowing whether it is every node (a chain has one root as a rule:
    then a city's figures read whole tables instead of checking 100,000 ids) and, when they
    are few, the ids of its nodes above the lowest tier."""
    everything = node.parent_id is None and (await session.execute(
        select(func.count()).where(Node.parent_id.is_(None)))).scalar_one() == 1
    upper, level = [node.id], [node.id]
    for tier in range(node.tier + 1, LOWEST_TIER):  # level by level: each an index range
        # The tier too (a child is always one tier down): for the children of 200 teams,
        # PostgreSQL expected 255 each (the average over 100,000 leaves) and scanned every
        # node; the tier's own few hundred nodes it finds by their index.
        level = list((await session.execute(
            select(Node.id).where(Node.parent_id.in_(level), Node.tier == tier))).scalars())
        upper += level
        if len(upper) > UPPER_LOADED:
            return Subtree(node.id, node.tier, everything)
    return Subtree(node.id, node.tier, everything, tuple(upper))


def is_everything(node_ids: NodeIds) -> bool:
    """Whether these node ids are every node of the chain (a read of them filters nothing)."""
    return isinstance(node_ids, Subtree) and node_ids.everything


def in_nodes(column: Any, node_ids: NodeIds, *, down_to: int = 0, scan: bool = False,
             tiered: bool = False) -> ColumnElement[bool]:
    """`column IN node_ids`, as a read of a subtree filters its rows.

    - `down_to`: as for id_filter (the rows hang on nodes no lower than that tier).
    - `scan`: the table is sparse: it is scanned and each row's node checked, never probed
      once per id of the subtree (SQLite probes the column's index for each of 100,000 ids,
      even in an empty table; an expression no index serves makes it scan).
    - A subtree that is every node checks nothing, unless `down_to` leaves only a few
      hundred ids to check (fewer than a whole table's rows) and the statement does not
      limit its nodes' tier itself (`tiered`: it has a condition on `Node.tier` that an
      index serves; checking a few hundred ids again costs PostgreSQL the planning and the
      probing of each list, 20 ms for 统计's enterprises and projects)."""
    if is_everything(node_ids) and (down_to == 0 or down_to >= LOWEST_TIER or tiered):
        return true()
    return (column + 0 if scan else column).in_(id_filter(node_ids, down_to=down_to))


# Node ids as reads take them: a few ids as a collection, a subtree as a Subtree or a Select
# of ids (a city's subtree has more ids than a statement may carry parameters: asyncpg takes
# 32,767).
NodeIds = Collection[int] | Select[tuple[int]] | Subtree


def id_filter(node_ids: NodeIds, *, down_to: int = 0) -> list[int] | Select[tuple[int]]:
    """`node_ids` as IN takes them: a Select as it is (a subquery), a Subtree as one down to
    tier `down_to` (0: all of it; the rows read hang on nodes no lower), a collection as a
    list."""
    if isinstance(node_ids, Subtree):
        return node_ids.select(down_to)
    return node_ids if isinstance(node_ids, Select) else list(node_ids)


def subtree_select(root_id: int, tier: int | None = None, *,
                   down_to: int | None = None) -> Select[tuple[int]]:
    """The ids of a node and everything below it (for filters at city scale, where loading
    every node costs). Given the root's tier, one nested IN per tier below it (a child is
    always one tier down, the lowest tier has no children): each level is an index range of
    its parents' children, and nobody asks the leaves for children; `down_to`: no lower
    than this tier. Else a recursive query walking down the parent index (on PostgreSQL a
    hash join over every node per level)."""
    if tier is None:
        tree = select(Node.id).where(Node.id == root_id).cte("subtree", recursive=True)
        tree = tree.union_all(select(Node.id).where(Node.parent_id == tree.c.id))
        return select(tree.c.id)
    levels: list[Select[tuple[int]]] = [select(Node.id).where(Node.id == root_id),
                                        select(Node.id).where(Node.parent_id == root_id)]
    lowest = min(down_to or LOWEST_TIER, LOWEST_TIER)
    for _ in range(tier + 1, lowest):
        levels.append(select(Node.id).where(Node.parent_id.in_(levels[-1])))
    if tier >= lowest:
        levels = levels[:1]
    return select(union_all(*levels).subquery("subtree").c.id)


def subtrees_select(root_ids: Iterable[int]) -> Select[tuple[int]]:
    """The ids of these nodes and everything below them (overlapping subtrees give an id
    more than once: use it with IN)."""
    tree = select(Node.id).where(Node.id.in_(list(root_ids))).cte("subtree", recursive=True)
    tree = tree.union_all(select(Node.id).where(Node.parent_id == tree.c.id))
    return select(tree.c.id)


async def subtree_ids(session: AsyncSession, *, root_id: int) -> list[int]:
    """The ids of a node and everything below it, loaded (it reads every node: to filter a
    read, use `subtree_select`, a list of a city's ids is more than a statement may bind)."""
    nodes = (await session.execute(select(Node.id, Node.parent_id))).all()
    children: dict[int | None, list[int]] = {}
    for node_id, parent_id in nodes:
        children.setdefault(parent_id, []).append(node_id)
    out, todo = [], [root_id]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out
