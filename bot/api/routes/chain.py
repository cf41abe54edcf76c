"""GET /api/chain: the chain as a tree."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from bot.api.deps import SessionDep
from bot.api.schemas import GroupPublic, NodePublic
from bot.services import chain
from models import Group, Membership, Person

router = APIRouter()


@router.get("/chain", response_model=list[NodePublic])
async def get_chain(session: SessionDep) -> list[NodePublic]:
    """Every node with its groups and commanders, nested from tier 1 down."""
    nodes = await chain.all_nodes(session)
    groups: dict[int, list[GroupPublic]] = {}
    for g in (await session.execute(select(Group).order_by(Group.id))).scalars():
        groups.setdefault(g.node_id, []).append(
            GroupPublic(id=g.id, transport=g.transport, room_id=g.room_id, title=g.title))
    roles: dict[int, list[tuple[str, str]]] = {}
    for node_id, role, name in await session.execute(
        select(Membership.node_id, Membership.role, Person.name)
        .join(Person, Person.id == Membership.person_id).order_by(Membership.id)
    ):
        roles.setdefault(node_id, []).append((role, name))
    public: dict[int, NodePublic] = {}
    roots: list[NodePublic] = []
    for node in nodes:
        lead = chain.commanding_role(node)
        item = NodePublic(id=node.id, tier=node.tier, kind=node.kind, name=node.name,
                          commanders=[n for r, n in roles.get(node.id, []) if r == lead],
                          groups=groups.get(node.id, []), children=[])
        public[node.id] = item
        parent = public.get(node.parent_id) if node.parent_id is not None else None
        (parent.children if parent is not None else roots).append(item)
    return roots
