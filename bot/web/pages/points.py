"""十二分制: the landlords' standing, the verifications waiting for the viewer (approve or
reject here with the service 核查 uses), appeals among them, and last week's lists."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot import texts as chat_texts
from bot.api.deps import AppDep, MaybeId, PathId, SessionDep
from bot.config import PointsSettings
from bot.domain import UserError
from bot.services import chain
from bot.services import points as pts
from bot.web import texts
from bot.web.deps import Viewer, ViewerDep, render
from bot.web.nodes import chosen, roots_of
from models import Membership, Node, Person, PointsEvent, Role

router = APIRouter()


async def verifier_nodes(session: AsyncSession, viewer: Viewer, settings: PointsSettings
                         ) -> list[Node]:
    """Where the viewer verifies points: the nodes of the verifier tier where they hold the
    verifier role (the chat's VERIFIER rule: 核查 in that node's group)."""
    if viewer.person_id is None:
        return []
    return list((await session.execute(
        select(Node).join(Membership, Membership.node_id == Node.id)
        .where(Membership.person_id == viewer.person_id,
               Membership.role == Role(settings.verifier_role),
               Node.tier == settings.verifier_tier).order_by(Node.id))).scalars())


@router.get("/points", response_class=HTMLResponse)
async def points_page(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                      node: MaybeId = None) -> HTMLResponse:
    """Standing below a node, the viewer's pending verifications, last week's lists."""
    settings, zone, now = app.settings.points, app.settings.zone, app.now()
    root = await chosen(session, viewer, node)
    standing: list[tuple[pts.LandlordRef, int]] = []
    lists: list[pts.WeekRow] = []
    week = pts.last_week(now, zone)
    if root is not None:
        refs = await pts.landlords_below(session, root=root)
        got = await pts.scores(session, landlord_ids=[r.person.id for r in refs], now=now,
                               zone=zone, settings=settings)
        standing = [(ref, got[ref.person.id]) for ref in refs]
        standing.sort(key=lambda item: (-item[1], item[0].person.id))
        lists = [row for row in await pts.week_rows(
            session, week=week, within=chain.subtree_select(root.id)) if row.board]
    pending: list[tuple[Node, list[pts.PendingLine], int]] = []
    for verifier in await verifier_nodes(session, viewer, settings):
        lines, total = await pts.pending(session, verifier_node=verifier, limit=100)
        pending.append((verifier, lines, total))
    return render(request, "points.html", viewer=viewer, page="points", node=root,
                  roots=await roots_of(session, viewer), standing=standing, pending=pending,
                  lists=lists, week=week, mask_name=pii.mask_name, mask_text=pii.mask_text,
                  rule_name=lambda code: pts.rule_name(settings, code),
                  status_name=chat_texts.Points.STATUS, zone=zone)


@router.post("/points/{event_id}/verify", response_class=HTMLResponse)
async def verify(
    request: Request, app: AppDep, viewer: ViewerDep, event_id: PathId,
    decision: Annotated[Literal["approve", "reject"], Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """核查 from the console: the same service, the same checks (the event must be below a
    node where the viewer verifies), the landlord told in chat as after 核查."""
    settings, zone, now = app.settings.points, app.settings.zone, app.now()
    approve = decision == "approve"
    try:
        async with app.session() as session, session.begin():
            event = await session.get(PointsEvent, event_id)
            nodes = await verifier_nodes(session, viewer, settings)
            by = await session.get(Person, viewer.person_id) if viewer.person_id else None
            verifier = None
            if event is not None and by is not None:
                above = await pts.ancestor_at(session, node_id=event.node_id,
                                              tier=settings.verifier_tier)
                verifier = next((n for n in nodes if above is not None and n.id == above.id),
                                None)
            if verifier is None or by is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, texts.NOT_FOUND)
            if not approve and not reason.strip():
                raise UserError(texts.VERIFY_NEEDS_REASON)
            event, landlord = await pts.verify(
                session, event_id=event_id, verifier_node=verifier, by=by, approve=approve,
                reason=reason.strip() or None, now=now, zone=zone, settings=settings)
            outcome = texts.VERIFIED_OK if approve else texts.VERIFIED_NO
            message = outcome.format(id=event.id, name=pii.mask_name(landlord.name))
    except UserError as exc:
        return render(request, "_verified.html", event_id=event_id, message=exc.text,
                      error=True, status_code=status.HTTP_409_CONFLICT)
    return render(request, "_verified.html", event_id=event_id, message=message, error=False)
