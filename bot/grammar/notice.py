"""Notices down the chain: relays, acknowledgements, progress, sending and scheduling."""

from __future__ import annotations

import re

from bot.grammar.commands import (
    Ack,
    Command,
    Progress,
    Relay,
    ScheduleCancel,
    ScheduleList,
    ScheduleNotice,
    SendNotice,
    When,
)
from bot.grammar.core import (
    CN_NUMBER,
    DIGIT,
    END_PUNCT,
    QUESTION,
    TEXT_SEPARATORS,
    ParseError,
    Step,
    build,
    by_length,
    cn_int,
    fixed,
    id_or_error,
    keyword,
    leading_id,
    on_plain,
    on_text,
    set_apart,
)
from bot.grammar.times import WHEN, when_from

# --- notices: tags, relays, acknowledgements, progress ---------------------------------------

_TAG = r"【(?:紧急)?通知#(?P<tag>[0-9]{1,9})】"
_LEADING_TAG = re.compile(_TAG, re.ASCII)
# normalise() appends the tag of a quoted notice to the reply: `收到 【通知#27】`.
_TRAILING_TAG = re.compile(r" " + _TAG + r"$", re.ASCII)

_ACK_WORD = (
    r"(?:(?:嗯|哦|噢|喔)+[ ,]*|(?:谢谢|感谢|好的)[ ,]+)?"  # 嗯嗯 收到, 谢谢，收到
    r"(?:已收到通知|通知已收到|已经收到|收到收到|已收到了|已收到|收到了|收到啦|收到|收悉|已阅|阅|已读|已知悉|知悉|"
    r"明白了|明白|了解了|了解|知道了|好的|好滴|好嘞|好咧|好|收|ok(?:ay)?|嗯嗯收到)"
)
# What may follow the acknowledgement: a short promise to act on it, thanks, emoji.
_ACK_ADVERB = (
    r"(?:我们|我|本人|会|将|一定|保证|马上|立马|立即|立刻|随即|尽快|及时|认真|坚决|按时|按要求|"
    r"今天|今日|明天|现在|这就|正在|已经|已|就|这边|我这边)"
)
_ACK_VERB = (
    r"(?:落实|执行|照办|办理|安排|处理|部署|跟进|配合|完成|去办|去做|整改|消毒|办|做)"
)
# Alone (收到通知) it is news, not a promise; 发 only where it goes (发到…, 发群里, 发给…).
_ACK_PASS_ON = r"(?:通知|转发|传达|转达|转告|发(?=到|至|给|群|在群))"
# One group, so that `_ACK_OBJECT*` repeats the whole object (给各租客, 到房东群, 商户们).
_ACK_OBJECT = (
    r"(?:(?:给|到)?(?:各位|各个|各|所有|全体|每个|每位|全部)?"
    r"(?:(?:(?:租客|房客|房东|商户|住户|业主|小组|工作)?群里?|租客|房客|房东|大家|各户|住户|商户"
    r"|户|人员|下去|到位|到户|到人|任务|好|了)们?))"
)
# 已转发, 已通知到位, 都已经传达了: passing a notice on is itself the acknowledgement.
_ACK_DONE = (r"(?:(?:都|全部)?(?:已经|已)(?:全部|都)?" + _ACK_PASS_ON
             # 已落实, 已安排到位: done as the notice asked.
             + r"|(?:都|全部)?(?:已经|已)(?:全部|都)?(?:落实|执行|部署|安排)(?:到位|完毕|好)?了?"
             + r"|(?:转发|传达|转达)了)")
_ACK_PROMISE = (
    f"(?:{_ACK_ADVERB}*{_ACK_VERB}{_ACK_OBJECT}*|{_ACK_ADVERB}+{_ACK_PASS_ON}{_ACK_OBJECT}*"
    f"|{_ACK_ADVERB}*{_ACK_PASS_ON}{_ACK_OBJECT}+|{_ACK_ADVERB}+"
    # 通知已转发各商户: the notice named, then what was done with it.
    f"|(?:通知|文件|消息){_ACK_ADVERB}+{_ACK_PASS_ON}{_ACK_OBJECT}*)"
)
_ACK_THANKS = r"(?:谢谢|感谢|多谢|辛苦了|辛苦|领导|书记|主任|老师|您|请放心|放心)+"
_ACK_EMOJI = r"(?:\[[^\[\]\s]{1,8}\]|[\u2600-\u27bf\U0001f300-\U0001faff\ufe0f])"
_ACK_REF = r"(?:【(?:紧急)?通知#(?P<r1>[0-9]{1,9})】|通知#?(?P<r2>[0-9]{1,9})|#(?P<r3>[0-9]{1,9}))"
_ACK_GAP = r"[ ,;:!.。~]*"
_ACK_PARTICLE = r"(?:哈|哦|啊|呀|哒|嘞|咯)+"  # 收到了哈
_ACK_TAIL_ITEM = (f"(?:{_ACK_WORD}|{_ACK_PROMISE}|{_ACK_THANKS}|{_ACK_EMOJI}|{_ACK_REF}"
                  f"|{_ACK_PARTICLE})")
