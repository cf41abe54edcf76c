"""Chain files (TOML, YAML or XLSX): nodes, their groups, people and roles; import and print the
tree."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot.services import chain, people, personal
from models import (
    Building,
    Contact,
    Enterprise,
    EnterpriseStatus,
    Flat,
    Group,
    Membership,
    Node,
    NodeKind,
    Person,
    Role,
    Shop,
)


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


class EnterpriseSpec(_Strict):
    """An enterprise's file (一企一档); `liaison` is a person key. Its workshops and dorms are
    nodes of kind workgroup below it."""

    address: str = ""
    liaison: str | None = None
    headcount: int = Field(0, ge=0)
    status: EnterpriseStatus = EnterpriseStatus.CLOSED


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
    enterprise: EnterpriseSpec | None = None


class ChainSpec(_Strict):
    """A whole chain file."""

    transport: str = "sim"
    people: list[PersonSpec] = Field(default_factory=list)
    nodes: list[NodeSpec]


try:
    from python_calamine import CalamineError as _CalamineError
except ImportError:  # pragma: no cover - a dependency, but the other formats need not wait
    class _CalamineError(Exception):  # type: ignore[no-redef]
        """Stands in when python-calamine is missing."""

# The XLSX layout: one sheet per list, a header row naming the columns.
XLSX_ROLE_COLUMNS = tuple(str(r) for r in Role)


def _cells(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a mobile or a key typed as a number
    return str(value).strip()


def _split(value: str) -> list[str]:
    return [part for part in re.split(r"[,，、;；\s]+", value) if part]


def _rows(book: Any, name: str) -> list[dict[str, str]]:
    if name not in book.sheet_names:
        return []
    rows = book.get_sheet_by_name(name).to_python(skip_empty_area=True)
    if not rows:
        return []
    header = [_cells(h).lower() for h in rows[0]]
    return [{h: _cells(v) for h, v in zip(header, row, strict=False) if h}
            for row in rows[1:] if any(_cells(v) for v in row)]


def _load_xlsx(path: Path) -> dict[str, Any]:
    """A workbook as the dict a TOML/YAML file gives. Sheets: `people` (key, name, mobile,
    contacts), `nodes` (key, name, kind, parent, one column per role holding person keys,
    shops), `groups` (node, room, title, transport, account), optional `chain` (transport).
    Lists in a cell are separated by commas, 、 or spaces."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    raw: dict[str, Any] = {}
    for row in _rows(book, "chain"):
        if row.get("transport"):
            raw["transport"] = row["transport"]
    raw["people"] = [
        {k: v for k, v in {"key": r.get("key", ""), "name": r.get("name", ""),
                           "mobile": r.get("mobile") or None,
                           "contacts": _split(r.get("contacts", ""))}.items() if v is not None}
        for r in _rows(book, "people")]
    groups: dict[str, list[dict[str, str]]] = {}
    for r in _rows(book, "groups"):
        group = {"room": r.get("room", ""), "title": r.get("title", ""),
                 "account": r.get("account", "")}
        if r.get("transport"):
            group["transport"] = r["transport"]
        groups.setdefault(r.get("node", ""), []).append(group)
    raw["nodes"] = []
    for r in _rows(book, "nodes"):
        node: dict[str, Any] = {"name": r.get("name", ""), "kind": r.get("kind", "")}
        if r.get("key"):
            node["key"] = r["key"]
        if r.get("parent"):
            node["parent"] = r["parent"]
        roles = {role: _split(r[role]) for role in XLSX_ROLE_COLUMNS if r.get(role)}
        if roles:
            node["roles"] = roles
        if r.get("shops"):
            node["shops"] = _split(r["shops"])
        found = groups.get(r.get("key") or r.get("name", ""))
        if found:
            node["groups"] = found
        raw["nodes"].append(node)
    return raw


def load(path: Path) -> ChainSpec:
    """Read and validate a chain file (.toml, .yaml, .yml or .xlsx)."""
    try:
        raw: Any
        if path.suffix == ".xlsx":
            raw = _load_xlsx(path)
        elif path.suffix == ".toml":
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in (".yaml", ".yml"):
            with path.open(encoding="utf-8") as stream:
                # libyaml's C loader when PyYAML has it (about 10x the pure-Python one).
                raw = yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        else:
            raise ChainFileError(f"{path}: use a .toml, .yaml or .yml file, or an .xlsx workbook")
        return ChainSpec.model_validate(raw)
    except OSError as exc:
        raise ChainFileError(f"{path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, _CalamineError) as exc:
        raise ChainFileError(f"{path}: not valid: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ChainFileError(f"{path}: {problems}") from None


Progress = Callable[[str, int, int], None]
# Rows per INSERT statement and per IN (...) look-up.
_CHUNK = 2000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Ids:
    """Ids of rows to be written, known only after their bulk insert: a row is named by a
    negative placeholder until then."""

    def __init__(self) -> None:
        self.real: dict[int, int] = {}
        self._next = -1

    def placeholder(self) -> int:
        self._next -= 1
        return self._next + 1

    def __call__(self, ref: int) -> int:
        return ref if ref > 0 else self.real[ref]


async def _insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]],
                  refs: list[int] | None = None, ids: _Ids | None = None) -> None:
    """Bulk insert (many rows per statement); with refs, learn the new ids of placeholders."""
    table = model.__table__
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        if refs is None or ids is None:
            await session.execute(insert(table), chunk)
            continue
        new_ids = (await session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), chunk
        )).scalars().all()
        for ref, new_id in zip(refs[start:start + _CHUNK], new_ids, strict=True):
            ids.real[ref] = new_id


