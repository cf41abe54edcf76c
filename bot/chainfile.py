"""Chain files (TOML or YAML): nodes, their groups, people and roles; import and print the tree."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot.services import chain, people
from models import Building, Contact, Flat, Group, Membership, Node, NodeKind, Person, Role, Shop


class ChainFileError(Exception):
    """The chain file cannot be imported; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonSpec(_Strict):
    """A person: `key` is how nodes refer to them; contacts are 'id' or 'transport:id'."""

    key: str
    name: str
    mobile: str | None = None
    contacts: list[str] = Field(default_factory=list)

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, value: str | None) -> str | None:
        if value is not None and not pii.is_mobile(value):
            raise ValueError("not an 11-digit mainland mobile number")
        return value


class GroupSpec(_Strict):
    """A chat room bound to the node."""

    room: str
    title: str
    transport: str | None = None
    account: str = ""


class BuildingSpec(_Strict):
    """A building of a landlord's node and its flats."""

    name: str
    flats: list[str] = Field(default_factory=list)


class NodeSpec(_Strict):
    """A node; `parent` is the key (or name) of a node listed before it."""

    name: str
    kind: NodeKind
    key: str | None = None
    parent: str | None = None
    groups: list[GroupSpec] = Field(default_factory=list)
    roles: dict[Role, list[str]] = Field(default_factory=dict)
    buildings: list[BuildingSpec] = Field(default_factory=list)
    shops: list[str] = Field(default_factory=list)


class ChainSpec(_Strict):
    """A whole chain file."""

    transport: str = "sim"
    people: list[PersonSpec] = Field(default_factory=list)
    nodes: list[NodeSpec]


