"""GET /api/chain and /api/nodes/{id}: the part of the chain a token sees, as trees."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import ColumnElement, select

from bot.api.deps import DEFAULT_LIMIT, Cursor, Limit, Page, PathId, ScopeDep, SessionDep, paged
from bot.api.schemas import GroupPublic, NodePublic, refusals
from bot.services import chain
from models import Group, Membership, Node, Person

router = APIRouter()


async def _trees(session: SessionDep, where: ColumnElement[bool]) -> list[NodePublic]:
    """The nodes matching `where` nested under their parents; nodes whose parent does not
    match are the roots, in id order."""
    nodes = (await session.execute(select(Node).where(where).order_by(Node.id))).scalars()
    groups: dict[int, list[GroupPublic]] = {}
    for g in (await session.execute(
            select(Group).where(Group.node_id.in_(select(Node.id).where(where)))
            .order_by(Group.id))).scalars():
        groups.setdefault(g.node_id, []).append(
            GroupPublic(id=g.id, transport=g.transport, room_id=g.room_id, title=g.title))
    roles: dict[int, list[tuple[str, str]]] = {}
    for node_id, role, name in await session.execute(
        select(Membership.node_id, Membership.role, Person.name)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.node_id.in_(select(Node.id).where(where))).order_by(Membership.id)
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


@router.get("/chain", response_model=Page[NodePublic])
async def get_chain(session: SessionDep, scope: ScopeDep, limit: Limit = DEFAULT_LIMIT,
                    cursor: Cursor = None) -> Page[NodePublic]:
    """The visible chain: one tree per top-most node the token sees (a superuser: the tier-1
    nodes), each with its groups, commanders and children; paged by tree."""
    roots = [r for r in await _trees(session, scope.filter(Node.id))
             if cursor is None or r.id > cursor]
    return paged(roots[:limit + 1], limit=limit, key=lambda r: r.id)


@router.get("/nodes/{node_id}", response_model=NodePublic,
            responses=refusals(404))
async def get_node(session: SessionDep, scope: ScopeDep, node_id: PathId) -> NodePublic:
    """One node with its subtree; 404 when it does not exist or the token does not see it."""
    if not await scope.sees(session, node_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node_id}")
    [tree] = await _trees(session, Node.id.in_(chain.subtree_select(node_id)))
    return tree
