"""帮助: the list of commands (one fixed phrase, many ways to write it)."""

from __future__ import annotations

import re

from bot.grammar.commands import Command, Help
from bot.grammar.core import END_PUNCT, fixed

_HELP = re.compile(
    r"/?(?:帮助|help|菜单|命令|功能|使用帮助|帮助菜单|功能菜单|命令列表|使用说明|\?"
    # 怎么用, 机器人怎么用, 有什么命令: asking how to use the bot, in as many words.
    r"|(?:这个|这)?(?:机器人|小助手|助手)?(?:怎么用|怎么使用|如何使用|怎么操作)(?:啊|呀)?"
    r"|(?:机器人)?(?:有|都有)(?:什么|哪些)(?:命令|功能))" + END_PUNCT,
    re.IGNORECASE,
)

STEPS = (fixed(30, _HELP, Help),)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("帮助", Help),
    ("菜单？", Help),
    ("help", Help),
)