async def import_chain(session: AsyncSession, spec: ChainSpec, *, now: datetime,
                       progress: Progress | None = None) -> dict[str, int]:
    """Create what the file describes; existing nodes (same name and parent) are reused.

    People are found as before one by one would find them (by a contact id, else by mobile,
    else, known only by name, the record an earlier import made), nodes by name and parent,
    groups by room; what exists is read in bulk first, what is new is written in bulk
    (thousands of rows per statement), so 100,000 people take seconds. `progress(stage, done,
    total)` is called as the stages advance."""
    def step(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    ids = _Ids()
    # --- people --------------------------------------------------------------------------
    pairs_of = [[tuple(c.split(":", 1)) if ":" in c else (spec.transport, c)
                 for c in p.contacts] for p in spec.people]
    contact_owner: dict[tuple[str, str], int] = {}
    by_transport: dict[str, set[str]] = {}
    for pairs in pairs_of:
        for tr, cid in pairs:
            by_transport.setdefault(tr, set()).add(cid)
    for tr, cids in by_transport.items():
        for chunk in _chunks(sorted(cids)):
            for cid, person_id in await session.execute(
                    select(Contact.contact_id, Contact.person_id).where(
                        Contact.transport == tr, Contact.contact_id.in_(chunk))):
                contact_owner[(tr, cid)] = person_id
    step("people: looked up", 0, len(spec.people))
    # Mobiles are matched by their blind index (nothing stored is decrypted).
    index_of = {m: personal.index_columns(mobile=m)["mobile_bidx"]
                for m in {p.mobile for p in spec.people if p.mobile}}
    mobile_of = {bidx: m for m, bidx in index_of.items()}
    mobile_owner: dict[str, int] = {}
    for chunk in _chunks(sorted(mobile_of)):
        for bidx, person_id in await session.execute(
                select(Person.mobile_bidx, func.min(Person.id))
                .where(Person.mobile_bidx.in_(chunk)).group_by(Person.mobile_bidx)):
            mobile_owner[mobile_of[bidx]] = person_id
    bare_names = sorted({p.name for p, pairs in zip(spec.people, pairs_of, strict=True)
                         if not pairs and not p.mobile})
    name_owner: dict[str, int] = {}
    for chunk in _chunks(bare_names):
        for name, person_id in await session.execute(
                select(Person.name, func.min(Person.id)).where(
                    Person.name.in_(chunk), ~personal.has_number("mobile"),
                    ~Person.id.in_(select(Contact.person_id))).group_by(Person.name)):
            name_owner[name] = person_id
    persons: dict[str, int] = {}
    new_people: list[dict[str, Any]] = []
    new_refs: list[int] = []
    new_mobiles: list[str | None] = []
    new_contacts: list[tuple[int, str, str]] = []
    for pspec, pairs in zip(spec.people, pairs_of, strict=True):
        if pspec.key in persons:
            raise ChainFileError(f"people: key {pspec.key!r} appears twice")
        found = next((contact_owner[pair] for pair in pairs if pair in contact_owner), None)
        if found is not None:
            persons[pspec.key] = found
            continue
        if pspec.mobile:
            found = mobile_owner.get(pspec.mobile)
        elif not pairs:
            found = name_owner.get(pspec.name)
        if found is None:
            found = ids.placeholder()
            new_people.append({"name": pspec.name, "created_at": now, "mobile_bidx": None,
                               "mobile_mask": None} | personal.index_columns(mobile=pspec.mobile))
            new_mobiles.append(pspec.mobile)
            new_refs.append(found)
            if pspec.mobile:
                mobile_owner[pspec.mobile] = found
            elif not pairs:
                name_owner[pspec.name] = found
        persons[pspec.key] = found
        for tr, cid in pairs:
            contact_owner[(tr, cid)] = found
            new_contacts.append((found, tr, cid))
    await _insert(session, Person, new_people, new_refs, ids)
    # Sealed values are bound to the row id, known only now.
    await personal.seal_many(session, [(ids(ref), mobile, None) for ref, mobile
                                       in zip(new_refs, new_mobiles, strict=True) if mobile])
    step("people", len(spec.people), len(spec.people))
    await _insert(session, Contact, [
        {"person_id": ids(ref), "transport": tr, "contact_id": cid, "created_at": now}
        for ref, tr, cid in new_contacts])
    step("contacts", len(new_contacts), len(new_contacts))
    # --- nodes -----------------------------------------------------------------------------
    existing: dict[tuple[str, int | None], tuple[int, int]] = {
        (name, parent): (node_id, tier) for node_id, name, parent, tier in await session.execute(
            select(Node.id, Node.name, Node.parent_id, Node.tier))}
    nodes: dict[str, tuple[int, int]] = {}  # key or name -> (id or placeholder, tier)
    levels: dict[int, list[tuple[int, dict[str, Any], int | None]]] = {}
    planned: list[int] = []
    counts = {"nodes": 0, "groups": 0, "roles": 0, "people": len(persons)}
    for nspec in spec.nodes:
        parent = None
        if nspec.parent is not None:
            parent = nodes.get(nspec.parent)
            if parent is None:
                raise ChainFileError(f"node {nspec.name!r}: parent {nspec.parent!r} is not "
                                     "listed before it")
        parent_ref = parent[0] if parent else None
        here = existing.get((nspec.name, parent_ref))
        if here is None:
            try:
                tier = chain.tier_under(name=nspec.name, kind=nspec.kind,
                                        parent_tier=parent[1] if parent else None)
            except ValueError as exc:
                raise ChainFileError(str(exc)) from None
            ref = ids.placeholder()
            levels.setdefault(tier, []).append((ref, {
                "name": nspec.name, "kind": nspec.kind, "tier": tier, "created_at": now},
                parent_ref))
            here = existing[(nspec.name, parent_ref)] = (ref, tier)
            counts["nodes"] += 1
        nodes[nspec.key or nspec.name] = nodes[nspec.name] = here
        planned.append(here[0])
    # Parents first: one bulk insert per tier.
    done = 0
    for tier in sorted(levels):
        rows = [dict(row, parent_id=ids(parent) if parent is not None else None)
                for _, row, parent in levels[tier]]
        await _insert(session, Node, rows, [ref for ref, _, _ in levels[tier]], ids)
        done += len(rows)
        step("nodes", done, counts["nodes"])
    # --- groups and roles -----------------------------------------------------------------
    rooms = [(g.transport or spec.transport, g.room) for n in spec.nodes for g in n.groups]
    bound: set[tuple[str, str]] = set()
    for tr in {tr for tr, _ in rooms}:
        for chunk in _chunks(sorted({room for t, room in rooms if t == tr})):
            bound.update((tr, room) for room in (await session.execute(select(Group.room_id).where(
                Group.transport == tr, Group.room_id.in_(chunk)))).scalars())
    new_groups = []
    held = {(p, n, r) for p, n, r in await session.execute(
        select(Membership.person_id, Membership.node_id, Membership.role))}
    new_roles = []
    for nspec, ref in zip(spec.nodes, planned, strict=True):
        node_id = ids(ref)
        for gspec in nspec.groups:
            tr = gspec.transport or spec.transport
            if (tr, gspec.room) not in bound:
                bound.add((tr, gspec.room))
                new_groups.append({"node_id": node_id, "transport": tr, "room_id": gspec.room,
                                   "title": gspec.title, "account": gspec.account,
                                   "created_at": now})
        for role, keys in nspec.roles.items():
            for key in keys:
                if key not in persons:
                    raise ChainFileError(f"node {nspec.name!r}: role {role}: unknown person "
                                         f"{key!r}")
                person_id = ids(persons[key])
                if (person_id, node_id, role) not in held:
                    held.add((person_id, node_id, role))
                    new_roles.append({"person_id": person_id, "node_id": node_id, "role": role,
                                      "created_at": now})
    await _insert(session, Group, new_groups)
    counts["groups"] = len(new_groups)
    step("groups", len(new_groups), len(new_groups))
    await _insert(session, Membership, new_roles)
    counts["roles"] = len(new_roles)
    step("roles", len(new_roles), len(new_roles))
    for nspec, ref in zip(spec.nodes, planned, strict=True):
        if nspec.buildings or nspec.shops:
            node = await session.get(Node, ids(ref))
            assert node is not None
            await _buildings_and_shops(session, nspec, node, now=now)
        if nspec.enterprise is not None:
            await _enterprise_file(session, nspec, ids(ref), persons={
                k: ids(v) for k, v in persons.items()}, now=now)
    return counts


async def _enterprise_file(session: AsyncSession, nspec: NodeSpec, node_id: int, *,
                           persons: dict[str, int], now: datetime) -> None:
    """Create or update the enterprise's file (一企一档) from the chain file."""
    espec = nspec.enterprise
    assert espec is not None
    if nspec.kind != NodeKind.ENTERPRISE:
        raise ChainFileError(f"node {nspec.name!r}: an enterprise file needs kind enterprise")
    if espec.liaison is not None and espec.liaison not in persons:
        raise ChainFileError(f"node {nspec.name!r}: enterprise liaison: unknown person "
                             f"{espec.liaison!r}")
    file = (await session.execute(
        select(Enterprise).where(Enterprise.node_id == node_id))).scalar_one_or_none()
    if file is None:
        file = Enterprise(node_id=node_id, created_at=now)
        session.add(file)
    file.address, file.headcount, file.status = espec.address, espec.headcount, espec.status
    file.liaison_id = persons[espec.liaison] if espec.liaison else None
    file.updated_at = now
    await session.flush()


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
