"""帮助: the list of commands (one fixed phrase, many ways to write it)."""

from __future__ import annotations

import re

from bot.grammar.commands import Command, Help
from bot.grammar.core import END_PUNCT, fixed

_HELP = re.compile(
    r"/?(?:帮助|help|菜单|命令|功能|使用帮助|帮助菜单|功能菜单|命令列表|使用说明|\?)" + END_PUNCT,
    re.IGNORECASE,
)

STEPS = (fixed(30, _HELP, Help),)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("帮助", Help),
    ("菜单？", Help),
    ("help", Help),
)
