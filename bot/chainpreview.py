"""The import preview: what importing a chain file (people and the chain, XLSX or TOML/YAML)
would change, before it is applied. The preview runs the real import (bot/chainfile.py) in a
savepoint, reads what it wrote and rolls it back, so what is shown is what `apply` does; a
file with errors is refused whole, each error with its sheet row. Numbers are shown masked."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import chainfile, pii, texts
from bot.export_texts import Import as T
from bot.services import personal
from models import Contact, Enterprise, Group, Membership, Node, Person

# "people.3.mobile: message" from chainfile's validation
_PLACE = re.compile(r"^(people|nodes)\.(\d+)(?:\.([^:]*))?: (.*)$")
_SHEETS = {"people": "people", "nodes": "nodes"}


@dataclass(frozen=True, slots=True)
class Line:
    """One change or problem: its kind (a Chinese heading), where (sheet and row, when known)
    and what, numbers masked."""

    kind: str
    text: str
    sheet: str = ""
    row: int | None = None


@dataclass
class Preview:
    """What the file would change; `digest` names the file the preview was made of (apply
    refuses another)."""

    digest: str
    lines: list[Line] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Line]:
        """The problems: any one of them and nothing is applied."""
        return [line for line in self.lines if line.kind == T.ERROR]

    @property
    def changes(self) -> list[Line]:
        """What would be written."""
        return [line for line in self.lines if line.kind != T.ERROR]


def digest(path: Path) -> str:
    """The file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mask(text: str) -> str:
    return pii.mask_text(text)


def _rows_of(path: Path) -> dict[str, list[int]]:
    if path.suffix == ".xlsx":
        try:
            return chainfile.xlsx_row_numbers(path)
        except Exception:  # noqa: BLE001 - an unreadable file is reported by check()
            return {}
    return {}


def _problem(text: str, rows: dict[str, list[int]]) -> Line:
    """A validation problem with its sheet row (an XLSX file) or its list place."""
    found = _PLACE.match(text)
    if found is None:
        return Line(T.ERROR, _mask(text))
    sheet, index, where, message = found.groups()
    numbers = rows.get(sheet, [])
    row = numbers[int(index)] if int(index) < len(numbers) else None
    detail = f"{where}: {message}" if where else message
    if row is None:
        detail = f"{sheet}.{index}.{detail}"
    return Line(T.ERROR, _mask(detail), sheet=_SHEETS[sheet] if row else "", row=row)


def _row_of(rows: dict[str, list[int]], sheet: str, index: int) -> int | None:
    numbers = rows.get(sheet, [])
    return numbers[index] if index < len(numbers) else None


def _cross_checks(spec: chainfile.ChainSpec, rows: dict[str, list[int]]) -> list[Line]:
    """What validation of one row cannot see and the import would refuse: a person key twice,
    a parent not listed before its child, a role given to an unknown person, one mobile
    given to two people of the file."""
    out: list[Line] = []
    keys: dict[str, int] = {}
    mobiles: dict[str, str] = {}
    for i, person in enumerate(spec.people):
        row = _row_of(rows, "people", i)
        if person.key in keys:
            out.append(Line(T.ERROR, f"人员编号「{person.key}」重复", "people", row))
        keys[person.key] = i
        if person.mobile:
            other = mobiles.setdefault(person.mobile, person.key)
            if other != person.key:
                out.append(Line(T.ERROR, f"手机号 {pii.mask_mobile(person.mobile)} 同时属于"
                                         f"「{other}」和「{person.key}」", "people", row))
    seen: set[str] = set()
    for i, node in enumerate(spec.nodes):
        row = _row_of(rows, "nodes", i)
        if node.parent is not None and node.parent not in seen:
            out.append(Line(T.ERROR, f"「{node.name}」的上级「{node.parent}」不在它之前",
                            "nodes", row))
        for role, holders in node.roles.items():
            for key in holders:
                if key not in keys:
                    out.append(Line(T.ERROR, f"「{node.name}」的{texts.ROLE_NAMES.get(role, role)}"
                                             f"「{key}」不在人员表中",
                                    "nodes", row))
        seen.update(k for k in (node.key, node.name) if k)
    return out


async def _max_id(session: AsyncSession, column: object) -> int:
    return int((await session.execute(select(func.coalesce(func.max(column), 0)))  # type: ignore[call-overload]
                ).scalar_one())


