"""统计: a subtree's figures of today, in the article's terms (tiers 1-4)."""

from __future__ import annotations

from bot.grammar import Stats
from bot.permission import STAFF
from bot.router import Context, Router
from bot.services import stats

router = Router(name=__name__)


@router.command(Stats, tiers={1, 2, 3, 4}, allow=STAFF)
async def on_stats(cmd: Stats, ctx: Context) -> str:
    """统计 [下级名称] — 查看本级（或下级）今日统计数字，例：统计 长春社区"""
    assert ctx.node is not None
    node = ctx.node
    if cmd.node is not None and cmd.node != node.name:
        node = await stats.find_below(ctx.session, root=node, name=cmd.node)
    now = ctx.now()
    figures = await stats.compute(ctx.session, node=node, day=now.astimezone(ctx.zone).date(),
                                  zone=ctx.zone, now=now)
    return stats.render(figures)
