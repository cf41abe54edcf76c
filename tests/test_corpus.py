"""Every line of the understanding corpus through the real pipeline (SQLite and PostgreSQL).

The corpus files are found by tests/corpus_harness.py: the shared corpus
(<repo>/../shared/corpus/understanding.tsv), tests/corpus/*.tsv, and the files or directories
named by TIERBOT_CORPUS. Adding a line adds a test; each `expected` kind is checked generically
against the database and what the bot sent, never line by line.
"""

from __future__ import annotations

import os
import re
import unicodedata

import pytest
from sqlalchemy import select

from bot import chainfile
from models import EnterpriseReport as EnterpriseReportRow
from models import (
    Group,
    LandlordReport,
    Node,
    OutboxMessage,
    Person,
    Role,
    TenantStay,
    Ticket,
    WorkCard,
    WorkerCard,
)
from tests.conftest import Chat, DemoChain
from tests.corpus_harness import (
    DEMO_CHAIN,
    DEMO_UNITS,
    REPORT_KINDS,
    Cast,
    Line,
    World,
    all_lines,
    corpus_files,
    count_rows,
    latest_reading,
    score_pattern,
)

CAST = Cast.load(DEMO_CHAIN, DEMO_UNITS)
LINES = all_lines()

def _params() -> list[object]:
    return [pytest.param(line, id=line.id) for line in LINES]


def test_the_shared_corpus_is_found():
    names = [f.name for f in corpus_files()]
    if "understanding.tsv" not in names:
        if os.environ.get("CI"):
            pytest.fail("CI must find ../shared/corpus/understanding.tsv next to the clone")
        pytest.skip("../shared/corpus/understanding.tsv is not next to this repository")
    assert len(LINES) >= 40


@pytest.mark.parametrize("line", _params())
async def test_corpus_line(line: Line, bot, chat: Chat, chain: DemoChain, transport, clock):
    world = World(bot, transport, CAST)
    await _load_units(bot)
    room = CAST.rooms[line.group]
    contact = CAST.contact(line.speaker)
    node = await world.node_of_room(room)
    if node.tier == 5:
        await world.start_home_watch(node, clock.now())
    setup = await _prepare(line, world, chat, node)
    people_before = await count_rows(bot, Person)
    mark = len(transport.sent)
    await chat.say(room, contact, line.message, name=line.speaker)
    sent = transport.sent[mark:]
    replies = [s for s in sent if s.room_id == room]
    context = f"{line.id} {line.message!r} -> sent {[(s.room_id, s.text) for s in sent]}"
    _check_no_numbers_echoed(line, sent, context)
    check = CHECKS[line.kind]
    await check(line, world, node, replies, sent, setup, people_before, context)


# --- preparing what a line needs ----------------------------------------------------------------


async def _load_units(app) -> None:
    """The demo's enterprise and key project on top of the demo chain (their groups speak)."""
    async with app.session() as s, s.begin():
        await chainfile.import_chain(s, chainfile.load(DEMO_UNITS), now=app.now())



async def _prepare(line: Line, world: World, chat: Chat, node: Node) -> dict[str, object]:
    if line.kind == "ack":
        return await _send_notice_reaching(world, chat, node)
    if line.kind == "answer":
        return await _open_tickets_below(world, chat, node, int(line.args[""]))
    return {}


async def _root(world: World, node: Node) -> Node:
    async with world.app.session() as s:
        current = await s.get(Node, node.id)
        assert current is not None
        while current.parent_id is not None:
            parent = await s.get(Node, current.parent_id)
            assert parent is not None
            current = parent
        s.expunge(current)
        return current


async def _send_notice_reaching(world: World, chat: Chat, node: Node) -> dict[str, object]:
    """The root commander sends a notice to every group below; it must reach this group."""
    root = await _root(world, node)
    [commander] = (await world.holders(root.id, Role.COMMANDER))[:1]
    [root_room] = (await world.rooms_of(root.id))[:1]
    contact = next(c for name, c in CAST.contacts.items() if name == commander.name)
    await chat.say(root_room, contact, "通知 请各单位按要求做好防疫工作", name=commander.name)
    rooms = await world.rooms_of(node.id)
    async with world.app.session() as s:
        rows = list((await s.execute(
            select(OutboxMessage).join(Group, Group.id == OutboxMessage.group_id)
            .where(Group.room_id.in_(rooms), OutboxMessage.notice_id.is_not(None)))).scalars())
    assert rows, f"the notice did not reach {node.name}"
    return {"outbox_ids": [r.id for r in rows]}


