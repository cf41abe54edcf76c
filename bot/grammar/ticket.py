"""Up the chain: 反馈 (feedback), 答复 (answers), 待办 (open tickets)."""

from __future__ import annotations

import re

from bot.grammar.commands import Answer, Command, Feedback, Todo
from bot.grammar.core import (
    END_PUNCT,
    QUESTION,
    STRIP,
    TEXT_SEPARATORS,
    ParseError,
    Step,
    build,
    fixed,
    id_or_error,
    keyword,
    leading_id,
    on_text,
)

# --- up the chain: feedback, answers, to-do --------------------------------------------------

_TODO = re.compile(r"(?:我的|查看|查询|有什么|有没有|还有什么|还有哪些)?"
                   r"(?:待办事项|待办|待处理|待回复)" + END_PUNCT)


# 我想反馈一下…, 问题反馈：…, 反馈一下：…, 反映个问题: the polite ways to start a feedback;
# 投诉：…, 建议：… too, set apart (建议大家少出门 is advice, not a ticket).
_FEEDBACK_HEAD = re.compile(
    r"(?:我想|我要|想|我|麻烦|请)?(?:问题|情况)?(?:反馈|反映|投诉|建议)"
    r"(?:个问题|一个问题|一下|下)?"
)
_SET_APART_HEADS = ("反映", "投诉", "建议")


# 楼道灯坏了好几天了，麻烦反映一下: the problem first, then the request to pass it on.
_RELAY_TAIL = re.compile(
    r"\s*[,.!;]\s*(?:麻烦|请|帮忙|请帮忙|麻烦帮忙|帮我)(?:帮我|您|你)?(?:向上|向社区|给社区)?"
    r"(?:反映|反馈)(?:一下|下)?(?:吧|谢谢)?" + END_PUNCT + "$")
# 电梯坏了谁管, 水管漏水找谁: a fault in the building, asking who sees to it.
_FAULT_WHO = re.compile(
    r"(?P<body>.*(?:坏了|坏掉了|漏水|堵了|堵住了|不亮|停水|停电|没水|没电|跳闸).*?)"
    r"\s*[,]?\s*(?:谁管|找谁|谁来修|谁修|有人管吗|没人管)" + END_PUNCT)


def _parse_feedback(text: str) -> Command | None:
    """反馈 内容 / 反馈：内容 / 我想反馈一下… / 问题反馈：… (反馈给社区了 is chatter); the
    problem first: …，麻烦反映一下 / 电梯坏了谁管."""
    tail = _RELAY_TAIL.search(text)
    if tail is not None and tail.start() > 0:
        body = text[:tail.start()].strip(STRIP)
        if sum(c.isalnum() for c in body) >= 4:
            return build(Feedback, text=body, unmarked=False)
    fault = _FAULT_WHO.fullmatch(text) if ("谁" in text or "人管" in text) else None
    if fault is not None and sum(c.isalnum() for c in fault.group("body")) >= 3:
        return build(Feedback, text=fault.group("body").strip(STRIP), unmarked=True)
    m = _FEEDBACK_HEAD.match(text)
    if m is None:
        return None
    head, rest = m.group(), text[m.end():]
    bare = head in ("反馈", "反映")
    if rest.startswith(("给", "了", "过", "的")) or (QUESTION.search(text) and not bare):
        return None  # 反馈给社区了, 反馈了吗
    if head in _SET_APART_HEADS and rest[:1] not in TEXT_SEPARATORS:
        return None  # 反映很好, 建议大家少出门
    if bare and rest and rest[0] not in TEXT_SEPARATORS and not rest.startswith(("一下", "下")):
        return None  # 反馈意见很好: the word inside a sentence
    body = rest.lstrip(TEXT_SEPARATORS).strip()
    unmarked = not any(word in head for word in ("反馈", "反映"))
    if not any(c.isalnum() for c in body):
        if unmarked:
            return None  # 投诉： alone
        raise ParseError.of("Feedback", "feedback_missing")
    return build(Feedback, text=body, unmarked=unmarked)


# 回覆 is how 繁体 writes 回复 (覆 is simplified too, so normalise keeps it).
_REPLY = re.compile(r"回[复覆]\s*(?:第\s*)?#?\s*[0-9]{1,9}(?![0-9])\s*[,:]?\s*\S")
# 答复1号 已处理, 回复 第1条: the words around the ticket's number.
_NTH = re.compile(r"^第\s*(?=[0-9])")
_NTH_TAIL = re.compile(r"^(?:号|条)(?![楼院栋幢室房门铺])(?:反馈|工单|问题)?\s*[,:]?\s*")


def _parse_answer(text: str) -> Command | None:
    """答复 12 内容 / 答复#12 内容 / 回复 12 内容 (回复 needs the number and the answer)."""
    if _REPLY.match(text):
        text = "答复" + text[2:]
    found = keyword(text, ("答复",))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 答复了吗
    rest = re.sub(r"^(?:反馈|工单)", "", text[2:].lstrip(STRIP))  # keep the closing 。
    ticket_id, body = leading_id(_NTH.sub("", rest))
    if ticket_id is not None:
        body = _NTH_TAIL.sub("", body)
    ticket_id = id_or_error(ticket_id, "Answer", "ticket_id_missing")
    if not any(c.isalnum() for c in body):
        raise ParseError.of("Answer", "answer_missing")
    return build(Answer, ticket_id=ticket_id, text=body)



STEPS = (
    fixed(30, _TODO, Todo),
    Step(100, on_text(_parse_feedback)),
    Step(110, on_text(_parse_answer)),
)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("反馈 楼道灯坏了", Feedback),
    ("问题反馈：三楼水管漏水", Feedback),
    ("投诉：隔壁装修太吵", Feedback),
    ("建议：能不能多开一个出入口", Feedback),
    ("答复 12 已修好", Answer),
    ("回复 1 已修好", Answer),
    ("待办", Todo),
)
