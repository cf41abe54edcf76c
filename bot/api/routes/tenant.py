"""GET /api/tenants and /api/tenants/{id}: tenants' stays the token sees, masked."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from bot import pii
from bot.api.deps import (
    DEFAULT_LIMIT,
    AppDep,
    Cursor,
    Limit,
    MaybeId,
    Page,
    PathId,
    ScopeDep,
    SessionDep,
    paged,
)
from bot.api.schemas import TenantStayPublic, refusals
from bot.services import chain, tenant
from models import Node, TenantStay

router = APIRouter()


def _public(row: tenant.TenantRow, now: datetime) -> TenantStayPublic:
    return TenantStayPublic(
        id=row.stay.id, node_id=row.stay.node_id, name=pii.mask_name(row.tenant.name),
        mobile=row.tenant.mobile_mask or "",
        origin=row.stay.origin, arrived_at=row.stay.arrived_at,
        watch_until=row.stay.watch_until, under_watch=row.stay.watch_until > now,
        fever=row.stay.fever, last_temperature=row.last_reading)


@router.get("/tenants", response_model=Page[TenantStayPublic],
            responses=refusals(404))
async def get_tenants(session: SessionDep, app: AppDep, scope: ScopeDep,
                      node: MaybeId = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
                      ) -> Page[TenantStayPublic]:
    """The latest stay of each tenant the token sees (under `node` when given: its whole
    subtree), names and numbers masked, in stay id order; 404 for a node it does not see."""
    if node is not None and not await scope.sees(session, node):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node}")
    within = chain.subtree_select(node) if node is not None else select(Node.id).where(
        scope.filter(Node.id))
    rows = await tenant.page_tenants(session, node_ids=within, after_id=cursor, limit=limit + 1)
    now = app.now()
    return paged([_public(r, now) for r in rows], limit=limit, key=lambda s: s.id)


@router.get("/tenants/{stay_id}", response_model=TenantStayPublic,
            responses=refusals(404))
async def get_tenant(session: SessionDep, app: AppDep, scope: ScopeDep, stay_id: PathId
                     ) -> TenantStayPublic:
    """One current stay, masked; 404 when it does not exist, has ended, or is not seen."""
    stay = await session.get(TenantStay, stay_id)
    if stay is None or not await scope.sees(session, stay.node_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant stay {stay_id}")
    found = [r for r in await tenant.list_tenants(session, node_ids=[stay.node_id])
             if r.stay.id == stay_id]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant stay {stay_id}")
    return _public(found[0], app.now())
