"""The landlords' 12-point system: 加分/扣分, 核查, 申诉 and the queries."""

from __future__ import annotations

import re

from bot.grammar.commands import (
    AdjustPoints,
    Appeal,
    Command,
    GoodPersonCandidates,
    PendingChecks,
    Reward,
    Score,
    ScoreHistory,
    Verify,
)
from bot.grammar.core import (
    CN_NUMBER,
    DIGIT,
    END_PUNCT,
    STRIP,
    ParseError,
    Step,
    build,
    cn_int,
    fixed,
    id_or_error,
    keyword,
    leading_id,
    on_text,
)

# --- the landlords' 12-point system ----------------------------------------------------------

_PENDING_CHECKS = re.compile(r"(?:待核查|待审核|待核实)(?:列表|事项)?" + END_PUNCT)
_SCORE = re.compile(
    r"(?:请问|问一下|想问一下)?\s?"  # 请问我现在有多少积分
    r"(?:我的积分|我的分数|查积分|查询积分|积分查询|查一下积分|查下积分"
    # 查一下我的积分, 看看我的积分, 帮我查下积分
    r"|(?:帮我|麻烦)?(?:查一下|查下|查查|查询|查|看看|看一下|看下)(?:我的|我)?积分"
    # 查一下分, 看看我的分
    r"|(?:帮我|麻烦)?(?:查一下|查下|查查|看看|看一下|看下)(?:我的|我)?分数?"
    # 我现在积分多少, 积分多少, 我有多少积分, 我的分数是多少
    r"|(?:我|我的|我现在|我现在的|现在|目前|我目前)?(?:积分|分数)\s?(?:是|有|还有)?(?:多少分?|几分)(?:了|呢|啊)?"
    r"|我(?:现在|目前)?(?:有|还有)?(?:多少(?:积分|分)|几分)(?:了|呢|啊)?"
    # 我这周积分怎么样, 我扣分了吗 (加分了吗 alone is talk about someone)
    r"|我的?(?:这周|本周|这个星期|这星期)?的?积分(?:怎么样|如何|咋样)(?:了|呢|啊)?"
    r"|我(?:这周|本周)?(?:被)?(?:扣分|加分)了(?:吗|没|没有)"
    # 我排第几, 我的排名: the score's answer says the rank.
    r"|我(?:现在|目前|这周|本周)?排(?:第几|第几名|多少名|在第几)(?:了|呢|啊)?"
    r"|(?:我的|查一下我的|看看我的)(?:排名|名次)"
    r"|积分)" + END_PUNCT
)
_SCORE_HISTORY = re.compile(r"(?:我的)?(?:积分明细|积分记录)" + END_PUNCT)
_REWARD = re.compile(r"(?:我的奖励|查奖励|奖励)" + END_PUNCT)
_GOOD_PERSON = re.compile(r"(?:好人候选名单|好人候选人|好人候选)" + END_PUNCT)

_POINTS = f"(?P<n>[0-9]{{1,3}}|{CN_NUMBER})"
_MENTION = re.compile(r"@(?P<name>[^\s@]+)")
# @董宝明 加2分 原因 (the mention first, the way a reply to a landlord reads).
_POINTS_AFTER_MENTION = re.compile(
    r"@(?P<name>[^\s@]+?)\s*(?P<op>加|扣|减)\s*" + _POINTS + r"\s*分(?P<rest>.*)"
)
_POINTS_ARG = re.compile(r"(?:(?P<op>加|扣|减))?\s*" + _POINTS + r"\s*分?(?![0-9])")
_QUESTION = re.compile(r"(?:\?|吗)[!.。~]*$")


def _points(value: str) -> int:
    """The points of 2 / 两 / 十二, or ParseError outside 1–12."""
    n = cn_int(value)
    if n is None or not 1 <= n <= 12:
        raise ParseError.of("AdjustPoints", "points_range")
    return n


def _adjust(target: str | None, points: int | None, sign: int, reason: str) -> Command:
    """The AdjustPoints for what was found, or the ParseError for what is missing."""
    if not target:
        raise ParseError.of("AdjustPoints", "target_missing")
    if points is None:
        raise ParseError.of("AdjustPoints", "points_missing")
    if not any(c.isalnum() for c in reason):
        raise ParseError.of("AdjustPoints", "reason_missing")
    return build(AdjustPoints, target=target, points=points, delta=sign * points, reason=reason)


