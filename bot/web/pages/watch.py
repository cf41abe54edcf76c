"""居家观察: tenants and workers under home watch in the viewer's part, masked; a number is
shown whole only through personal.reveal, with a reason, recorded in the access log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from bot import pii
from bot.api.deps import AppDep, MaybeId, PathId, SessionDep
from bot.services import chain, personal, watch
from bot.web import texts
from bot.web.deps import ViewerDep, render
from bot.web.nodes import chosen, roots_of
from models import Node

router = APIRouter()


@router.get("/watch", response_class=HTMLResponse)
async def watch_list(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                     node: MaybeId = None) -> HTMLResponse:
    """Everyone under home watch below a node (default: the viewer's first root)."""
    root = await chosen(session, viewer, node)
    rows = [] if root is None else await watch.under_watch(
        session, node_ids=chain.subtree_select(root.id), now=app.now())
    return render(request, "watch.html", viewer=viewer, page="watch", node=root, rows=rows,
                  roots=await roots_of(session, viewer), mask_name=pii.mask_name,
                  zone=app.settings.zone)


@router.post("/watch/{person_id}/reveal", response_class=HTMLResponse)
async def reveal(
    request: Request, app: AppDep, viewer: ViewerDep,
    person_id: PathId,
    field: Annotated[Literal["mobile", "id_number"], Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """One number of a person under watch in the viewer's part, shown whole once (an htmx
    fragment); the reason and the viewer go to the access log in the same transaction."""
    why = reason.strip()
    if len(why) < 2:
        return render(request, "_reveal.html", person_id=person_id, field=field, value=None,
                      error=texts.REVEAL_NEEDS_REASON,
                      status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    async with app.session() as session, session.begin():
        person = await watch.watched_person(
            session, node_ids=select(Node.id).where(viewer.scope.filter(Node.id)),
            person_id=person_id, now=app.now())
        if person is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, texts.NOT_FOUND)
        value = await personal.reveal(session, person, field, who=viewer.who, why=why,
                                      now=app.now())
    return render(request, "_reveal.html", person_id=person_id, field=field,
                  value=value or texts.REVEAL_NONE, error="")