async def _open_tickets_below(world: World, chat: Chat, node: Node, n: int) -> dict[str, object]:
    """Tickets 1..n from a group one tier below this one, by someone who belongs there."""
    async with world.app.session() as s:
        children = list((await s.execute(
            select(Node).where(Node.parent_id == node.id).order_by(Node.id))).scalars())
    for child in children:
        rooms = await world.rooms_of(child.id)
        askers = [p for role in (Role.TENANT, Role.LANDLORD, Role.CAPTAIN, Role.MEMBER)
                  for p in await world.holders(child.id, role) if p.name in CAST.contacts]
        if rooms and askers:
            break
    else:
        raise AssertionError(f"no group below {node.name} to open a ticket from")
    asker = askers[0]
    while await count_rows(world.app, Ticket) < n:
        await chat.say(rooms[0], CAST.contacts[asker.name], "反馈 楼道灯坏了，晚上看不见",
                       name=asker.name)
    return {"asker_room": rooms[0]}


# --- checking what happened ---------------------------------------------------------------------


# A mobile or ID number as typed (spaces, dashes, full-width digits); 11+ digits in all.
_TYPED_NUMBER = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){10,17}[Xx]?(?![0-9])")


def _check_no_numbers_echoed(line: Line, sent: list, context: str) -> None:
    """Whatever a line is, no phone or ID number it holds comes back into any group."""
    typed = unicodedata.normalize("NFKC", line.message)
    for m in _TYPED_NUMBER.finditer(typed):
        digits = re.sub(r"[^0-9Xx]", "", m.group())
        for number in {digits, digits[-11:]}:  # +86 138…: the mobile is the last 11
            for s in sent:
                assert number not in re.sub(r"[ -]", "", s.text), f"{number} echoed: {context}"


def _one_line_hint(replies: list, context: str) -> str:
    assert len(replies) == 1, f"one reply expected: {context}"
    text = replies[0].text
    assert "\n" not in text.strip(), f"a one-line hint expected: {context}"
    return str(text)


async def _reading_of(line: Line, world: World, speaker: Person | None):
    found = await latest_reading(world.app)
    if found is None:
        return None
    reading, stay, tenant = found
    if line.speaker in CAST.contacts and speaker is not None and tenant.id == speaker.id:
        return reading, stay, tenant
    if tenant.name in line.message:
        return reading, stay, tenant  # a landlord's reading for the tenant named
    raise AssertionError(f"reading stored for the wrong person {tenant.name}")


async def _check_reading(line, world, node, replies, sent, setup, before, context, *,
                         fever: bool = False):
    value = float(line.args[""])
    speaker = await world.person(CAST.contact(line.speaker))
    found = await _reading_of(line, world, speaker)
    assert found is not None, f"no reading stored: {context}"
    reading, stay, _tenant = found
    assert reading.value == pytest.approx(value), context
    parents = await world.rooms_of(node.parent_id)
    alerts = [s for s in sent if s.room_id in parents]
    async with world.app.session() as s:
        current = await s.get(TenantStay, stay.id)
        assert current is not None
        flagged = current.fever
    assert replies, f"the writer hears nothing: {context}"
    if fever:
        assert flagged, context
        landlords = [CAST.contacts.get(p.name)
                     for p in await world.holders(node.id, Role.LANDLORD)]
        assert any(set(landlords) & set(r.mentions) for r in replies), \
            f"the landlord is not mentioned: {context}"
        assert alerts, f"no fever alert to the tier-4 group: {context}"
    else:
        assert not flagged and not alerts, f"a fever alert for a normal reading: {context}"


async def _check_fever(*args):
    await _check_reading(*args, fever=True)


async def _check_reading_or_hint(line, world, node, replies, sent, setup, before, context):
    assert await count_rows(world.app, Person) == before, f"someone was invented: {context}"
    speaker = await world.person(CAST.contact(line.speaker))
    if await _reading_of(line, world, speaker) is not None:
        assert replies, context
        return
    _one_line_hint(replies, context)


async def _check_return(line, world, node, replies, sent, setup, before, context):
    args = line.args
    unknown = set(args) - {"name", "origin", "mobile"}
    assert not unknown, f"unknown return keys {unknown}"
    async with world.app.session() as s:
        rows = (await s.execute(
            select(TenantStay, Person).join(Person, Person.id == TenantStay.tenant_id)
            .where(TenantStay.node_id == node.id, TenantStay.origin != "湖南长沙")
            .order_by(TenantStay.id.desc()))).all()
    mobile = args.get("mobile")
    matching = [(st, p) for st, p in rows if mobile is None or (p.mobile_mask or "").endswith(mobile)]
    assert matching, f"no return registered: {context}"
    stay, person = matching[0]
    if "name" in args:
        assert person.name == args["name"], f"name {person.name!r}: {context}"
    if "origin" in args:
        assert stay.origin == args["origin"], f"origin {stay.origin!r}: {context}"
    assert replies, context


async def _check_report(line, world, node, replies, sent, setup, before, context):
    kind = REPORT_KINDS[line.args[""]]
    async with world.app.session() as s:
        rows = list((await s.execute(
            select(LandlordReport).where(LandlordReport.kind == kind))).scalars())
    assert rows, f"no {kind} report: {context}"
    if "text" in line.args:
        assert rows[-1].detail == line.args["text"], f"detail {rows[-1].detail!r}: {context}"
    assert replies, context


