"""查阅记录: who revealed or erased whose personal data, or exported a report, why and when;
for superusers and commanders of tiers 1-2, each seeing the records of people in their part
of the chain and the exports of subtrees in it."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import Select, or_, select, union

from bot import pii
from bot.api.deps import AppDep, Cursor, SessionDep
from bot.export_texts import Export
from bot.web import texts
from bot.web.deps import Viewer, ViewerDep, render
from models import AccessLog, Membership, Node, Person, TenantStay, WorkerCard

router = APIRouter()
PAGE = 100


def people_in(viewer: Viewer, visible: Select[tuple[int]] | None = None
              ) -> Select[tuple[int]] | None:
    """The people of the viewer's part: members, tenants and workers of visible nodes (None:
    everyone). `visible`: the query of visible nodes, when the caller uses it too (one
    statement can hold the scope's subtree query once only)."""
    if viewer.scope.superuser:
        return None
    if visible is None:
        visible = select(Node.id).where(viewer.scope.filter(Node.id))
    return select(union(
        select(Membership.person_id).where(Membership.node_id.in_(visible)),
        select(TenantStay.tenant_id).where(TenantStay.node_id.in_(visible)),
        select(WorkerCard.person_id).where(WorkerCard.enterprise_node_id.in_(visible)),
    ).subquery().c[0])


@router.get("/access-log", response_class=HTMLResponse)
async def access_log(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                     before: Cursor = None) -> HTMLResponse:
    """The newest records first, a page at a time (`before` an id)."""
    if not viewer.reads_access_log:
        raise HTTPException(status.HTTP_403_FORBIDDEN, texts.FORBIDDEN)
    # An export's row names no person but the root of the subtree it covered (node_id).
    stmt = (select(AccessLog, Person, Node)
            .outerjoin(Person, Person.id == AccessLog.person_id)
            .outerjoin(Node, Node.id == AccessLog.node_id))
    visible = select(Node.id).where(viewer.scope.filter(Node.id))
    within = people_in(viewer, visible)
    if within is not None:
        stmt = stmt.where(or_(AccessLog.person_id.in_(within),
                              AccessLog.node_id.in_(visible)))
    if before is not None:
        stmt = stmt.where(AccessLog.id < before)
    rows = list((await session.execute(
        stmt.order_by(AccessLog.id.desc()).limit(PAGE + 1))).tuples())
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    # "person:<id>" names the viewer who revealed: shown by their masked name.
    askers = {int(e.who.split(":", 1)[1]) for e, *_ in rows
              if e.who.startswith("person:") and e.who.split(":", 1)[1].isdigit()}
    names = dict((await session.execute(select(Person.id, Person.name).where(
        Person.id.in_(askers)))).tuples().all()) if askers else {}
    who = {f"person:{pid}": f"{pii.mask_name(name)}（{pid}）" for pid, name in names.items()}
    return render(request, "access_log.html", viewer=viewer, page="access_log", rows=rows,
                  next_before=rows[-1][0].id if more else None, mask_name=pii.mask_name,
                  zone=app.settings.zone, fields=texts.REVEAL_FIELDS, who=who,
                  exports=Export.NAMES)