async def _conflicts(session: AsyncSession, spec: chainfile.ChainSpec,
                     rows: dict[str, list[int]]) -> list[Line]:
    """People of the file found in the store (by contact id, else by mobile) whose name or
    mobile differs: the import keeps what is stored, so the difference is shown, not applied."""
    out: list[Line] = []
    for i, pspec in enumerate(spec.people):
        found: Person | None = None
        for contact in pspec.contacts:
            transport, cid = contact.split(":", 1) if ":" in contact else (spec.transport,
                                                                            contact)
            found = (await session.execute(
                select(Person).join(Contact, Contact.person_id == Person.id)
                .where(Contact.transport == transport, Contact.contact_id == cid)
            )).scalars().first()
            if found is not None:
                break
        if found is None and pspec.mobile:
            found = (await session.execute(select(Person).where(
                personal.matches("mobile", pspec.mobile)).order_by(Person.id))).scalars().first()
        if found is None:
            continue
        row = _row_of(rows, "people", i)
        if found.name != pspec.name:
            out.append(Line(T.CHANGED, f"姓名：现有 {pii.mask_name(found.name)}，文件 "
                                       f"{pii.mask_name(pspec.name)}（保留现有）", "people", row))
        if pspec.mobile and found.mobile_bidx and found.mobile_bidx != personal.index_columns(
                mobile=pspec.mobile)["mobile_bidx"]:
            out.append(Line(T.CHANGED, f"手机号：现有 {found.mobile_mask}，文件 "
                                       f"{pii.mask_mobile(pspec.mobile)}（保留现有）",
                            "people", row))
    return out


async def preview(session: AsyncSession, path: Path, *, now: datetime) -> Preview:
    """What importing `path` would change (nothing is kept: the import runs in a savepoint
    that is rolled back)."""
    result = Preview(digest=digest(path))
    rows = _rows_of(path)
    try:
        spec, problems = chainfile.check(path)
    except chainfile.ChainFileError as exc:
        result.lines.append(Line(T.ERROR, _mask(str(exc).replace(str(path), path.name))))
        return result
    result.lines.extend(_problem(p, rows) for p in problems)
    if spec is None:
        return result
    result.lines.extend(_cross_checks(spec, rows))
    if result.errors:
        return result
    result.lines.extend(await _conflicts(session, spec, rows))
    before = {name: await _max_id(session, column) for name, column in (
        ("node", Node.id), ("person", Person.id), ("group", Group.id),
        ("role", Membership.id))}
    enterprises: dict[int, tuple[object, ...]] = {
        e.node_id: (e.address, e.headcount, e.status, e.liaison_id)
                   for e in (await session.execute(select(Enterprise))).scalars()}
    nested = await session.begin_nested()
    try:
        try:
            result.counts = await chainfile.import_chain(session, spec, now=now)
        except chainfile.ChainFileError as exc:
            result.lines.append(Line(T.ERROR, _mask(str(exc))))
            return result
        result.lines.extend(await _written(session, before, enterprises))
    finally:
        await nested.rollback()
    return result


async def _written(session: AsyncSession, before: dict[str, int],
                   enterprises: dict[int, tuple[object, ...]]) -> list[Line]:
    """The rows the import wrote (ids above what there was), as lines."""
    out: list[Line] = []
    names = {n.id: n.name for n in (await session.execute(select(Node))).scalars()}
    for node in (await session.execute(select(Node).where(Node.id > before["node"])
                                       .order_by(Node.id))).scalars():
        parent = names.get(node.parent_id or 0, "—")
        out.append(Line(T.NEW_NODE, f"{node.name}（第{node.tier}级，上级 {parent}）"))
    for person in (await session.execute(select(Person).where(Person.id > before["person"])
                                         .order_by(Person.id))).scalars():
        out.append(Line(T.NEW_PERSON, f"{pii.mask_name(person.name)} "
                                      f"{person.mobile_mask or ''}".strip()))
    for group in (await session.execute(select(Group).where(Group.id > before["group"])
                                        .order_by(Group.id))).scalars():
        out.append(Line(T.NEW_GROUP, f"{group.title}（{names.get(group.node_id, '')}）"))
    for role, person_name, node_id in await session.execute(
            select(Membership.role, Person.name, Membership.node_id)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.id > before["role"]).order_by(Membership.id)):
        out.append(Line(T.NEW_ROLE, f"{pii.mask_name(person_name)}：{names.get(node_id, '')} "
                                    f"{texts.ROLE_NAMES.get(role, role)}"))
    for e in (await session.execute(select(Enterprise))).scalars():
        old = enterprises.get(e.node_id)
        new = (e.address, e.headcount, e.status, e.liaison_id)
        if old is not None and old != new:
            fields = [label for label, a, b in zip(("地址", "人数", "状态", "联络员"), old, new,
                                                   strict=True) if a != b]
            out.append(Line(T.CHANGED, f"{names.get(e.node_id, '')} 企业档案："
                                       f"{'、'.join(fields)}"))
    return out


async def apply(session: AsyncSession, path: Path, *, expected_digest: str, now: datetime
                ) -> dict[str, int]:
    """Import the file the preview was made of (the existing import path; importing it again
    changes nothing). ValueError when the file is not that one or has errors."""
    if digest(path) != expected_digest:
        raise ValueError(T.EXPIRED)
    spec, problems = chainfile.check(path)
    if spec is None or problems or _cross_checks(spec, {}):
        raise ValueError(T.HAS_ERRORS.format(n=max(1, len(problems))))
    return await chainfile.import_chain(session, spec, now=now)
