"""Worker cards (一人一卡) from a file: a CSV or XLSX sheet with one row per worker, imported
into one enterprise with the same checks and the same service as 员工登记."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.chainfile import ChainFileError, _cells
from bot.grammar import Arrival, WorkerRegister

# Column names as people head them, in Chinese or English.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "name"),
    "mobile": ("手机", "手机号", "手机号码", "电话", "mobile"),
    "id_number": ("身份证", "身份证号", "身份证号码", "id_number"),
    "origin": ("来自", "来源地", "从哪里返回", "origin"),
    "returned": ("返岗日期", "返回日期", "返岗", "returned"),
    "group": ("车间", "宿舍", "车间/宿舍", "班组", "group"),
    "watch": ("居家观察", "watch"),
    "isolated": ("隔离", "isolated"),
}
_HEADER = {alias.lower(): field for field, aliases in COLUMNS.items() for alias in aliases}
_YES = {"是", "yes", "y", "1", "true", "√", "✓"}
_DATE = re.compile(r"(?:(?P<y>\d{4})[-/.年])?(?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?")


class WorkerFileError(ChainFileError):
    """The worker file cannot be imported; the message names the rows and what is wrong."""


def _arrival(value: Any) -> Arrival | None:
    if isinstance(value, dt.datetime | dt.date):
        return Arrival(year=value.year, month=value.month, day=value.day)
    text = _cells(value)
    if not text:
        return None
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a date: {text!r}")
    return Arrival(year=int(m["y"]) if m["y"] else None, month=int(m["m"]), day=int(m["d"]))


def _raw_rows(path: Path) -> list[list[Any]]:
    if path.suffix == ".xlsx":
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_path(str(path))
        return list(book.get_sheet_by_index(0).to_python(skip_empty_area=True))
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return list(csv.reader(stream))
    raise WorkerFileError(f"{path}: use a .csv file or an .xlsx workbook")


def load(path: Path) -> list[WorkerRegister]:
    """Every row as a worker card; any bad row stops the whole file (rows named)."""
    try:
        rows = _raw_rows(path)
    except OSError as exc:
        raise WorkerFileError(f"{path}: {exc.strerror}") from None
    if not rows:
        raise WorkerFileError(f"{path}: empty")
    header = [_HEADER.get(_cells(h).lower()) for h in rows[0]]
    missing = {"name", "mobile", "origin"} - set(header)
    if missing:
        raise WorkerFileError(f"{path}: missing columns: {', '.join(sorted(missing))}")
    cards, problems = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not any(_cells(v) for v in row):
            continue
        values = {f: v for f, v in zip(header, row, strict=False) if f is not None}
        try:
            group = _cells(values.get("group"))
            cards.append(WorkerRegister(
                name=_cells(values.get("name")), mobile=_cells(values.get("mobile")),
                origin=_cells(values.get("origin")) or None,
                id_number=_cells(values.get("id_number")) or None,
                arrival=_arrival(values.get("returned")), groups=(group,) if group else (),
                watch=_cells(values.get("watch")).lower() in _YES,
                isolated=_cells(values.get("isolated")).lower() in _YES))
        except (ValidationError, ValueError) as exc:
            fields = ({".".join(str(p) for p in e["loc"]) for e in exc.errors()}
                      if isinstance(exc, ValidationError) else {str(exc)})
            problems.append(f"row {number}: {', '.join(sorted(fields))}")
    if problems:
        raise WorkerFileError(f"{path}: " + "; ".join(problems))
    return cards
