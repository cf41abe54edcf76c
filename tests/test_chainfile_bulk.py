"""The bulk chain import: the same people, nodes, groups and roles as one-by-one look-ups
would give (reuse by contact id, mobile, name; within the file and against the store), XLSX
workbooks, and progress reports."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import chainfile
from bot.app import BotApp
from bot.chainfile import ChainFileError, ChainSpec, NodeSpec, PersonSpec
from bot.crypto import blind_index
from bot.services import personal
from models import Contact, Group, Membership, Node, NodeKind, Person, PointsTotal, Role
from tests.xlsx import write_xlsx

DEMO_CHAIN = Path(__file__).resolve().parent.parent / "bot" / "demo" / "chain.toml"


async def _import(bot: BotApp, spec: ChainSpec, **kw: object) -> dict[str, int]:
    async with bot.session() as s, s.begin():
        return await chainfile.import_chain(s, spec, now=bot.now(), **kw)  # type: ignore[arg-type]


# The mobiles this module uses, by blind index: a stored person's mobile is read back through
# its index (nothing is decrypted), so the expected tables below stay in plain numbers.
_MOBILES = set(re.findall(r"1[3-9][0-9]{9}", Path(__file__).read_text(encoding="utf-8")))


def _mobile(bidx: str | None) -> str | None:
    if bidx is None:
        return None
    known = {blind_index("mobile", m): m for m in _MOBILES}
    return known.get(bidx, f"unknown index {bidx}")


async def _people(bot: BotApp) -> list[tuple[str, str | None, tuple[str, ...]]]:
    async with bot.session() as s:
        contacts: dict[int, list[str]] = {}
        for person_id, tr, cid in await s.execute(
                select(Contact.person_id, Contact.transport, Contact.contact_id)):
            contacts.setdefault(person_id, []).append(f"{tr}:{cid}")
        return sorted((p.name, _mobile(p.mobile_bidx), tuple(sorted(contacts.get(p.id, []))))
                      for p in (await s.execute(select(Person))).scalars())


def _spec(people: list[dict[str, object]], roles: dict[str, list[str]]) -> ChainSpec:
    return ChainSpec.model_validate({
        "people": people,
        "nodes": [{"name": "福田街道", "kind": "subdistrict", "key": "d",
                   "groups": [{"room": "futian@chatroom", "title": "福田街道群"}],
                   "roles": roles}]})


async def test_people_are_reused_as_one_by_one_look_ups_would(bot: BotApp) -> None:
    # Already in the store: one with a contact id, one with a mobile, one known by name only.
    await _import(bot, _spec([
        {"key": "a", "name": "甲", "contacts": ["sim-a"]},
        {"key": "b", "name": "乙", "mobile": "13800138001"},
        {"key": "c", "name": "丙"},
    ], {"commander": ["a", "b", "c"]}))
    counts = await _import(bot, _spec([
        # Found by the contact id (its mobile changes nothing, no new contact is attached).
        {"key": "a2", "name": "甲", "mobile": "13800138009", "contacts": ["sim-x", "sim-a"]},
        # Found by mobile: the new contact id is attached to the existing person.
        {"key": "b2", "name": "乙", "mobile": "13800138001", "contacts": ["wx:b"]},
        # Found by name.
        {"key": "c2", "name": "丙"},
        # New, then found again in the same file by contact id, mobile and name.
        {"key": "d", "name": "丁", "contacts": ["sim-d"]},
        {"key": "d2", "name": "丁二", "contacts": ["sim-d"]},
        {"key": "e", "name": "戊", "mobile": "13800138005"},
        {"key": "e2", "name": "戊二", "mobile": "13800138005"},
        {"key": "f", "name": "己"},
        {"key": "f2", "name": "己"},
    ], {"commander": ["a2", "b2", "c2", "d", "d2", "e", "e2", "f", "f2"],
        "member": ["d2", "e2"]}))
    assert counts == {"nodes": 0, "groups": 0, "people": 9, "roles": 5}
    assert await _people(bot) == sorted([
        ("甲", None, ("sim:sim-a",)), ("乙", "13800138001", ("wx:b",)), ("丙", None, ()),
        ("丁", None, ("sim:sim-d",)), ("戊", "13800138005", ()), ("己", None, ())])


async def test_errors_name_the_place_and_write_nothing(bot: BotApp) -> None:
    with pytest.raises(ChainFileError, match="unknown person 'zz'"):
        await _import(bot, _spec([{"key": "a", "name": "甲"}], {"commander": ["a", "zz"]}))
    with pytest.raises(ChainFileError, match="key 'a' appears twice"):
        await _import(bot, _spec([{"key": "a", "name": "甲"}, {"key": "a", "name": "乙"}], {}))
    async with bot.session() as s:
        assert (await s.execute(select(func.count()).select_from(Person))).scalar_one() == 0


async def test_a_city_sized_file_in_bulk(bot: BotApp) -> None:
    """2,000 landlords under 20 teams: every node, group, person, contact and role once, the
    landlords placed for the ranking, and a second import changing nothing."""
    teams, per_team = 20, 100
    people = [{"key": "cmd", "name": "指挥长", "contacts": ["sim-cmd"]}]
    nodes: list[dict[str, object]] = [
        {"name": "街道", "kind": "subdistrict", "key": "d", "roles": {"commander": ["cmd"]},
         "groups": [{"room": "d@chatroom", "title": "街道群"}]},
        {"name": "社区", "kind": "community", "key": "c", "parent": "d",
         "groups": [{"room": "c@chatroom", "title": "社区群"}]}]
    for t in range(teams):
        nodes.append({"name": f"小组{t}", "kind": "team", "key": f"t{t}", "parent": "c"})
        nodes.append({"name": f"房东群{t}", "kind": "team_landlords", "key": f"f{t}",
                      "parent": f"t{t}", "groups": [{"room": f"f{t}@chatroom",
                                                     "title": f"房东群{t}"}]})
        for i in range(per_team):
            n = t * per_team + i
            people.append({"key": f"p{n}", "name": f"房东{n}",
                           "mobile": f"139{n:08d}", "contacts": [f"sim-p{n}"]})
            # Same names under different teams are different nodes.
            nodes.append({"name": f"{i}号楼", "kind": "landlord_tenants", "parent": f"f{t}",
                          "key": f"n{n}", "roles": {"landlord": [f"p{n}"]},
                          "groups": [{"room": f"n{n}@chatroom", "title": f"{i}号楼租客群"}]})
    spec = ChainSpec.model_validate({"people": people, "nodes": nodes})
    seen: list[tuple[str, int, int]] = []
    counts = await _import(bot, spec, progress=lambda *a: seen.append(a))
    total = teams * per_team
    assert counts == {"nodes": 2 + 2 * teams + total, "groups": 2 + teams + total,
                      "people": total + 1, "roles": total + 1}
    assert {stage for stage, _, _ in seen} >= {"people", "nodes", "groups", "roles"}
    assert ("nodes", counts["nodes"], counts["nodes"]) in seen
    async with bot.session() as s:
        assert (await s.execute(select(func.count()).select_from(Contact))).scalar_one() \
            == total + 1
        # Each landlord's node hangs under their own team's landlords' node.
        rows = (await s.execute(
            select(Person.name, Node.name, Node.parent_id, Group.room_id)
            .join(Membership, Membership.person_id == Person.id)
            .join(Node, Node.id == Membership.node_id)
            .join(Group, Group.node_id == Node.id)
            .where(Membership.role == Role.LANDLORD))).all()
        parents = dict((await s.execute(select(Node.id, Node.name))).all())
        assert len(rows) == total
        for person, node, parent, room in rows:
            n = int(person.removeprefix("房东"))
            assert (node, parents[parent], room) == (
                f"{n % per_team}号楼", f"房东群{n // per_team}", f"n{n}@chatroom")
        placed = (await s.execute(select(func.count()).select_from(PointsTotal).where(
            PointsTotal.scope2_id.is_not(None)))).scalar_one()
        assert placed == total
    again = await _import(bot, spec)
    assert again == {"nodes": 0, "groups": 0, "people": total + 1, "roles": 0}
    # The row triggers held off during the bulk write are back: a landlord added by a small
    # import afterwards is placed for the ranking by them.
    extra = spec.model_copy(update={
        "people": [*spec.people, PersonSpec(key="late", name="迟到房东")],
        "nodes": [*spec.nodes, NodeSpec(name="新楼", kind=NodeKind.LANDLORD_TENANTS,
                                        parent="f0", roles={Role.LANDLORD: ["late"]})]})
    assert (await _import(bot, extra))["roles"] == 1
    async with bot.session() as s:
        placed = (await s.execute(select(func.count()).select_from(PointsTotal).where(
            PointsTotal.scope2_id.is_not(None)))).scalar_one()
    assert placed == total + 1


async def test_xlsx_workbook_gives_the_demo_chain(bot: BotApp, tmp_path: Path) -> None:
    """The demo chain written as a workbook (sheets people, nodes, groups) loads to the same
    spec as its TOML file, buildings aside (a TOML/YAML feature)."""
    raw = tomllib.loads(DEMO_CHAIN.read_text(encoding="utf-8"))
    roles = [str(r) for r in Role]
    people = [["key", "name", "mobile", "contacts"]] + [
        [p["key"], p["name"], p.get("mobile"), ", ".join(p.get("contacts", []))]
        for p in raw["people"]]
    nodes = [["key", "name", "kind", "parent", *roles, "shops"]] + [
        [n.get("key"), n["name"], n["kind"], n.get("parent"),
         *[" ".join(n.get("roles", {}).get(r, [])) for r in roles], "、".join(n.get("shops", []))]
        for n in raw["nodes"]]
    groups = [["node", "room", "title", "transport", "account"]] + [
        [n.get("key") or n["name"], g["room"], g["title"], g.get("transport"), g.get("account")]
        for n in raw["nodes"] for g in n.get("groups", [])]
    sheets: dict[str, list[list[object]]] = {"people": people, "nodes": nodes,
                                             "groups": groups}
    if "transport" in raw:
        sheets["chain"] = [["transport"], [raw["transport"]]]
    path = write_xlsx(tmp_path / "chain.xlsx", sheets)
    expected = chainfile.load(DEMO_CHAIN)
    for node in expected.nodes:
        node.buildings = ()
    assert chainfile.load(path) == expected
    counts = await _import(bot, chainfile.load(path))
    assert counts == {"nodes": 7, "groups": 7, "people": 10, "roles": 11}


def test_broken_xlsx_is_a_chain_file_error(tmp_path: Path) -> None:
    path = tmp_path / "chain.xlsx"
    path.write_bytes(b"not a workbook")
    with pytest.raises(ChainFileError, match="chain.xlsx"):
        chainfile.load(path)


async def test_bulk_written_times_compare_like_the_orm_writes_them(bot: BotApp) -> None:
    """Rows written below the ORM store times as the ORM does (on SQLite, text with
    microseconds even when there are none), so range and equality look-ups find them."""
    now = bot.now()
    assert now.microsecond == 0
    counts = await _import(bot, _spec([{"key": "a", "name": "甲", "contacts": ["sim-a"]}],
                                      {"commander": ["a"]}))
    assert counts["roles"] == 1
    async with bot.session() as s:
        for model in (Person, Contact, Node, Group, Membership):
            found = (await s.execute(select(func.count()).select_from(model).where(
                model.created_at == now))).scalar_one()
            assert found == 1, model.__name__
            later = (await s.execute(select(func.count()).select_from(model).where(
                model.created_at > now))).scalar_one()
            assert later == 0, model.__name__


async def test_a_node_listed_twice_gets_each_role_once(bot: BotApp) -> None:
    # Roles of a new node are checked against each other only where the file lists the node
    # again (or the node existed): a holder named twice, and a node given in two places.
    spec = ChainSpec.model_validate({
        "people": [{"key": "a", "name": "甲"}, {"key": "b", "name": "乙"}],
        "nodes": [
            {"name": "福田街道", "kind": "subdistrict", "key": "d",
             "roles": {"commander": ["a", "a"]}},
            {"name": "长春社区", "kind": "community", "parent": "d",
             "roles": {"secretary": ["b", "b"]}},
            {"name": "福田街道", "kind": "subdistrict",
             "roles": {"commander": ["a", "b"], "member": ["b"]}}]})
    assert await _import(bot, spec) == {"nodes": 2, "groups": 0, "people": 2, "roles": 4}
    async with bot.session() as s:
        rows = sorted((await s.execute(
            select(Person.name, Node.name, Membership.role)
            .join(Membership, Membership.person_id == Person.id)
            .join(Node, Node.id == Membership.node_id))).all())
    assert rows == [("乙", "福田街道", Role.COMMANDER), ("乙", "福田街道", Role.MEMBER),
                    ("乙", "长春社区", Role.SECRETARY), ("甲", "福田街道", Role.COMMANDER)]
    assert await _import(bot, spec) == {"nodes": 0, "groups": 0, "people": 2, "roles": 0}


async def test_a_bulk_written_mobile_opens_to_the_number_for_its_row(bot: BotApp) -> None:
    await _import(bot, _spec([{"key": "a", "name": "甲", "mobile": "13800138001"},
                              {"key": "b", "name": "乙", "mobile": "13800138002"}],
                             {"commander": ["a", "b"]}))
    async with bot.session() as s, s.begin():
        people = (await s.execute(select(Person).order_by(Person.name))).scalars().all()
        shown = [(p.name, p.mobile_mask, _mobile(p.mobile_bidx),
                  await personal.reveal(s, p, "mobile", who="test", why="test", now=bot.now()))
                 for p in people]
    assert shown == [("乙", "138****8002", "13800138002", "13800138002"),
                     ("甲", "138****8001", "13800138001", "13800138001")]
