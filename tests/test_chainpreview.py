"""The import preview (bot/chainpreview.py): it lists new nodes, people, groups and roles and
the differences the import keeps out, numbers masked; bad rows are reported with their sheet
row and nothing is applied; nothing is written before apply; apply twice is apply once; a
file changed since its preview is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import chainpreview
from bot.app import BotApp
from bot.export_texts import Import as T
from models import Contact, Group, Membership, Node, Person
from tests.conftest import DemoChain
from tests.test_cli import Cli, _ok
from tests.xlsx import write_xlsx

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")
PEOPLE = ["key", "name", "mobile", "contacts"]
NODES = ["key", "name", "kind", "parent", "commander", "member", "landlord"]
GROUPS = ["node", "room", "title"]


def _book(tmp_path: Path, people: list[list[object]], nodes: list[list[object]],
          groups: list[list[object]] | None = None, name: str = "chain.xlsx") -> Path:
    sheets: dict[str, list[list[object]]] = {"people": [PEOPLE, *people],
                                             "nodes": [NODES, *nodes]}
    if groups:
        sheets["groups"] = [GROUPS, *groups]
    return write_xlsx(tmp_path / name, sheets)


def _good(tmp_path: Path) -> Path:
    return _book(tmp_path, [
        ["ma", "马红梅", "13612345678", "sim-mahongmei"],
        ["zhou", "周立新", "", "sim-zhoulixin"],
    ], [
        ["", "福田街道", "subdistrict", "", "", "", ""],
        ["", "长春社区", "community", "福田街道", "", "", ""],
        ["t2", "长春第二作战小组", "team", "长春社区", "ma", "zhou", ""],
    ], [["t2", "team2@chatroom", "长春第二作战小组群"]])


async def _totals(bot: BotApp) -> tuple[int, ...]:
    async with bot.session() as s:
        return tuple([(await s.execute(select(func.count()).select_from(m))).scalar_one()
                      for m in (Node, Person, Group, Membership, Contact)])


async def _preview(bot: BotApp, path: Path) -> chainpreview.Preview:
    async with bot.session() as s, s.begin():
        return await chainpreview.preview(s, path, now=bot.now())


async def _apply(bot: BotApp, path: Path, digest: str) -> dict[str, int]:
    async with bot.session() as s, s.begin():
        return await chainpreview.apply(s, path, expected_digest=digest, now=bot.now())


async def test_preview_lists_what_is_new_and_writes_nothing(bot, chain: DemoChain,
                                                            tmp_path: Path):
    path = _good(tmp_path)
    before = await _totals(bot)
    shown = await _preview(bot, path)
    assert shown.errors == []
    kinds = [(line.kind, line.text) for line in shown.changes]
    assert (T.NEW_NODE, "长春第二作战小组（第3级，上级 长春社区）") in kinds
    assert (T.NEW_PERSON, "马** 136****5678") in kinds
    assert (T.NEW_GROUP, "长春第二作战小组群（长春第二作战小组）") in kinds
    assert sum(1 for k, _ in kinds if k == T.NEW_ROLE) == 2
    # The nodes that exist are reused, not listed.
    assert not any("福田街道（" in text for _, text in kinds)
    assert not any(FULL_MOBILE.search(line.text) for line in shown.lines)
    assert await _totals(bot) == before  # the savepoint was rolled back
    counts = await _apply(bot, path, shown.digest)
    assert counts["nodes"] == 1 and counts["roles"] == 2
    after = await _totals(bot)
    assert after != before
    # Apply twice = once; the preview of an applied file shows nothing new.
    again = await _apply(bot, path, shown.digest)
    assert (again["nodes"], again["groups"], again["roles"]) == (0, 0, 0)
    assert await _totals(bot) == after
    assert (await _preview(bot, path)).changes == []


async def test_bad_rows_are_reported_with_their_row_and_nothing_applies(bot, chain: DemoChain,
                                                                       tmp_path: Path):
    path = _book(tmp_path, [
        ["ma", "马红梅", "13612345678", ""],
        [],  # a blank row: the rows below keep their spreadsheet numbers
        ["bad", "错号码", "1234567", ""],
        ["ma", "马红梅二", "", ""],
        ["twin", "双胞胎", "13612345678", ""],
    ], [
        ["", "福田街道", "subdistrict", "", "", "", ""],
        ["x", "孤儿小组", "team", "不存在的社区", "ghost", "", ""],
        ["", "乱写", "nonsense", "", "", "", ""],
    ])
    before = await _totals(bot)
    shown = await _preview(bot, path)
    assert shown.changes == []
    where = {(e.sheet, e.row) for e in shown.errors}
    assert ("people", 4) in where  # the bad mobile, after the blank row 3
    assert ("nodes", 4) in where  # the unknown kind
    assert not any(FULL_MOBILE.search(e.text) for e in shown.errors)
    assert not any("1234567" in e.text for e in shown.errors)
    with pytest.raises(ValueError):
        await _apply(bot, path, shown.digest)
    assert await _totals(bot) == before
    # Valid rows with cross-row problems: each with its row.
    path2 = _book(tmp_path, [
        ["ma", "马红梅", "13612345678", ""],
        ["ma", "马红梅二", "", ""],
        ["twin", "双胞胎", "13612345678", ""],
    ], [
        ["", "福田街道", "subdistrict", "", "", "", ""],
        ["x", "孤儿小组", "team", "不存在的社区", "ghost", "", ""],
    ], name="chain2.xlsx")
    shown = await _preview(bot, path2)
    texts = {(e.row, e.text) for e in shown.errors}
    assert (3, "人员编号「ma」重复") in texts
    assert (4, "手机号 136****5678 同时属于「ma」和「twin」") in texts
    assert (3, "「孤儿小组」的上级「不存在的社区」不在它之前") in texts
    assert any(row == 3 and "ghost" in text for row, text in texts)
    with pytest.raises(ValueError):
        await _apply(bot, path2, shown.digest)
    assert await _totals(bot) == before


async def test_a_differing_name_is_shown_and_kept(bot, chain: DemoChain, tmp_path: Path):
    # 董宝明 is in the demo chain with this mobile; the file calls him otherwise.
    path = _book(tmp_path, [["d", "董宝", "13757912345", ""]], [
        ["", "福田街道", "subdistrict", "", "", "", ""]])
    shown = await _preview(bot, path)
    assert [(c.kind, c.row, c.text) for c in shown.changes] == [
        (T.CHANGED, 2, "姓名：现有 董**，文件 董*（保留现有）")]
    await _apply(bot, path, shown.digest)
    async with bot.session() as s:
        assert (await s.execute(select(func.count()).select_from(Person).where(
            Person.name == "董宝"))).scalar_one() == 0


async def test_a_file_changed_after_its_preview_is_refused(bot, chain: DemoChain,
                                                           tmp_path: Path):
    path = _good(tmp_path)
    shown = await _preview(bot, path)
    _book(tmp_path, [["evil", "换人", "", "sim-evil"]], [
        ["", "福田街道", "subdistrict", "", "evil", "", ""]])  # same name, new content
    before = await _totals(bot)
    with pytest.raises(ValueError, match="预览已失效"):
        await _apply(bot, path, shown.digest)
    assert await _totals(bot) == before


async def test_an_unreadable_file_is_one_error(bot, tmp_path: Path):
    path = tmp_path / "chain.xlsx"
    path.write_bytes(b"PK not really")
    shown = await _preview(bot, path)
    assert len(shown.errors) == 1 and shown.changes == []


def test_cli_chain_import_preview(tmp_path: Path):
    cli = Cli(tmp_path)
    path = _good(tmp_path)
    result = _ok(cli("chain", "import", "--preview", str(path)))
    assert "新单元" in result.stdout and "136****5678" in result.stdout
    assert not FULL_MOBILE.search(result.stdout)
    shown = _ok(cli("chain", "show"))
    assert "长春第二作战小组" not in shown.stdout
