"""房东上报: a landlord's reports (disinfection, errands, violations, mediation, returns)."""

from __future__ import annotations

import re

from bot.grammar.commands import Command, LandlordReport, ReportKind
from bot.grammar.core import (
    END_PUNCT,
    HAN,
    QUESTION,
    SEPARATORS,
    STRIP,
    ParseError,
    Step,
    fuzzy_keyword,
    keyword,
    on_plain,
)
from bot.grammar.health import parse_temperature_args
from bot.grammar.tenant import parse_return_args

# --- landlord reports ------------------------------------------------------------------------

_REPORT_WORDS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            *((w, "disinfect") for w in (
                "消毒已完成", "已完成消毒", "消毒完成", "已消毒", "消毒", "已消杀", "消杀",
                "环境消毒", "消了毒", "消过毒",
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
_DONE_TODAY = r"(?:今天|今日|今早|上午|下午|刚刚|刚才|刚){0,2}"
# 楼道和公共区域都: the places, joined as people join them.
_PLACES = (r"(?:楼道|楼梯|走廊|公共区域|公共部位|房间|出租房|出租屋|房屋|屋里|室内|院子|门口"
           r"|全部|都|也|和|及|与|跟|,| )*")
_DISINFECTED = re.compile(
    _DONE_TODAY + _PLACES
    + r"(?:(?:已经|已)(?:全部|都)?(?:完成)?(?:消毒|消杀)(?:完成|完毕|好|过)?了?"
    r"|(?:消毒|消杀)(?:已经|已)?(?:完成|完毕|做好|做完|好|做)了?"
    r"|(?:消毒|消杀)过?了"
    # 已完成今日消毒工作
    r"|(?:已经|已)?完成(?:了)?(?:今日|今天)?的?(?:消毒|消杀)(?:工作)?"
    # 对出租房进行了全面消杀, 楼道做了一次消毒: the work named as done.
    r"|对?" + _PLACES + r"(?:进行了|做了|开展了)(?:全面|一次|一遍|全面的)?(?:消毒|消杀)(?:工作)?"
    # 已对出租屋全面消毒, 对楼道彻底消杀完毕: done (已, 完毕, 了), not asked for.
    r"|(?:已经|已)对" + _PLACES + r"(?:全面|彻底|统一)?(?:消毒|消杀)(?:完毕|完成)?了?"
    r"|对" + _PLACES + r"(?:全面|彻底|统一)?(?:消毒|消杀)(?:完毕|完成|了))"
    + END_PUNCT
)
# 有租客不戴口罩，已劝导: a breach of the rules, told with what was done about it.
_BREACH_HANDLED = re.compile(
    r"(?:不戴口罩|没戴口罩|未戴口罩|聚集|聚餐|打牌|打麻将|串门|私自外出|擅自外出|违规外出)"
    r"[^?]{0,12}?(?:已经|已|及时|当场)(?:进行)?(?:劝导|劝离|劝阻|制止|劝返|批评教育|教育|处理)")
# 调解了一起租客纠纷, 租客之间的矛盾已调解好: a mediation told as done.
_MEDIATED = re.compile(
    r"(?:今天|今日|刚刚|刚才|已经|已)?调解(?:了|好了|成功)(?:一起|一次|一个|两起)?"
    f"[{HAN}]{{0,10}}(?:纠纷|矛盾)"
    r"|(?:纠纷|矛盾)(?:已经|已)(?:调解|化解)(?:好|完毕|成功)?了?")
# 违规情况：…, 代办内容：…: a label between the kind and the detail.
_LABEL = re.compile(r"^(?:情况|事项|内容|说明|详情)\s*[:]?\s*")
# 帮租客取快递, 帮王明买药: an errand said without the word.
_HELPED = re.compile(r"帮.{0,8}?(?:买|取|送|拿|办理|代购|跑腿|购买)")
# 帮302租客代买了蔬菜, 今天帮王明取了快递: an errand told as done, without a keyword.
_HELPED_DONE = re.compile(
    r"(?:今天|今日|刚刚|刚才|已经|已)?帮(?!我|忙|助)[^,.?!;:]{1,10}?"
    r"(?:代买|代购|代取|购买|买|取|送|拿|办理|办)了" + f"[{HAN}]")
# The kind first, set apart by a colon or a space, then a detail in words.
_BARE_KIND = re.compile(
    r"已?(?P<kind>代办|代购|代买|违规|调解)\s*[: ]\s*"
    f"(?P<detail>.*[{HAN}].*[{HAN}].*)")
# Polite words between 房东上报 and what is reported (房东上报一下, 房东上报个情况).
_POLITE = re.compile(r"^(?:一下|下|个情况|情况)\s*[,:]?\s*")
_KINDS_ANYWHERE = tuple((w, k) for w, k in _REPORT_WORDS
                        if k in ("disinfect", "errand", "violation", "mediation"))


def _report_args(rest: str, *, landlord: bool) -> Command | None:
    """消毒/代办/违规/调解 [说明] or 返回 <tenant>; None for an unknown kind after 上报."""
    for word, kind in _REPORT_WORDS:
        if not rest.startswith(word):
            continue
        detail = _LABEL.sub("", rest[len(word):].strip(STRIP)).strip(STRIP)
        if detail.startswith("了") and kind not in ("return", "temperature"):
            detail = rest  # 调解了一起纠纷: the sentence is the detail
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
        # 房东上报一下今天楼道已经全部消毒了: the kind inside a sentence, which is the detail.
        hits = [(rest.find(w), -len(w), k) for w, k in _KINDS_ANYWHERE if w in rest]
        if hits:
            _, _, kind = min(hits)
            found_kind: ReportKind = kind  # type: ignore[assignment]
            return LandlordReport(kind=found_kind, detail=rest.strip(STRIP))
        if _HELPED.search(rest):
            return LandlordReport(kind="errand", detail=rest.strip(STRIP))  # 帮租客取快递
        raise ParseError.of("LandlordReport", "kind_unknown")
    return None


def _parse_report(text: str) -> Command | None:
    """房东上报 <kind> [说明], the short 上报<kind>, 代办：说明, and 消毒已完成."""
    # 房东代报 王明 体温36.6 is a reading reported for a tenant, not 房东上报 mistyped.
    reported_for = text.startswith(("房东代报", "房东帮报"))
    found = None if reported_for else fuzzy_keyword(text, ("房东上报",))
    if found is not None:
        return _report_args(_POLITE.sub("", found[0]), landlord=True)
    found = keyword(text, ("上报",))
    if found is not None:
        return _report_args(found[0], landlord=False)
    if _DISINFECTED.fullmatch(text):
        return LandlordReport(kind="disinfect", detail="")
    if _HELPED_DONE.match(text) and not QUESTION.search(text):
        return LandlordReport(kind="errand", detail=text.strip(STRIP), unmarked=True)
    bare = _BARE_KIND.fullmatch(text)
    if bare is not None and not QUESTION.search(text):
        # 代办：帮王明取快递, 违规 302租客私自外出: the kind first, then what happened.
        return _report_args(f"{bare.group('kind')} {bare.group('detail')}", landlord=False)
    if not QUESTION.search(text):
        # A breach handled, a dispute settled: told as done, without a keyword.
        if _BREACH_HANDLED.search(text):
            return LandlordReport(kind="violation", detail=text.strip(STRIP), unmarked=True)
        if _MEDIATED.search(text):
            return LandlordReport(kind="mediation", detail=text.strip(STRIP), unmarked=True)
    return None



STEPS = (Step(50, on_plain(_parse_report)),)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("房东上报 消毒", LandlordReport),
    ("房东上抱 消毒", LandlordReport),
    ("今天已经消毒了", LandlordReport),
    ("房东上报 代办：帮王明取快递、买药", LandlordReport),
)