# Atomic items and a possessive loop: the tail is read left to right, never re-split, so a
# long run of fillers cannot make the match backtrack exponentially.
_ACK = re.compile(
    r"(?:@\S+ )*+"  # a reply often mentions the commander who sent the notice
    r"(?:(?:【(?:紧急)?通知#(?P<p1>[0-9]{1,9})】|通知#?(?P<p2>[0-9]{1,9})|#?(?P<p3>[0-9]{1,9}))"
    + _ACK_GAP + ")?"
    + f"(?:{_ACK_WORD}|{_ACK_DONE}{_ACK_OBJECT}*)"
    + f"(?:{_ACK_GAP}(?>{_ACK_TAIL_ITEM}))*+{_ACK_GAP}"
    + r"(?: @[^\s@]+)*",  # or mentions them after it
    re.IGNORECASE,
)
# 1 is how many groups ask to acknowledge (回复1); only on its own, never with a number.
_ACK_ONE = re.compile(r"(?:@\S+ )*1" + f"(?:{_ACK_GAP}{_ACK_EMOJI})*{_ACK_GAP}")
_ACK_MAX_LENGTH = 40


def _parse_ack(text: str, quoted: int | None) -> Command | None:
    """收到 / 好的 / 1 / 收到，马上落实 / 27收到 / 收到 #27 (quoted: a quoted notice's tag)."""
    if _ACK_ONE.fullmatch(text):
        return Ack(notice_id=quoted)
    if len(text) > _ACK_MAX_LENGTH:
        return None
    m = _ACK.fullmatch(text)
    if m is None:
        return None
    named = next((m.group(g) for g in ("p1", "p2", "p3") if m.group(g)), None)
    if named is None:
        # The tail group only keeps its last repetition, so look for a reference again.
        ref = re.search(_ACK_REF, text)
        if ref is not None:
            named = next(g for g in ref.groups() if g)
    notice_id = int(named) if named is not None else quoted
    if notice_id is not None and notice_id < 1:
        return None
    return Ack(notice_id=notice_id)


def _parse_relay(text: str) -> Command | None:
    """【通知#27】… : a tagged notice posted again; only the tag and an ack is an Ack."""
    m = _LEADING_TAG.match(text)
    if m is None:
        return None
    notice_id = int(m.group("tag"))
    if notice_id < 1:
        return None
    rest = text[m.end():].strip()
    if rest and (_ACK.fullmatch(rest) or _ACK_ONE.fullmatch(rest)):
        return Ack(notice_id=notice_id)
    return Relay(notice_id=notice_id)


_PROGRESS = re.compile(
    r"(?:查|查看|查询|看)?(?:通知)?进度\s*"
    r"(?:(?:#|通知#?|【(?:紧急)?通知#)\s*(?P<a>[0-9]{1,9})】?|(?P<b>[0-9]{1,9}))?"
    + END_PUNCT
    # 通知1进度, 通知#27的进度: the notice named first.
    + r"|(?:查|查看|查询|看)?通知\s*#?\s*(?P<c>[0-9]{1,9})\s*的?进度" + END_PUNCT
    # 谁还没收到, 哪些群没回复: who has not acknowledged is what 进度 shows.
    + r"|(?P<who>(?:谁|哪些人|哪些群|哪个群|哪几个群|哪些)(?:还)?(?:没|没有|未)"
    + r"(?:收到|回复|确认|回)(?:的)?(?:通知)?)" + END_PUNCT,
    re.ASCII,
)


def _parse_progress(text: str, quoted: int | None) -> Command | None:
    """进度 / 进度 27 / 进度#27 / 通知进度 27 / 查进度 (or 进度 under a quoted notice)."""
    m = _PROGRESS.fullmatch(text)
    if m is None:
        return None
    named = m.group("a") or m.group("b") or m.group("c")
    notice_id = int(named) if named is not None else quoted
    if notice_id is not None and notice_id < 1:
        raise ParseError.of("Progress", "number_invalid")
    return Progress(notice_id=notice_id, unmarked=m.group("who") is not None)


# --- sending and scheduling notices ----------------------------------------------------------

_TIER_WORD = re.compile(
    r"到\s*第?\s*(?P<n>[0-9]{1,3}|" + CN_NUMBER + r")\s*级(?:群)?", re.ASCII
)
_NOTICE_HEAD = re.compile(
    r"(?P<preview>预览\s*)?(?P<urgent>紧急)?通知"
    r"(?=$|[" + TEXT_SEPARATORS + r"]|到\s*第?\s*(?:[0-9]|[一二两三四五六七八九十])+\s*级)"
)


_NOTICE_GLUED = re.compile(r"(?:紧急)?通知(?:大家|各位|所有|全体|各)")


def _notice_body(rest: str, command: str) -> tuple[int | None, str]:
    """[到3级] 内容 after a notice keyword: (down_to_tier, text); ParseError if no content."""
    rest = rest.lstrip(TEXT_SEPARATORS)
    tier = None
    m = _TIER_WORD.match(rest)
    if m is not None:
        tier = cn_int(m.group("n"))
        if tier is None or not 1 <= tier <= 5:
            raise ParseError.of(command, "tier_range")
        rest = rest[m.end():].lstrip(TEXT_SEPARATORS)
    text = rest.strip()
    if not any(c.isalnum() for c in text):
        raise ParseError.of(command, "notice_text_missing")
    return tier, text


