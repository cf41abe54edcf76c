"""Membership grammar: 确认/不是 (a link a landlord confirms), 移除 (a role taken away) and
退租 (a tenancy ended): their typed commands, patterns and hints."""

from __future__ import annotations

import re
from typing import ClassVar, Final

from pydantic import Field

from bot.grammar.commands import Command
from bot.grammar.core import Hints, Step, on_text

__all__ = [
    "EXAMPLES", "STEPS", "USAGE",
    "ConfirmLink", "EndTenancy", "RejectLink", "RemoveMember", "parse",
]

USAGE: Final[dict[str, str]] = {
    "ConfirmLink": "格式：确认 编号（房东确认新成员就是已登记的租客），例：确认 3",
    "RejectLink": "格式：不是 编号（房东确认新成员不是已登记的租客），例：不是 3",
    "RemoveMember": "格式：移除 @某人 [原因] 或 移除 登记姓名 [原因]，例：移除 @王明 已搬走",
    "EndTenancy": "格式：退租 租客姓名 [原因]，例：退租 王明 已搬走",
}
PROBLEMS: Final[dict[str, str]] = {
    "id_missing": "缺少编号",
    "target_missing": "请@要移除的人，或写其登记姓名",
    "name_missing": "缺少租客姓名",
}


class ConfirmLink(Command):
    """确认 N: the landlord confirms a new contact is the tenant he registered."""

    keyword: ClassVar[str] = "确认"
    request_id: int = Field(ge=1)


class RejectLink(Command):
    """不是 N: the landlord says a new contact is not the tenant he registered."""

    keyword: ClassVar[str] = "不是"
    request_id: int = Field(ge=1)


class RemoveMember(Command):
    """移除 @某人 / 移除 姓名: take a person's role at this group's node away."""

    keyword: ClassVar[str] = "移除"
    target: str = Field(min_length=1, max_length=100)
    mentioned: bool = False
    reason: str = Field(default="", max_length=200)


class EndTenancy(Command):
    """退租 姓名: a tenant of this landlord's place has moved out."""

    keyword: ClassVar[str] = "退租"
    name: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=200)


_LINK = re.compile(r"(?P<word>确认|不是)\s*(?:关联|身份)?\s*#?\s*(?P<n>[0-9]{1,9})[。.!]*")
_REMOVE = re.compile(r"(?:移除|移出)(?P<rest>(?:\s.*)?|@.*)", re.DOTALL)
_END_TENANCY = re.compile(r"(?:退租|已退租)(?P<rest>(?:\s.*)?)", re.DOTALL)
_TARGET = re.compile(r"(?P<at>@)?(?P<target>[^\s@]+)\s*(?P<reason>.*)", re.DOTALL)


_HINTS = Hints(USAGE, PROBLEMS)
_error = _HINTS.error
_build = _HINTS.build


def parse(text: str) -> Command | None:
    """One of the membership commands, None when the text is none of them (ParseError when it
    is one with wrong arguments). `text` is normalised."""
    m = _LINK.fullmatch(text)
    if m is not None:
        cls = ConfirmLink if m.group("word") == "确认" else RejectLink
        return _build(cls, request_id=int(m.group("n")))
    m = _REMOVE.fullmatch(text)
    if m is not None:
        target = _TARGET.fullmatch(m.group("rest").strip())
        if target is None:
            raise _error("RemoveMember", "target_missing")
        return _build(RemoveMember, target=target.group("target"),
                      mentioned=bool(target.group("at")), reason=target.group("reason").strip())
    m = _END_TENANCY.fullmatch(text)
    if m is not None:
        target = _TARGET.fullmatch(m.group("rest").strip())
        if target is None:
            raise _error("EndTenancy", "name_missing")
        return _build(EndTenancy, name=target.group("target"),
                      reason=target.group("reason").strip())
    return None


# Before every other family: 确认 3 / 不是 3 / 移除 … / 退租 … are whole messages.
STEPS = (Step(0, on_text(parse)),)
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("确认 3", ConfirmLink),
    ("不是 3", RejectLink),
    ("移除 @王明 已搬走", RemoveMember),
    ("退租 王明 已搬走", EndTenancy),
)
