"""总览: the 统计 figures of the viewer's subtree (the very service 统计 and /api/stats use)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bot.api.deps import AppDep, MaybeId, SessionDep
from bot.services import stats
from bot.web.deps import ViewerDep, render
from bot.web.nodes import chosen, roots_of

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                   node: MaybeId = None) -> HTMLResponse:
    """Today's figures of a node's subtree (default: the viewer's first root)."""
    root = await chosen(session, viewer, node)
    figures = None
    if root is not None:
        now = app.now()
        figures = await stats.compute(session, node=root, day=now.astimezone(
            app.settings.zone).date(), zone=app.settings.zone, now=now)
    return render(request, "overview.html", viewer=viewer, node=root, figures=figures,
                  roots=await roots_of(session, viewer), page="overview")