def _parse_notice(text: str) -> Command | None:
    """通知 [到3级] 内容 / 紧急通知 … / 预览 通知 … ; 通知书, 通知了吗, 通知大家 are chatter."""
    m = _NOTICE_HEAD.match(text)
    if m is None:
        if _NOTICE_GLUED.match(text) and not QUESTION.search(text):
            # 通知大家明天降温: a notice with its content glued on; say how to send it.
            raise ParseError.of("SendNotice", "notice_glued")
        return None
    tier, body = _notice_body(text[m.end():], "SendNotice")
    return build(
        SendNotice, text=body, urgent=bool(m.group("urgent")),
        preview=bool(m.group("preview")), down_to_tier=tier,
    )


_SCHEDULE_HEAD = re.compile(r"定时(?P<urgent>紧急)?通知")
_DAILY = re.compile(r"(?:每天|每日)\s*")
_DAILY_NOTICE = re.compile(
    r"\s*(?P<urgent>紧急)?通知(?=$|[" + TEXT_SEPARATORS + r"]|到\s*第?\s*\S+?\s*级)"
)


def _schedule(when: When, *, daily: bool, urgent: bool, rest: str) -> Command:
    """The ScheduleNotice for a parsed time and the rest of the message."""
    if daily and when.has_date:
        raise ParseError.of("ScheduleNotice", "daily_with_date")
    tier, body = _notice_body(rest, "ScheduleNotice")
    return build(
        ScheduleNotice, when=when, daily=daily, text=body, urgent=urgent, down_to_tier=tier,
    )


def _parse_schedule(text: str) -> Command | None:
    """定时通知 明天8:00 内容 / 定时通知 每天 18点 内容 / 每天 18:00 [紧急]通知 内容."""
    head = _SCHEDULE_HEAD.match(text)
    if head is not None:
        rest = text[head.end():]
        daily = _DAILY.match(rest.lstrip(TEXT_SEPARATORS))
        if daily is not None:
            rest = rest.lstrip(TEXT_SEPARATORS)[daily.end():]
        m = WHEN.match(rest.lstrip(TEXT_SEPARATORS))
        if m is None:
            if daily is None and not set_apart(rest):
                return None  # 定时通知发了吗
            raise ParseError.of("ScheduleNotice", "time_missing")
        when = when_from(m, "ScheduleNotice")
        return _schedule(
            when, daily=daily is not None, urgent=bool(head.group("urgent")),
            rest=rest.lstrip(TEXT_SEPARATORS)[m.end():],
        )
    daily = _DAILY.match(text)
    if daily is None:
        return None
    rest = text[daily.end():]
    m = WHEN.match(rest)
    if m is None:
        if _DAILY_NOTICE.match(rest):
            raise ParseError.of("ScheduleNotice", "time_missing")  # 每天 通知 …
        return None  # 每天都要消毒
    notice = _DAILY_NOTICE.match(rest, m.end())
    if notice is None:
        return None  # 每天8点测体温
    when = when_from(m, "ScheduleNotice")
    return _schedule(
        when, daily=True, urgent=bool(notice.group("urgent")), rest=rest[notice.end():],
    )


_SCHEDULE_LIST = re.compile(
    r"(?:定时列表|定时通知列表|我的定时|我的定时通知|查看定时|查看定时通知|定时任务)" + END_PUNCT
)
_SCHEDULE_CANCEL = by_length("取消定时通知", "删除定时通知", "取消定时", "删除定时")


def _parse_schedule_cancel(text: str) -> Command | None:
    """取消定时 5 / 取消定时#5 / 删除定时 5."""
    found = keyword(text, _SCHEDULE_CANCEL)
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 取消定时了吗
    schedule_id, after = leading_id(rest)
    if schedule_id is not None and DIGIT.search(after):
        raise ParseError.of("ScheduleCancel", "invalid")  # 取消定时 5 6: one at a time
    return ScheduleCancel(
        schedule_id=id_or_error(schedule_id, "ScheduleCancel", "schedule_id_missing")
    )



STEPS = (
    Step(10, lambda m: _parse_relay(m.raw)),
    Step(20, lambda m: _parse_ack(m.text, m.quoted)),
    fixed(30, _SCHEDULE_LIST, ScheduleList),
    Step(35, lambda m: _parse_progress(m.plain, m.quoted)),
    Step(80, on_text(_parse_schedule)),
    Step(85, on_plain(_parse_schedule_cancel)),
    Step(90, on_text(_parse_notice)),
)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("通知 请各房东今日完成楼道消毒", SendNotice),
    ("[强]收到", Ack),
    ("已转发", Ack),
    ("进度 27", Progress),
    ("定时通知 明天8:00 开会", ScheduleNotice),
    ("定时列表", ScheduleList),
    ("取消定时 5", ScheduleCancel),
)
