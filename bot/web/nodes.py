"""Which node a page shows: the one asked for (404 unless the viewer's scope sees it), else
the viewer's first root (a superuser: the first tier-1 node)."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import texts
from bot.web.deps import Viewer
from models import Node


async def roots_of(session: AsyncSession, viewer: Viewer) -> list[Node]:
    """The top-most nodes the viewer sees (the nodes their menu offers)."""
    if viewer.scope.superuser:
        where = Node.parent_id.is_(None)
    else:
        where = Node.id.in_(viewer.scope.roots)
    return list((await session.execute(select(Node).where(where).order_by(Node.id))).scalars())


async def chosen(session: AsyncSession, viewer: Viewer, node_id: int | None) -> Node | None:
    """The node a page is about: `node_id` if visible (else 404, the same for a node that
    does not exist), or the viewer's first root; None when they see no node at all."""
    if node_id is not None:
        node = await session.get(Node, node_id)
        if node is None or not await viewer.scope.sees(session, node_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, texts.NOT_FOUND)
        return node
    roots = await roots_of(session, viewer)
    return roots[0] if roots else None
