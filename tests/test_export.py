"""Exports (bot/services/export.py): each report opens with openpyxl, carries merged Chinese
headers and no full number, is recorded in the access log with its scope; the list of people
under home watch is refused to roles not authorised, and a refusal leaves no trace."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from bot.app import BotApp
from bot.domain import UserError
from bot.services import export, points
from models import AccessAction, AccessLog, Membership, Node, Person, Role
from tests.conftest import SHANGHAI, START, Chat, DemoChain, count
from tests.test_cli import DEMO_CHAIN, Cli, _ok

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")


async def _node(bot: BotApp, name: str) -> Node:
    async with bot.session() as s:
        return (await s.execute(select(Node).where(Node.name == name))).scalar_one()


async def _person_at(bot: BotApp, contact_name: str) -> int:
    async with bot.session() as s:
        return (await s.execute(select(Person.id).where(Person.name == contact_name))
                ).scalars().first()


async def _returns(chat: Chat, chain: DemoChain) -> None:
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王五 13900002222 来自河南信阳 体温38.1")
    await chat.say(chain.ying_group, chain.ying_tenant, "租客返回 赵丽 13900003333 来自安徽阜阳")


async def _run(bot: BotApp, report: export.Report, root: Node, by: export.Requester,
               **kw) -> export.Exported:
    async with bot.session() as s, s.begin():
        return await export.export(s, report=report, root=root, by=by, day=START.date(),
                                   zone=SHANGHAI, now=bot.now(), **kw)


def _merged(book: openpyxl.Workbook) -> list[str]:
    sheet = book.worksheets[0]
    return [str(sheet.cell(r.min_row, r.min_col).value) for r in sheet.merged_cells.ranges]


async def test_watch_list_opens_with_merged_headers_masked_and_is_logged(
        bot, chat: Chat, chain: DemoChain):
    await _returns(chat, chain)
    root = await _node(bot, "长春社区")
    done = await _run(bot, export.Report.WATCH, root, export.Requester("person:1",
                                                                       superuser=True))
    book = openpyxl.load_workbook(io.BytesIO(done.data))
    merged = _merged(book)
    assert any("居家观察人员" in m for m in merged)
    assert {"人员", "返回", "观察"} <= set(merged)
    rows = [[c.value for c in row] for row in book.worksheets[0].iter_rows(min_row=4)]
    assert {r[2] for r in rows} == {"王*", "赵*"}
    assert {r[3] for r in rows} == {"139****2222", "139****3333"}
    assert [r[7] for r in rows if r[2] == "王*"] == ["是"]  # 38.1 is a fever
    import zipfile
    with zipfile.ZipFile(io.BytesIO(done.data)) as z:
        everything = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    assert not FULL_MOBILE.search(everything) and "王五" not in everything
    async with bot.session() as s:
        [log] = (await s.execute(select(AccessLog))).scalars().all()
    assert (log.who, log.action, log.field, log.node_id, log.person_id) == (
        "person:1", AccessAction.EXPORT, "watch", root.id, None)


async def test_watch_list_scoped_to_the_subtree(bot, chat: Chat, chain: DemoChain):
    await _returns(chat, chain)
    # 董宝明's landlord group holds 王五, not 赵丽 (another landlord's).
    team = await _node(bot, "长春第一作战小组")
    done = await _run(bot, export.Report.WATCH, team, export.Requester("cli", superuser=True))
    sheet = openpyxl.load_workbook(io.BytesIO(done.data)).worksheets[0]
    names = {row[2].value for row in sheet.iter_rows(min_row=4)}
    assert "王*" in names


@pytest.mark.parametrize("who", ["landlord", "captain", "team_member", "nobody"])
async def test_watch_list_refused_to_roles_not_authorised(bot, chat: Chat, chain: DemoChain,
                                                          who: str):
    await _returns(chat, chain)
    root = await _node(bot, "长春社区")
    async with bot.session() as s:
        person_id = None
        if who != "nobody":
            contact = getattr(chain, who)
            from models import Contact
            person_id = (await s.execute(select(Contact.person_id).where(
                Contact.contact_id == contact))).scalar_one()
    with pytest.raises(export.ExportRefused) as refused:
        await _run(bot, export.Report.WATCH, root,
                   export.Requester(f"person:{person_id}", person_id=person_id))
    assert "居家观察人员" in refused.value.text
    assert await count(bot, AccessLog) == 0
    # The same person may take the day's figures (no names in them).
    await _run(bot, export.Report.STATS, root,
               export.Requester(f"person:{person_id}", person_id=person_id))
    assert await count(bot, AccessLog) == 1


async def test_watch_list_for_a_commander_above_but_not_below(bot, chat: Chat,
                                                              chain: DemoChain):
    await _returns(chat, chain)
    async with bot.session() as s:
        from models import Contact
        secretary = (await s.execute(select(Contact.person_id).where(
            Contact.contact_id == chain.secretary))).scalar_one()
        where = (await s.execute(select(Node.name).join(
            Membership, Membership.node_id == Node.id).where(
            Membership.person_id == secretary, Membership.role == Role.SECRETARY))).scalars()
        assert "长春社区" in set(where)
    by = export.Requester(f"person:{secretary}", person_id=secretary)
    await _run(bot, export.Report.WATCH, await _node(bot, "长春第一作战小组"), by)
    # The subdistrict above the secretary's community is not theirs.
    with pytest.raises(export.ExportRefused):
        await _run(bot, export.Report.WATCH, await _node(bot, "福田街道"), by)


async def test_stats_export_is_logged_with_its_scope(bot, chain: DemoChain):
    root = await _node(bot, "福田街道")
    done = await _run(bot, export.Report.STATS, root, export.Requester("cli", superuser=True))
    book = openpyxl.load_workbook(io.BytesIO(done.data))
    assert book.worksheets[0]["A2"].value == "单位"
    assert len(book.worksheets[0].merged_cells.ranges) >= 3
    async with bot.session() as s:
        [log] = (await s.execute(select(AccessLog))).scalars().all()
    assert (log.field, log.node_id, log.why) == ("stats", root.id, f"每日统计 {START.date()}")


async def test_lists_of_a_closed_week(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    clock.set(START + timedelta(days=7))
    async with bot.session() as s, s.begin():
        weeks = await points.close_week(s, now=clock.now(), zone=SHANGHAI,
                                        settings=bot.settings.points)
    assert weeks
    week = weeks[0].week
    done = await _run(bot, export.Report.LISTS, await _node(bot, "福田街道"),
                      export.Requester("cli", superuser=True), week=week)
    book = openpyxl.load_workbook(io.BytesIO(done.data))
    merged = _merged(book)
    assert {"房东", "积分", "奖励"} <= set(merged)
    rows = [[c.value for c in r] for r in book.worksheets[0].iter_rows(min_row=4)]
    assert rows and all(r[2].endswith("*") for r in rows)  # names masked
    # A week not closed is a Chinese refusal and leaves no access-log row.
    before = await count(bot, AccessLog)
    with pytest.raises(UserError):
        await _run(bot, export.Report.LISTS, await _node(bot, "福田街道"),
                   export.Requester("cli", superuser=True), week="2019-W01")
    with pytest.raises(UserError):
        await _run(bot, export.Report.LISTS, await _node(bot, "福田街道"),
                   export.Requester("cli", superuser=True), week="W1; DROP")
    assert await count(bot, AccessLog) == before


def test_cli_export_watch(tmp_path: Path):
    cli = Cli(tmp_path)
    _ok(cli("chain", "import", str(DEMO_CHAIN)))
    out = tmp_path / "watch.xlsx"
    result = _ok(cli("export", "watch", "--node", "长春社区", "--date", "2020-02-21",
                     "--output", str(out)))
    assert "wrote" in result.stdout
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["居家观察"]
    missing = cli("export", "lists", "--node", "长春社区", "--week", "2020-W01")
    assert missing.returncode == 2 and "没有结算" in missing.stderr
