"""商铺企业: the shop rows' daily check-ins and reopening registrations (approved or rejected
here by the community's commander or secretary, with the service 复工审核 uses), the
enterprises' files and daily reports, the key projects' work cards, below a node."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot import texts as chat_texts
from bot.api.deps import AppDep, MaybeId, PathId, SessionDep
from bot.domain import UserError
from bot.services import chain, shop
from bot.web import texts
from bot.web.deps import Viewer, ViewerDep, render
from bot.web.nodes import chosen, roots_of
from models import (
    Enterprise,
    EnterpriseReport,
    Membership,
    Node,
    NodeKind,
    Person,
    Role,
    ShopPatrol,
    ShopReopening,
    WorkCard,
)
from models.shop import ReopeningStatus

router = APIRouter()
REVIEWER_ROLES = (Role.COMMANDER, Role.SECRETARY)


async def reviews_at(session: AsyncSession, viewer: Viewer, community: Node | None) -> bool:
    """Whether the viewer decides reopenings of this community (the chat's rule for 复工审核:
    its commander or secretary)."""
    if community is None or viewer.person_id is None:
        return False
    held = await session.execute(select(Membership.id).where(
        Membership.person_id == viewer.person_id, Membership.node_id == community.id,
        Membership.role.in_([str(r) for r in REVIEWER_ROLES])))
    return held.first() is not None


@router.get("/units", response_class=HTMLResponse)
async def units_page(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                     node: MaybeId = None,
                     day: Annotated[date | None, Query(alias="date")] = None) -> HTMLResponse:
    """Check-ins, reopenings, enterprises' reports and work cards of a day below a node."""
    zone = app.settings.zone
    root = await chosen(session, viewer, node)
    when = day or app.now().astimezone(zone).date()
    ids = chain.id_filter([] if root is None else chain.Subtree(root.id, root.tier))
    names = {n.id: n for n in (await session.execute(
        select(Node).where(Node.id.in_(ids)))).scalars()}
    regs = await shop.reopenings(session, node_ids=ids)
    reviewable: set[int] = set()
    for row in regs:
        if row.reg.status == ReopeningStatus.REVIEW and await reviews_at(
                session, viewer, await shop.community_of(session, node=row.node)):
            reviewable.add(row.reg.id)
    patrols = list((await session.execute(
        select(ShopPatrol).where(ShopPatrol.node_id.in_(ids), ShopPatrol.day == when)
        .order_by(ShopPatrol.node_id))).scalars())
    rows = [n for n in names.values() if n.kind == NodeKind.SHOP_ROW]
    enterprises = list((await session.execute(
        select(Enterprise, Person).outerjoin(Person, Person.id == Enterprise.liaison_id)
        .where(Enterprise.node_id.in_(ids)).order_by(Enterprise.node_id))).tuples())
    reports = {r.node_id: r for r in (await session.execute(
        select(EnterpriseReport).where(EnterpriseReport.node_id.in_(ids),
                                       EnterpriseReport.day == when))).scalars()}
    cards = list((await session.execute(
        select(WorkCard).where(WorkCard.node_id.in_(ids), WorkCard.day == when)
        .order_by(WorkCard.node_id))).scalars())
    projects = [n for n in names.values() if n.kind == NodeKind.PROJECT]
    return render(request, "units.html", viewer=viewer, page="units", node=root,
                  roots=await roots_of(session, viewer), day=when, names=names, regs=regs,
                  reviewable=reviewable, patrols=patrols, rows=rows,
                  enterprises=enterprises, reports=reports, cards=cards, projects=projects,
                  mask_name=pii.mask_name, mask_text=pii.mask_text,
                  reg_status=chat_texts.Shop.STATUS, zone=zone)


@router.post("/units/reopening/{registration_id}/review", response_class=HTMLResponse)
async def review(
    request: Request, app: AppDep, viewer: ViewerDep, registration_id: PathId,
    decision: Annotated[Literal["approve", "reject"], Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """复工审核 from the console: the same service and checks (the registration's community
    must be one the viewer reviews for), the row's group told in chat as after 复工审核."""
    approve = decision == "approve"
    try:
        async with app.session() as session, session.begin():
            reg = await session.get(ShopReopening, registration_id)
            row_node = await session.get(Node, reg.node_id) if reg is not None else None
            community = None if row_node is None else await shop.community_of(
                session, node=row_node)
            by = await session.get(Person, viewer.person_id) if viewer.person_id else None
            if (reg is None or by is None or community is None
                    or not await viewer.scope.sees(session, reg.node_id)
                    or not await reviews_at(session, viewer, community)):
                raise HTTPException(status.HTTP_404_NOT_FOUND, texts.NOT_FOUND)
            if not approve and not reason.strip():
                raise UserError(texts.REVIEW_NEEDS_REASON)
            reg, found, row = await shop.review_reopening(
                session, node=community, registration_id=registration_id, approve=approve,
                reason=reason.strip(), by=by, now=app.now())
            message = (chat_texts.Shop.APPROVED.format(id=reg.id, shop=found.name,
                                                       node=row.name) if approve else
                       chat_texts.Shop.REJECTED.format(id=reg.id, shop=found.name,
                                                       node=row.name, reason=reg.reason))
    except UserError as exc:
        return render(request, "_reviewed.html", registration_id=registration_id,
                      message=exc.text, error=True, status_code=status.HTTP_409_CONFLICT)
    return render(request, "_reviewed.html", registration_id=registration_id, message=message,
                  error=False)