def load(path: Path) -> ChainSpec:
    """Read and validate a chain file (.toml, .yaml or .yml)."""
    try:
        raw: Any
        if path.suffix == ".toml":
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            raise ChainFileError(f"{path}: use a .toml, .yaml or .yml file")
        return ChainSpec.model_validate(raw)
    except OSError as exc:
        raise ChainFileError(f"{path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ChainFileError(f"{path}: not valid: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ChainFileError(f"{path}: {problems}") from None


async def _person(session: AsyncSession, spec: PersonSpec, *, transport: str,
                  now: datetime) -> Person:
    pairs = [c.split(":", 1) if ":" in c else [transport, c] for c in spec.contacts]
    for tr, cid in pairs:
        found = await people.find_by_contact(session, transport=tr, contact_id=cid)
        if found is not None:
            return found
    found = await people.find_by_mobile(session, mobile=spec.mobile) if spec.mobile else None
    if found is None and not pairs and not spec.mobile:
        # Known only by name: reuse the record an earlier import of this file made (no contact
        # id, no mobile), so a re-import does not duplicate the person.
        found = (await session.execute(
            select(Person).where(Person.name == spec.name, Person.mobile.is_(None),
                                 ~Person.id.in_(select(Contact.person_id)))
            .order_by(Person.id).limit(1))).scalar_one_or_none()
    person = found or await people.create_person(session, name=spec.name, mobile=spec.mobile,
                                                 now=now)
    for tr, cid in pairs:
        await people.attach_contact(session, person=person, transport=tr, contact_id=cid,
                                    now=now)
    return person


async def import_chain(session: AsyncSession, spec: ChainSpec, *, now: datetime) -> dict[str, int]:
    """Create what the file describes; existing nodes (same name and parent) are reused."""
    persons: dict[str, Person] = {}
    for pspec in spec.people:
        if pspec.key in persons:
            raise ChainFileError(f"people: key {pspec.key!r} appears twice")
        persons[pspec.key] = await _person(session, pspec, transport=spec.transport, now=now)
    nodes: dict[str, Node] = {}
    counts = {"nodes": 0, "groups": 0, "roles": 0, "people": len(persons)}
    for nspec in spec.nodes:
        parent = None
        if nspec.parent is not None:
            parent = nodes.get(nspec.parent)
            if parent is None:
                raise ChainFileError(f"node {nspec.name!r}: parent {nspec.parent!r} is not "
                                     "listed before it")
        node = (await session.execute(select(Node).where(
            Node.name == nspec.name,
            Node.parent_id == parent.id if parent else Node.parent_id.is_(None)))
        ).scalar_one_or_none()
        if node is None:
            try:
                node = await chain.create_node(session, name=nspec.name, kind=nspec.kind,
                                               parent=parent, now=now)
            except ValueError as exc:
                raise ChainFileError(str(exc)) from None
            counts["nodes"] += 1
        nodes[nspec.key or nspec.name] = nodes[nspec.name] = node
        for gspec in nspec.groups:
            tr = gspec.transport or spec.transport
            if await chain.group_by_room(session, transport=tr, room_id=gspec.room) is None:
                await chain.bind_group(session, node=node, transport=tr, room_id=gspec.room,
                                       title=gspec.title, account=gspec.account, now=now)
                counts["groups"] += 1
        for role, keys in nspec.roles.items():
            for key in keys:
                if key not in persons:
                    raise ChainFileError(f"node {nspec.name!r}: role {role}: unknown person "
                                         f"{key!r}")
                if await people.grant_role(session, person_id=persons[key].id, node_id=node.id,
                                           role=role, now=now):
                    counts["roles"] += 1
        await _buildings_and_shops(session, nspec, node, now=now)
    return counts


async def _buildings_and_shops(session: AsyncSession, nspec: NodeSpec, node: Node, *,
                               now: datetime) -> None:
    if nspec.buildings:
        landlords = await people.holders(session, node_id=node.id, role=Role.LANDLORD)
        if not landlords:
            raise ChainFileError(f"node {nspec.name!r}: buildings need a landlord role here")
        for bspec in nspec.buildings:
            building = (await session.execute(select(Building).where(
                Building.node_id == node.id, Building.name == bspec.name))).scalar_one_or_none()
            if building is None:
                building = Building(node_id=node.id, landlord_id=landlords[0].id,
                                    name=bspec.name, created_at=now)
                session.add(building)
                await session.flush()
                session.add_all(Flat(building_id=building.id, label=f) for f in bspec.flats)
    existing = set((await session.execute(
        select(Shop.name).where(Shop.node_id == node.id))).scalars())
    session.add_all(Shop(node_id=node.id, name=s, created_at=now)
                    for s in nspec.shops if s not in existing)
    await session.flush()


async def render_tree(session: AsyncSession) -> str:
    """The chain as an indented tree with each node's groups and commanders."""
    nodes = await chain.all_nodes(session)
    groups: dict[int, list[Group]] = {}
    for group in (await session.execute(select(Group).order_by(Group.id))).scalars():
        groups.setdefault(group.node_id, []).append(group)
    roles: dict[int, list[tuple[str, str]]] = {}
    for node_id, role, name in await session.execute(
        select(Membership.node_id, Membership.role, Person.name)
        .join(Person, Person.id == Membership.person_id).order_by(Membership.id)
    ):
        roles.setdefault(node_id, []).append((role, name))
    children: dict[int | None, list[Node]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node)
    contacts = (await session.execute(select(Contact.id))).all()
    lines: list[str] = []

    def walk(node: Node, depth: int) -> None:
        lead = chain.commanding_role(node)
        heads = [n for r, n in roles.get(node.id, []) if r == lead]
        others = len([1 for r, _ in roles.get(node.id, []) if r != lead])
        lines.append(f"{'  ' * depth}{node.name} [#{node.id} tier {node.tier} {node.kind}] "
                     f"{lead}: {', '.join(heads) or '-'}"
                     + (f"; +{others} others" if others else ""))
        for g in groups.get(node.id, []):
            lines.append(f"{'  ' * depth}  · group {g.title} ({g.transport}:{g.room_id})")
        for child in children.get(node.id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    lines.append(f"{len(nodes)} nodes, {sum(map(len, groups.values()))} groups, "
                 f"{len(contacts)} contact ids")
    return "\n".join(lines)
