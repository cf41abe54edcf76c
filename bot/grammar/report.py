"""房东上报: a landlord's reports (disinfection, errands, violations, mediation, returns)."""

from __future__ import annotations

import re

from bot.grammar.commands import Command, LandlordReport, ReportKind
from bot.grammar.core import END_PUNCT, SEPARATORS, STRIP, ParseError, Step, keyword, on_plain
from bot.grammar.health import parse_temperature_args
from bot.grammar.tenant import parse_return_args

# --- landlord reports ------------------------------------------------------------------------

_REPORT_WORDS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            *((w, "disinfect") for w in (
                "消毒已完成", "已完成消毒", "消毒完成", "已消毒", "消毒", "已消杀", "消杀",
                "环境消毒",
            )),
            *((w, "errand") for w in (
                "代办", "已代办", "代购", "已代购", "跑腿", "代买", "帮办",
            )),
            *((w, "violation") for w in ("违规", "违反规定", "违反", "违纪")),
            *((w, "mediation") for w in (
                "矛盾调解", "纠纷调解", "调解", "调处", "纠纷", "矛盾",
            )),
            *((w, "return") for w in ("租客返回", "返回登记", "租客登记", "返回", "登记")),
            *((w, "temperature") for w in ("体温", "测温")),
        ),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
)
_DISINFECTED = re.compile(
    r"(?:今天|今日)?(?:已消毒|消毒已完成|已完成消毒|消毒完成|已消杀|消杀已完成)" + END_PUNCT
)


def _report_args(rest: str, *, landlord: bool) -> Command | None:
    """消毒/代办/违规/调解 [说明] or 返回 <tenant>; None for an unknown kind after 上报."""
    for word, kind in _REPORT_WORDS:
        if not rest.startswith(word):
            continue
        detail = rest[len(word):].strip(STRIP)
        if kind == "return":
            if not landlord:
                return None
            return parse_return_args(detail, announce=False, landlord=True)
        if kind == "temperature":
            after = rest[len(word):]
            apart = not after or after[0] in SEPARATORS or after[0].isascii()
            return parse_temperature_args(detail, apart, None)
        if kind == "violation" and not detail:
            raise ParseError.of("LandlordReport", "detail_missing")
        report_kind: ReportKind = kind  # type: ignore[assignment]
        return LandlordReport(kind=report_kind, detail=detail)
    if landlord:
        raise ParseError.of("LandlordReport", "kind_unknown")
    return None


def _parse_report(text: str) -> Command | None:
    """房东上报 <kind> [说明], the short 上报<kind>, and 消毒已完成."""
    found = keyword(text, ("房东上报",))
    if found is not None:
        return _report_args(found[0], landlord=True)
    found = keyword(text, ("上报",))
    if found is not None:
        return _report_args(found[0], landlord=False)
    if _DISINFECTED.fullmatch(text):
        return LandlordReport(kind="disinfect", detail="")
    return None



STEPS = (Step(50, on_plain(_parse_report)),)