def _take_points(rest: str) -> tuple[int | None, str]:
    """Points at the start of rest (2 / 2分 / 加2分): (points or None, what follows)."""
    m = _POINTS_ARG.match(rest)
    if m is None:
        return None, rest
    return _points(m.group("n")), rest[m.end():].strip(STRIP)


def _parse_points(text: str) -> Command | None:
    """加分 @董宝明 2 原因 / 扣分 董宝明 1分 原因 / @董宝明 加2分 原因."""
    m = _POINTS_AFTER_MENTION.fullmatch(text)
    if m is not None:
        if _QUESTION.search(text):
            return None  # @董宝明 加2分了吗?
        sign = 1 if m.group("op") == "加" else -1
        return _adjust(m.group("name"), _points(m.group("n")), sign, m.group("rest").strip(STRIP))
    lead = _MENTION.match(text)
    rest = text[lead.end():].lstrip() if lead is not None else text
    found = keyword(rest, ("加分", "扣分", "减分"))
    if found is None:
        return None
    args, apart = found
    if not apart and not rest[2:].startswith("@"):
        return None  # 加分了吗, 扣分太狠了
    if _QUESTION.search(args):
        return None
    sign = 1 if rest.startswith("加") else -1
    target = lead.group("name") if lead is not None else None
    points, args = _take_points(args)
    if target is None:
        mention = _MENTION.match(args)
        if mention is not None:
            target, args = mention.group("name"), args[mention.end():].strip(STRIP)
        elif points is None:
            # 加分 董宝明 2分 原因: without @ the first word is the name.
            word, _, after = args.partition(" ")
            if word and not DIGIT.search(word):
                target, args = word, after.strip(STRIP)
        if points is None:
            points, args = _take_points(args)
    return _adjust(target, points, sign, args)


_DECISIONS: tuple[tuple[str, bool], ...] = tuple(
    sorted(
        (
            *((w, True) for w in ("通过", "同意", "属实", "核实", "确认", "批准")),
            *((w, False) for w in (
                "不通过", "不同意", "驳回", "拒绝", "不属实", "否决", "不批准",
            )),
        ),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
)


def _parse_verify(text: str) -> Command | None:
    """核查 12 通过 [说明] / 核查#12 驳回 理由."""
    found = keyword(text, ("核查", "审核"))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 核查一下, 核查了吗
    event_id, after = leading_id(rest)
    if event_id is None and rest and not after.startswith(tuple(w for w, _ in _DECISIONS)):
        return None  # 核查 一下3楼
    event_id = id_or_error(event_id, "Verify", "event_id_missing")
    for word, approve in _DECISIONS:
        if after.startswith(word):
            reason = after[len(word):].strip(STRIP) or None
            if not approve and reason is None:
                raise ParseError.of("Verify", "reject_reason_missing")
            return build(Verify, event_id=event_id, approve=approve, reason=reason)
    raise ParseError.of("Verify", "decision_missing")


def _parse_appeal(text: str) -> Command | None:
    """申诉 12 理由."""
    found = keyword(text, ("申诉",))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 申诉有用吗
    event_id, reason = leading_id(text[2:].lstrip(STRIP))
    event_id = id_or_error(event_id, "Appeal", "event_id_missing")
    if not any(c.isalnum() for c in reason):
        raise ParseError.of("Appeal", "appeal_reason_missing")
    return build(Appeal, event_id=event_id, reason=reason)



STEPS = (
    fixed(30, _PENDING_CHECKS, PendingChecks),
    fixed(31, _SCORE_HISTORY, ScoreHistory),
    fixed(32, _SCORE, Score),
    fixed(33, _REWARD, Reward),
    fixed(34, _GOOD_PERSON, GoodPersonCandidates),
    Step(120, on_text(_parse_points)),
    Step(130, on_text(_parse_verify)),
    Step(140, on_text(_parse_appeal)),
)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("积分", Score),
    ("我现在积分多少？", Score),
    ("积分明细", ScoreHistory),
    ("加分 @董宝明 2 帮租客代购", AdjustPoints),
    ("待核查", PendingChecks),
    ("核查 12 通过", Verify),
    ("申诉 12 当天已消毒", Appeal),
    ("奖励", Reward),
    ("好人候选", GoodPersonCandidates),
)
