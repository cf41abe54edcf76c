"""作战链: the viewer's part of the chain as a tree, each group with its binding (account,
fallback account, where failover moved it from) and the accounts' state; invite codes for a
person's role or a group, issued with the service the chat and the CLI use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts as chat_texts
from bot.api.deps import AppDep, PathId, SessionDep
from bot.services import chain, health
from bot.web import texts
from bot.web.deps import Viewer, ViewerDep, render
from models import Group, InviteKind, Membership, Node, Person, Role

router = APIRouter()


@dataclass
class TreeNode:
    """A node of the page's tree."""

    node: Node
    groups: list[Group] = field(default_factory=list)
    leads: list[str] = field(default_factory=list)
    children: list[TreeNode] = field(default_factory=list)


async def _tree(session: AsyncSession, viewer: Viewer) -> list[TreeNode]:
    where = viewer.scope.filter(Node.id)
    visible = select(Node.id).where(where)
    items: dict[int, TreeNode] = {}
    roots: list[TreeNode] = []
    for node in (await session.execute(select(Node).where(where).order_by(Node.id))).scalars():
        item = TreeNode(node)
        items[node.id] = item
        parent = items.get(node.parent_id) if node.parent_id is not None else None
        (parent.children if parent is not None else roots).append(item)
    for group in (await session.execute(select(Group).where(Group.node_id.in_(visible))
                                        .order_by(Group.id))).scalars():
        items[group.node_id].groups.append(group)
    for node_id, role, name in await session.execute(
            select(Membership.node_id, Membership.role, Person.name)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.node_id.in_(visible)).order_by(Membership.id)):
        item = items[node_id]
        if role == chain.commanding_role(item.node):
            item.leads.append(name)
    return roots


async def may_invite(session: AsyncSession, viewer: Viewer, node: Node) -> bool:
    """Whoever commands the node or a node above it (or a superuser) issues its codes, as
    the commander does in chat; visibility alone is not enough (a team member sees the team)."""
    if viewer.scope.superuser:
        return True
    if viewer.person_id is None or not await viewer.scope.sees(session, node.id):
        return False
    commands = select(Membership.node_id).where(Membership.person_id == viewer.person_id,
                                                Membership.role == Role.COMMANDER)
    commanded = chain.subtrees_select(list((await session.execute(commands)).scalars()))
    found = await session.execute(select(Node.id).where(Node.id == node.id,
                                                        Node.id.in_(commanded)))
    return found.first() is not None


@router.get("/chain", response_class=HTMLResponse)
async def chain_page(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep
                     ) -> HTMLResponse:
    """The tree the viewer sees, with bindings and the state of the accounts they use."""
    tree = await _tree(session, viewer)
    used: set[str] = set()

    def walk(items: list[TreeNode]) -> None:
        for item in items:
            for g in item.groups:
                used.update(a for a in (g.account, g.fallback_account) if a)
            walk(item.children)
    walk(tree)
    states = await health.account_status(session, states=app.transport.account_states(),
                                         now=app.now())
    accounts = [a for a in states if viewer.scope.superuser or a.name in used]
    return render(request, "chain.html", viewer=viewer, page="chain", tree=tree,
                  accounts=accounts, roles=INVITE_ROLES, zone=app.settings.zone,
                  tier_names=chat_texts.TIER_SHORT)


# The roles a code may be issued for, with their Chinese names (the chat's words).
INVITE_ROLES = {role.value: chat_texts.ROLE_NAMES.get(role.value, role.value)
                for role in (Role.COMMANDER, Role.MEMBER, Role.SECRETARY, Role.LANDLORD,
                             Role.TENANT, Role.CAPTAIN, Role.LIAISON, Role.PROJECT_LEAD)}


@router.post("/chain/{node_id}/invite", response_class=HTMLResponse)
async def invite(request: Request, app: AppDep, viewer: ViewerDep, node_id: PathId,
                 kind: Annotated[str, Form(pattern="^(person|group)$")],
                 role: Annotated[str, Form(max_length=16)] = "") -> HTMLResponse:
    """A single-use code for a role at the node (绑定 code) or for a group (绑定群 code)."""
    if kind == "person" and role not in INVITE_ROLES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, texts.INVITE_ROLE_UNKNOWN)
    async with app.session() as session, session.begin():
        node = await session.get(Node, node_id)
        if node is None or not await may_invite(session, viewer, node):
            raise HTTPException(status.HTTP_404_NOT_FOUND, texts.NOT_FOUND)
        code = await chain.issue_invite(
            session, node=node, kind=InviteKind.PERSON if kind == "person" else InviteKind.GROUP,
            role=Role(role) if kind == "person" else None, now=app.now(),
            ttl=timedelta(days=app.settings.invites.ttl_days))
        node_name = node.name
    what = (texts.INVITE_PERSON.format(code=code.code, role=INVITE_ROLES[role])
            if kind == "person" else texts.INVITE_GROUP.format(code=code.code))
    return render(request, "_invite_code.html", node_id=node_id, node_name=node_name,
                  what=what, expires=code.expires_at.astimezone(app.settings.zone))
