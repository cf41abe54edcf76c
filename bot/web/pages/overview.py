"""总览: the 统计 figures of the viewer's subtree (the very service 统计 and /api/stats use),
a 14-day chart of returns, home watch and fevers, the nodes below ranked by open problems,
and the alerts (silent groups, fevers not followed up, the bot removed, paused accounts)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bot.api.deps import AppDep, MaybeId, ReadSessionDep
from bot.services import chain, dashboard, health, stats
from bot.web.deps import ViewerDep, render
from bot.web.nodes import chosen, roots_of

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, app: AppDep, session: ReadSessionDep,
                   viewer: ViewerDep,
                   node: MaybeId = None) -> HTMLResponse:
    """Today's figures of a node's subtree (default: the viewer's first root) and more."""
    root = await chosen(session, viewer, node)
    context: dict[str, Any] = {"figures": None}
    if root is not None:
        now, zone = app.now(), app.settings.zone
        ids = chain.subtree_select(root.id, root.tier)
        figures = await stats.compute(session, node=root, day=now.astimezone(zone).date(),
                                      zone=zone, now=now, node_ids=ids)
        days = await dashboard.trend(session, node_ids=ids, zone=zone, now=now)
        silent_after = timedelta(minutes=app.settings.notices.remind_after_minutes)
        accounts = await health.account_status(
            session, states=app.transport.account_states(), now=now)
        context = {
            "figures": figures,
            "trend": json.dumps({
                "days": [f"{d.day.month}-{d.day.day}" for d in days],
                "returns": [d.returns for d in days], "watching": [d.watching for d in days],
                "fevers": [d.fevers for d in days]}).replace("<", "\\u003c"),
            "ranking": await dashboard.ranking(session, root=root, now=now,
                                               silent_after=silent_after),
            "alerts": await dashboard.alerts(session, root=root, now=now,
                                             silent_after=silent_after, accounts=accounts),
            "zone": zone,
        }
    return render(request, "overview.html", viewer=viewer, node=root,
                  roots=await roots_of(session, viewer), page="overview", **context)
