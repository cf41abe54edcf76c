"""通知送达: every notice sent from the viewer's part with its delivery and acknowledgement
per tier (the lines of 进度), the silent groups, reminders and escalations; and sending a
notice from a node the viewer commands, with 预览's preview and ETA (the chat's service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts as chat_texts
from bot.api.deps import AppDep, MaybeId, SessionDep
from bot.domain import UserError
from bot.services import chain
from bot.services import notice as notices
from bot.web import texts
from bot.web.deps import Viewer, ViewerDep, render
from bot.web.nodes import chosen, roots_of
from models import Group, Membership, Node, Notice

router = APIRouter()
SHOWN = 30


async def origins(session: AsyncSession, viewer: Viewer) -> list[Node]:
    """The nodes the viewer may send a notice from: where they hold the node's commanding
    role (the chat's GROUP_COMMANDER rule for 通知)."""
    if viewer.person_id is None:
        return []
    rows = await session.execute(
        select(Node, Membership.role).join(Membership, Membership.node_id == Node.id)
        .where(Membership.person_id == viewer.person_id).order_by(Node.id))
    out: list[Node] = []
    for node, role in rows.tuples():
        if role == chain.commanding_role(node) and node not in out:
            out.append(node)
    return out


@router.get("/board", response_class=HTMLResponse)
async def board(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                node: MaybeId = None) -> HTMLResponse:
    """The newest notices sent from a node's subtree, with 进度 for each."""
    root = await chosen(session, viewer, node)
    rows: list[tuple[Notice, list[str], tuple[int, int]]] = []
    if root is not None:
        found = list((await session.execute(
            select(Notice).where(Notice.origin_node_id.in_(chain.subtree_select(root.id)))
            .order_by(Notice.id.desc()).limit(SHOWN))).scalars())
        follow = await notices.follow_ups(session, notice_ids=[n.id for n in found])
        for item in found:
            progress = await notices.progress(session, notice=item)
            modes = await notices.ack_modes(session, notice=item, settings=app.settings.notices)
            rows.append((item, notices.progress_lines(progress, modes=modes),
                         follow.get(item.id, (0, 0))))
    return render(request, "board.html", viewer=viewer, page="board", node=root,
                  roots=await roots_of(session, viewer), rows=rows,
                  origins=await origins(session, viewer), zone=app.settings.zone)


async def _read(session: AsyncSession, viewer: Viewer, origin_id: int, text: str,
                down_to_tier: int | None) -> tuple[Node, notices.Scope, str, notices.Preview]:
    node = next((n for n in await origins(session, viewer) if n.id == origin_id), None)
    if node is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, texts.NOT_FOUND)
    if not text.strip():
        raise UserError(texts.NOTICE_EMPTY)
    scope, body = await notices.read_scope(session, origin=node, text=text.strip(),
                                           down_to_tier=down_to_tier)
    look = await notices.preview(session, origin=node, scope=scope)
    if look.total == 0:
        raise UserError(chat_texts.Notice.NO_TARGETS)
    return node, scope, body, look


Text = Annotated[str, Form(max_length=4000)]
Origin = Annotated[int, Form(ge=1, le=2**31 - 1)]
DownTo = Annotated[int | None, Form(ge=1, le=5)]


@router.post("/board/preview", response_class=HTMLResponse)
async def preview(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                  origin: Origin, text: Text, down_to_tier: DownTo = None,
                  urgent: Annotated[bool, Form()] = False) -> HTMLResponse:
    """预览: what the notice would reach and how long sending takes; nothing is stored."""
    try:
        _, _, _, look = await _read(session, viewer, origin, text, down_to_tier)
    except UserError as exc:
        return render(request, "_notice_result.html", message=exc.text, error=True,
                      status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return render(request, "_notice_result.html",
                  message=notices.preview_text(look, app.settings.pacing), error=False)


@router.post("/board/send", response_class=HTMLResponse)
async def send(request: Request, app: AppDep, viewer: ViewerDep, origin: Origin, text: Text,
               down_to_tier: DownTo = None, urgent: Annotated[bool, Form()] = False
               ) -> HTMLResponse:
    """通知: stored and queued to every target group in one transaction, as in chat."""
    try:
        async with app.session() as session, session.begin():
            node, scope, body, look = await _read(session, viewer, origin, text, down_to_tier)
            group_id = (await session.execute(select(Group.id).where(
                Group.node_id == node.id).order_by(Group.id).limit(1))).scalar_one_or_none()
            item, count = await notices.create(
                session, origin=node, origin_group_id=group_id, sender_id=viewer.person_id,
                text=body, urgent=urgent, scope=scope, now=app.now(),
                settings=app.settings.notices)
            message = notices.queued_text(item, count, look, app.settings.pacing)
    except UserError as exc:
        return render(request, "_notice_result.html", message=exc.text, error=True,
                      status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    # The rows are committed: the sender starts on them now, as after a chat 通知 (it would
    # otherwise find them at its next lease renewal).
    app.sender.wake()
    return render(request, "_notice_result.html", message=message, error=False)
