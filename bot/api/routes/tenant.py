"""GET /api/tenants: tenants' stays under a node, masked."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status

from bot import pii
from bot.api.deps import AppDep, SessionDep
from bot.api.schemas import TenantStayPublic
from bot.services import chain, tenant
from models import Node

router = APIRouter()


@router.get("/tenants", response_model=list[TenantStayPublic])
async def get_tenants(session: SessionDep, app: AppDep,
                      node: int | None = Query(None, description="a node id: its whole subtree")
                      ) -> list[TenantStayPublic]:
    """The latest stay of each tenant (under `node` when given), names and numbers masked."""
    if node is None:
        ids = [n.id for n in await chain.all_nodes(session)]
    else:
        if await session.get(Node, node) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node}")
        ids = await chain.subtree_ids(session, root_id=node)
    now = app.now()
    return [
        TenantStayPublic(
            id=row.stay.id, node_id=row.stay.node_id, name=pii.mask_name(row.tenant.name),
            mobile=row.tenant.mobile_mask or "",
            origin=row.stay.origin, arrived_at=row.stay.arrived_at,
            watch_until=row.stay.watch_until, under_watch=row.stay.watch_until > now,
            fever=row.stay.fever, last_temperature=row.last_reading)
        for row in await tenant.list_tenants(session, node_ids=ids)
    ]
