"""统计: a subtree's figures of today, in the article's terms (tiers 1-4)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import UserError
from bot.grammar import Stats
from bot.permission import STAFF
from bot.router import Context, Later, Router
from bot.services import stats
from models import Node

router = Router(name=__name__)


@router.command(Stats, tiers={1, 2, 3, 4}, allow=STAFF, reads_others=True)
async def on_stats(cmd: Stats, ctx: Context) -> Later:
    """统计 [下级名称] — 查看本级（或下级）今日统计数字，例：统计 长春社区"""
    assert ctx.node is not None
    node = ctx.node
    if cmd.node is not None and cmd.node != node.name:
        node = await stats.find_below(ctx.session, root=node, name=cmd.node)
    node_id, name, now, zone = node.id, node.name, ctx.now(), ctx.zone

    async def read(session: AsyncSession) -> str:
        # A city's figures read every row of its subtree: after the batch, off the loop.
        root = await session.get(Node, node_id)
        if root is None:  # gone since the question (nodes are not deleted today)
            raise UserError(texts.Stats.UNKNOWN_NODE.format(name=name))
        figures = await stats.compute(session, node=root, day=now.astimezone(zone).date(),
                                      zone=zone, now=now)
        return stats.render(figures)

    return Later(read)
