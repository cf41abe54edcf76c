"""`tierbot stats export`: a subtree's figures of one day as an XLSX report (xlsxwriter):
one row per unit down to tier 4, merged Chinese section headers over their columns, and a
sheet of reopening registrations (phone numbers masked, written as text)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii, texts
from bot.services import chain, shop, stats
from models import Node


async def collect(session: AsyncSession, *, root: Node, day: date, zone: ZoneInfo,
                  now: datetime) -> tuple[list[stats.Figures], list[shop.ReopeningRow]]:
    """The figures of root and of every unit below it down to tier 4 (depth first), and the
    reopening registrations of the subtree."""
    nodes = {n.id: n for n in (await session.execute(select(Node))).scalars()}
    children: dict[int | None, list[int]] = {}
    for n in sorted(nodes.values(), key=lambda n: n.id):
        children.setdefault(n.parent_id, []).append(n.id)
    order: list[Node] = []
    todo = [root.id]
    while todo:
        current = todo.pop()
        order.append(nodes[current])
        todo.extend(reversed([c for c in children.get(current, []) if nodes[c].tier <= 4]))
    figures = [await stats.compute(session, node=n, day=day, zone=zone, now=now) for n in order]
    return figures, await shop.reopenings(
        session, node_ids=chain.subtree_select(root.id, root.tier))


def open_book(out: Path | IO[bytes]) -> xlsxwriter.Workbook:
    """A workbook written to a file, or to a stream (in memory: the console's downloads)."""
    if isinstance(out, Path):
        return xlsxwriter.Workbook(str(out))
    return xlsxwriter.Workbook(out, {"in_memory": True})


def formats(book: xlsxwriter.Workbook) -> tuple[object, object, object]:
    """The header, cell and text-cell formats every report shares."""
    head = book.add_format({"bold": True, "align": "center", "valign": "vcenter",
                            "border": 1, "bg_color": "#DDEBF7"})
    return head, book.add_format({"border": 1}), book.add_format({"border": 1,
                                                                    "num_format": "@"})


def write(path: Path | IO[bytes], *, figures: Sequence[stats.Figures],
          reopenings: Sequence[shop.ReopeningRow], zone: ZoneInfo) -> None:
    """Write the workbook."""
    t = texts.Stats
    book = open_book(path)
    try:
        head, cell, as_text = formats(book)
        sheet = book.add_worksheet(t.EXPORT_NODE)
        first = figures[0]
        sheet.merge_range(0, 0, 0, 1 + sum(len(items) for _, items in first.sections) - 1 + 1,
                          t.EXPORT_TITLE.format(node=first.node.name,
                                                date=first.day.isoformat()), head)
        sheet.merge_range(1, 0, 2, 0, t.EXPORT_NODE, head)
        sheet.merge_range(1, 1, 2, 1, t.EXPORT_TIER, head)
        col = 2
        for section, items in first.sections:
            if len(items) > 1:
                sheet.merge_range(1, col, 1, col + len(items) - 1, section.title, head)
            else:
                sheet.write_string(1, col, section.title, head)
            for offset, (label, _value) in enumerate(items):
                sheet.write_string(2, col + offset, label, head)
            col += len(items)
        for row, fig in enumerate(figures, start=3):
            sheet.write_string(row, 0, fig.node.name, cell)
            sheet.write_string(row, 1, texts.TIER_NAMES.get(fig.node.tier, ""), cell)
            col = 2
            for _section, items in fig.sections:
                for _label, value in items:
                    sheet.write_number(row, col, value, cell)
                    col += 1
        sheet.set_column(0, 1, 22)
        sheet.freeze_panes(3, 1)

        regs = book.add_worksheet(t.REOPENING_SHEET)
        for c, label in enumerate(t.REOPENING_HEADERS):
            regs.write_string(0, c, label, head)
        for r, item in enumerate(reopenings, start=1):
            reg = item.reg
            values: list[tuple[object, bool]] = [
                (reg.id, False), (item.node.name, True), (item.shop.name, True),
                (pii.mask_name(item.owner.name), True),
                # A phone column is text: Excel would turn digits into a number and lose them.
                (item.owner.mobile_mask or "", True), (reg.staff, False),
                (reg.staff_from_elsewhere, False), (reg.supplies, True),
                (texts.Shop.STATUS[reg.status], True),
                (reg.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), True)]
            for c, (item_value, is_text) in enumerate(values):
                if is_text:
                    regs.write_string(r, c, str(item_value), as_text)
                else:
                    regs.write_number(r, c, int(str(item_value)), cell)
        regs.set_column(4, 4, 16, as_text)
    finally:
        book.close()
