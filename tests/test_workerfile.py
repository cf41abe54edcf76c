"""tierbot workers import: worker cards (一人一卡) from a CSV or XLSX sheet, with the checks of
员工登记; one bad row stops the whole file, nothing stored; numbers only on person rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import crypto, store
from bot.cli import main
from models import Node, Person, WorkerCard
from tests.test_cli import DEMO_CHAIN
from tests.xlsx import write_xlsx

DEMO_UNITS = DEMO_CHAIN.parent / "units.toml"
GOOD = """姓名,手机,身份证,来自,返岗日期,车间,居家观察
王芳,13905790003,11010519491231002X,河南信阳,2020-02-18,华鑫一车间,是
赵强,13905790004,,安徽阜阳,2月19日,华鑫二车间,
"""


def _db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 't.db'}"
    for chain_file in (DEMO_CHAIN, DEMO_UNITS):
        assert main(["--database-url", url, "chain", "import", str(chain_file)]) == 0
    return url


def _mobile(number: str) -> str:
    """How a mobile is found (its blind index): the plain number is stored nowhere."""
    return crypto.blind_index("mobile", number)


def _rows(url: str, stmt) -> list:
    async def go() -> list:
        engine = store.create_engine(url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(stmt)).all())
        finally:
            await engine.dispose()
    return asyncio.run(go())


def test_a_csv_of_workers_becomes_their_cards(tmp_path: Path, capsys: pytest.CaptureFixture):
    url = _db(tmp_path)
    path = tmp_path / "workers.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["--database-url", url, "workers", "import", str(path),
                 "--enterprise", "华鑫针织"]) == 0
    assert "imported 2 new worker cards, updated 0" in capsys.readouterr().out
    rows = _rows(url, select(Person.name, Person.mobile_bidx, Person.id_number_bidx, WorkerCard.origin,
                             WorkerCard.returned_on, Node.name, WorkerCard.watch_until)
                 .join(WorkerCard, WorkerCard.person_id == Person.id)
                 .join(Node, Node.id == WorkerCard.workgroup_node_id).order_by(Person.name))
    assert [(r[0], r[1], r[2], r[3], str(r[4]), r[5], r[6] is not None) for r in rows] == [
        ("王芳", _mobile("13905790003"), crypto.blind_index("id_number", "11010519491231002X"),
         "河南信阳", "2020-02-18", "华鑫一车间", True),
        ("赵强", _mobile("13905790004"), None, "安徽阜阳", rows[1][4].isoformat(), "华鑫二车间",
         False)]
    assert rows[1][4].month == 2 and rows[1][4].day == 19
    # Importing again updates the same cards.
    assert main(["--database-url", url, "workers", "import", str(path),
                 "--enterprise", "华鑫针织"]) == 0
    assert "imported 0 new worker cards, updated 2" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "problem"), [
    (GOOD + "钱七,1390579000,,湖北,,,\n", "row 4: mobile"),
    (GOOD + "钱七,13905790005,110105194912310021,湖北,,,\n", "row 4: id_number"),
    (GOOD + "钱七,13905790005,,湖北,二月,,\n", "row 4: not a date"),
    ("姓名,来自\n王芳,河南\n", "missing columns: mobile"),
    (GOOD + "钱七,13905790005,,湖北,,三车间,\n", "三车间"),
    # The landlord's mobile under another name: refused without saying whose.
    (GOOD + "钱七,13757912345,,湖北,,,\n", "已经登记"),
])
def test_a_bad_row_stops_the_whole_file(tmp_path: Path, capsys: pytest.CaptureFixture,
                                        text: str, problem: str):
    url = _db(tmp_path)
    path = tmp_path / "workers.csv"
    path.write_text(text, encoding="utf-8")
    assert main(["--database-url", url, "workers", "import", str(path),
                 "--enterprise", "华鑫针织"]) == 2
    err = capsys.readouterr().err
    assert problem in err and "13757912345" not in err, err
    assert _rows(url, select(WorkerCard.id)) == []


def test_only_into_an_enterprise(tmp_path: Path, capsys: pytest.CaptureFixture):
    url = _db(tmp_path)
    path = tmp_path / "workers.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["--database-url", url, "workers", "import", str(path),
                 "--enterprise", "长春社区"]) == 2
    assert "not an enterprise" in capsys.readouterr().err
    assert _rows(url, select(WorkerCard.id)) == []


def test_an_xlsx_sheet_with_numbers_typed_as_numbers(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture):
    url = _db(tmp_path)
    path = write_xlsx(tmp_path / "workers.xlsx", {"员工": [
        ("姓名", "手机号", "来自", "返岗日期", "宿舍", "隔离"),
        ("王芳", 13905790003, "河南信阳", "2020/2/18", "华鑫一车间", "是"),
    ]})
    assert main(["--database-url", url, "workers", "import", str(path),
                 "--enterprise", "华鑫针织"]) == 0
    assert "imported 1 new worker cards" in capsys.readouterr().out
    [(mobile, health)] = _rows(url, select(Person.mobile_bidx, WorkerCard.health).join(
        WorkerCard, WorkerCard.person_id == Person.id))
    assert (mobile, health) == (_mobile("13905790003"), "isolated")
