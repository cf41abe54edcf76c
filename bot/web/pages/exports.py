"""导出导入: XLSX reports of a node the viewer sees (the export service the CLI uses; each
export recorded in the access log; the watch list only for authorised roles), and, for
superusers, the import of people and the chain from a file with a preview of what will change
before it is applied (bot/chainpreview.py)."""

from __future__ import annotations

import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from bot import chainpreview
from bot.api.deps import AppDep, MaybeId, SessionDep
from bot.domain import UserError
from bot.export_texts import Export as ExportTexts
from bot.export_texts import Import as ImportTexts
from bot.services import export, stats
from bot.web import texts
from bot.web.deps import Viewer, ViewerDep, render
from bot.web.nodes import chosen, roots_of
from models import Node

router = APIRouter()
MAX_UPLOAD = 10 * 1024 * 1024
SUFFIXES = (".xlsx", ".toml", ".yaml", ".yml")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def upload_dir() -> Path:
    """Where uploaded files wait between their preview and its confirmation (by digest)."""
    path = Path(tempfile.gettempdir()) / "tierbot-import"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


async def _nodes(session: object, viewer: Viewer) -> list[Node]:
    """The nodes an export may be of: those the viewer sees, down to tier 3."""
    return list((await session.execute(  # type: ignore[attr-defined]
        select(Node).where(viewer.scope.filter(Node.id), Node.tier <= 3)
        .order_by(Node.tier, Node.id))).scalars())


def _requester(viewer: Viewer) -> export.Requester:
    return export.Requester(viewer.who, person_id=viewer.person_id, superuser=viewer.superuser)


@router.get("/exports", response_class=HTMLResponse)
async def exports_page(request: Request, app: AppDep, session: SessionDep, viewer: ViewerDep,
                       node: MaybeId = None) -> HTMLResponse:
    """The export form (and, for superusers, the import form)."""
    root = await chosen(session, viewer, node)
    return render(request, "exports.html", viewer=viewer, page="exports", node=root,
                  roots=await roots_of(session, viewer), nodes=await _nodes(session, viewer),
                  reports=ExportTexts.NAMES, today=app.now().astimezone(app.settings.zone)
                  .date(), error="")


@router.post("/exports", response_model=None)
async def export_file(
    request: Request, app: AppDep, viewer: ViewerDep,
    report: Annotated[Literal["stats", "lists", "watch"], Form()],
    node: Annotated[int, Form(ge=1, le=2**31 - 1)],
    day: Annotated[str, Form(alias="date")] = "",
    week: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Write the report and send it as a download; the access log records it in the same
    transaction (a refusal records nothing)."""
    zone = app.settings.zone
    try:
        when = date.fromisoformat(day) if day else app.now().astimezone(zone).date()
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            texts.EXPORT_BAD_DATE) from None
    if not stats.day_in_range(when):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            texts.EXPORT_DAY_OUT_OF_RANGE)
    try:
        async with app.session() as session, session.begin():
            root = await chosen(session, viewer, node)
            assert root is not None
            done = await export.export(session, report=export.Report(report), root=root,
                                       by=_requester(viewer), day=when, week=week or None,
                                       zone=zone, now=app.now())
    except export.ExportRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, exc.text) from None
    except UserError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.text) from None
    return Response(done.data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(done.filename)}"})


def _superuser(viewer: Viewer) -> None:
    if not viewer.superuser:
        raise HTTPException(status.HTTP_403_FORBIDDEN, texts.FORBIDDEN)


@router.post("/import/preview", response_class=HTMLResponse)
async def import_preview(request: Request, app: AppDep, viewer: ViewerDep,
                         file: Annotated[UploadFile, File()]) -> HTMLResponse:
    """What importing the uploaded file would change; nothing is applied."""
    _superuser(viewer)
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, texts.IMPORT_BAD_TYPE)
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            texts.IMPORT_TOO_BIG.format(mb=MAX_UPLOAD // 2**20))
    staging = upload_dir() / f"upload-{viewer.login_id}{suffix}"
    staging.write_bytes(data)
    async with app.session() as session, session.begin():
        shown = await chainpreview.preview(session, staging, now=app.now())
    kept = upload_dir() / f"{shown.digest}{suffix}"
    staging.replace(kept)
    return render(request, "import.html", viewer=viewer, page="exports", shown=shown,
                  suffix=suffix, filename=file.filename or "", applied=None, t=ImportTexts)


@router.post("/import/apply", response_class=HTMLResponse)
async def import_apply(
    request: Request, app: AppDep, viewer: ViewerDep,
    digest: Annotated[str, Form(max_length=64)],
    suffix: Annotated[Literal[".xlsx", ".toml", ".yaml", ".yml"], Form()],
) -> HTMLResponse:
    """Apply the previewed file (the existing import path; applying it again changes
    nothing)."""
    _superuser(viewer)
    path = upload_dir() / f"{digest}{suffix}"
    if not _DIGEST.match(digest) or not path.is_file():
        raise HTTPException(status.HTTP_409_CONFLICT, ImportTexts.EXPIRED)
    try:
        async with app.session() as session, session.begin():
            counts = await chainpreview.apply(session, path, expected_digest=digest,
                                              now=app.now())
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    path.unlink(missing_ok=True)
    return render(request, "import.html", viewer=viewer, page="exports", shown=None,
                  suffix=suffix, filename="", applied=ImportTexts.APPLIED.format(**counts),
                  t=ImportTexts)
