"""Up the chain: 反馈 (feedback), 答复 (answers), 待办 (open tickets)."""

from __future__ import annotations

import re

from bot.grammar.commands import Answer, Command, Feedback, Todo
from bot.grammar.core import (
    END_PUNCT,
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

_TODO = re.compile(r"(?:我的|查看|查询)?(?:待办事项|待办|待处理|待回复)" + END_PUNCT)


def _parse_feedback(text: str) -> Command | None:
    """反馈 内容 / 反馈：内容 (反馈一下 is chatter)."""
    found = keyword(text, ("反馈",))
    if found is None:
        return None
    _, apart = found
    if not apart:
        return None  # 反馈一下, 反馈给社区了
    body = text[2:].lstrip(TEXT_SEPARATORS).strip()
    if not any(c.isalnum() for c in body):
        raise ParseError.of("Feedback", "feedback_missing")
    return build(Feedback, text=body)


def _parse_answer(text: str) -> Command | None:
    """答复 12 内容 / 答复#12 内容."""
    found = keyword(text, ("答复",))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 答复了吗
    rest = re.sub(r"^(?:反馈|工单)", "", text[2:].lstrip(STRIP))  # keep the closing 。
    ticket_id, body = leading_id(rest)
    ticket_id = id_or_error(ticket_id, "Answer", "ticket_id_missing")
    if not any(c.isalnum() for c in body):
        raise ParseError.of("Answer", "answer_missing")
    return build(Answer, ticket_id=ticket_id, text=body)



STEPS = (
    fixed(30, _TODO, Todo),
    Step(100, on_text(_parse_feedback)),
    Step(110, on_text(_parse_answer)),
)