async def _check_ack(line, world, node, replies, sent, setup, before, context):
    async with world.app.session() as s:
        rows = list((await s.execute(
            select(OutboxMessage).where(OutboxMessage.id.in_(setup["outbox_ids"])))).scalars())
    assert any(r.acked_at is not None for r in rows), f"not acknowledged: {context}"


async def _check_ticket(line, world, node, replies, sent, setup, before, context):
    async with world.app.session() as s:
        rows = list((await s.execute(
            select(Ticket).where(Ticket.node_id == node.id))).scalars())
    assert rows, f"no ticket: {context}"
    assert rows[-1].target_node_id == node.parent_id, context
    parents = await world.rooms_of(node.parent_id)
    assert any(s.room_id in parents for s in sent), f"nothing went up: {context}"
    assert replies, context


async def _check_score(line, world, node, replies, sent, setup, before, context):
    assert replies and score_pattern().match(replies[0].text), f"no score: {context}"


async def _check_answer(line, world, node, replies, sent, setup, before, context):
    n = int(line.args[""])
    async with world.app.session() as s:
        ticket = await s.get(Ticket, n)
    assert ticket is not None and ticket.answer, f"ticket {n} not answered: {context}"
    assert any(s.room_id == setup["asker_room"] for s in sent), \
        f"the answer did not go back: {context}"


async def _check_refusal(line, world, node, replies, sent, setup, before, context):
    who = line.args["who"]
    assert replies, f"no refusal: {context}"
    assert who in replies[0].text, f"the refusal does not name {who}: {context}"


async def _check_hint(line, world, node, replies, sent, setup, before, context):
    text = _one_line_hint(replies, context)
    if "not" in line.args:
        assert line.args["not"] not in text, context


async def _check_silence(line, world, node, replies, sent, setup, before, context):
    assert not sent, f"silence expected: {context}"


async def _check_checkin(line, world, node, replies, sent, setup, before, context):
    """checkin [checked=N] [opened=N] [shops=3号商位,4号商位] [fever=1]: the day's check-in of
    the row is stored with those figures, the captain gets one line back, a fever goes up."""
    from models import Shop, ShopCheckin, ShopPatrol

    args = line.args
    unknown = set(args) - {"checked", "opened", "shops", "fever"}
    assert not unknown, f"unknown checkin keys {unknown}"
    async with world.app.session() as s:
        patrol = (await s.execute(select(ShopPatrol).where(ShopPatrol.node_id == node.id))
                  ).scalar_one_or_none()
        named = {shop.name: row for row, shop in (await s.execute(
            select(ShopCheckin, Shop).join(Shop, Shop.id == ShopCheckin.shop_id)
            .where(ShopCheckin.node_id == node.id))).tuples()}
    assert patrol is not None, f"no check-in stored: {context}"
    if "checked" in args:
        assert max(patrol.checked, len(named)) == int(args["checked"]), context
    if "opened" in args:
        opened = max(patrol.opened, sum(1 for r in named.values() if r.is_open))
        assert opened == int(args["opened"]), context
    if "shops" in args:
        assert sorted(named) == sorted(args["shops"].split(",")), f"{sorted(named)}: {context}"
    assert len(replies) == 1 and "\n" not in replies[0].text.strip(), context
    parents = await world.rooms_of(node.parent_id)
    alerts = [x for x in sent if x.room_id in parents]
    assert bool(alerts) == ("fever" in args), f"fever alert {alerts}: {context}"
async def _check_enterprise_report(line, world, node, replies, sent, setup, before, context):
    async with world.app.session() as s:
        rows = list((await s.execute(select(EnterpriseReportRow))).scalars())
    assert len(rows) == 1, f"no enterprise report stored: {context}"
    assert replies, context


async def _check_work_card(line, world, node, replies, sent, setup, before, context):
    async with world.app.session() as s:
        rows = list((await s.execute(select(WorkCard).where(WorkCard.node_id == node.id))
                     ).scalars())
    assert len(rows) == 1, f"no work card stored: {context}"
    assert replies, context


async def _check_worker_card(line, world, node, replies, sent, setup, before, context):
    async with world.app.session() as s:
        rows = (await s.execute(select(WorkerCard, Person).join(
            Person, Person.id == WorkerCard.person_id))).all()
    assert len(rows) == 1, f"no worker card: {context}"
    if "name" in line.args:
        assert rows[0][1].name == line.args["name"], f"name {rows[0][1].name!r}: {context}"
    assert replies, context


CHECKS = {
    "reading": _check_reading, "fever": _check_fever, "reading-or-hint": _check_reading_or_hint,
    "return": _check_return, "report": _check_report, "ack": _check_ack,
    "ticket": _check_ticket, "score": _check_score, "answer": _check_answer,
    "refusal": _check_refusal, "hint": _check_hint, "silence": _check_silence,
    "checkin": _check_checkin,
    "enterprise-report": _check_enterprise_report, "work-card": _check_work_card,
    "worker-card": _check_worker_card,
}
