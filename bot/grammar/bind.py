"""绑定 / 绑定群: a person's or a group's invite code."""

from __future__ import annotations

import re

from bot.grammar.commands import BindGroup, BindPerson, Command
from bot.grammar.core import STRIP, ParseError, Step, keyword, on_text

_CODE = re.compile(r"[A-Za-z0-9]{4,12}", re.ASCII)
_ALNUM = re.compile(r"[A-Za-z0-9]+", re.ASCII)


def _parse_bind(text: str) -> Command | None:
    """绑定 / 绑定群 / 群绑定 followed by a code."""
    cls: type[BindPerson | BindGroup] = BindGroup
    found = keyword(text, ("绑定群", "群绑定"))
    if found is None:
        cls, found = BindPerson, keyword(text, ("绑定",))
    if found is None:
        return None
    rest, apart = found
    if not apart:
        return None  # 绑定好了吗: chat about binding
    name = cls.__name__
    if not rest:
        raise ParseError.of(name, "code_missing")
    compact = rest.replace(" ", "")
    code = compact if _ALNUM.fullmatch(compact) else rest.split(" ")[0].strip(STRIP)
    if not _CODE.fullmatch(code):
        raise ParseError.of(name, "code_invalid")
    return cls(code=code.upper())



STEPS = (Step(40, on_text(_parse_bind)),)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("绑定 A7K2Q9", BindPerson),
    ("绑定群：B8M3R4", BindGroup),
)
