"""帮助: what this sender may use in this group, built from the handlers' docstrings."""

from __future__ import annotations

from bot import texts
from bot.grammar import Help
from bot.router import Context, Router

router = Router(name=__name__)


@router.command(Help, needs_group=False)
async def on_help(cmd: Help, ctx: Context) -> str:
    """帮助 — 查看您在本群可用的命令。"""
    lines = [texts.Help.HEADER]
    lines += [texts.Help.LINE.format(usage=spec.usage) for spec in ctx.specs if spec.allowed(ctx)]
    if ctx.node is not None:
        lines.append(texts.Help.FOOTER)
    return "\n".join(lines)
