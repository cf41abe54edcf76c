"""GET/POST /ack/{token}: the signed one-click acknowledgement of a notice for a group whose
channel cannot report who wrote 收到 (services/ack.py). Public but signed: no API token; the
link's own signature is the authority, and every forged, tampered, expired or misdirected
link is refused with its reason in Chinese. GET only shows the confirm page (link previews and
crawlers fetch links); POST acknowledges, once."""

from __future__ import annotations

import html
from datetime import UTC

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from bot import ack_texts
from bot.api.deps import AppDep
from bot.services import ack
from bot.services import notice as notices

router = APIRouter()

# Long enough for any token we sign, short enough to refuse junk before any work.
Token = Path(min_length=1, max_length=128)
EXCERPT = 80

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto; padding: 0 1em">
<h1 style="font-size: 1.3em">{title}</h1>
{body}
</body></html>
"""

_HTML_ONLY: dict[str, object] = {"content": {"text/html": {}}}
REFUSALS: dict[int | str, dict[str, object]] = {
    403: {"description": "Forged, tampered or malformed link", **_HTML_ONLY},
    404: {"description": "The notice, or its delivery to that group, does not exist",
          **_HTML_ONLY},
    410: {"description": "The link has expired", **_HTML_ONLY},
}


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(ack_texts.PAGE_TITLE), body=body),
                        status_code=status, headers={"Cache-Control": "no-store",
                                                     "Referrer-Policy": "no-referrer"})


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _refusal(exc: ack.LinkError) -> HTMLResponse:
    return _page(_p(str(exc)), exc.status)


def _when(view: ack.LinkView, app: AppDep) -> str:
    at = view.row.acked_at
    assert at is not None
    return ack_texts.REFUSED_FORMAT.format(at=at.astimezone(UTC).astimezone(app.settings.zone))


@router.get("/ack/{token}", response_class=HTMLResponse, responses=REFUSALS)
async def get_ack(app: AppDep, token: str = Token) -> HTMLResponse:
    """The confirm page of a link (acknowledges nothing)."""
    async with app.session() as session:
        try:
            view = await ack.look(session, token=token, now=app.now())
        except ack.LinkError as exc:
            return _refusal(exc)
        tag = notices.tag(view.notice.id, view.notice.urgent)
        group = view.group.title
        if view.row.acked_at is not None:
            return _page(_p(ack_texts.PAGE_ALREADY.format(group=group, tag=tag,
                                                          at=_when(view, app))))
        excerpt = view.notice.text[:EXCERPT] + ("…" if len(view.notice.text) > EXCERPT else "")
        until = ack_texts.REFUSED_FORMAT.format(
            at=view.claim.expires.astimezone(app.settings.zone))
        body = (_p(ack_texts.PAGE_CONFIRM.format(group=group, tag=tag))
                + f"<blockquote>{html.escape(excerpt)}</blockquote>"
                + _p(ack_texts.PAGE_WHO.format(group=group))
                + f'<form method="post" action="{html.escape(token)}">'
                + '<button type="submit" style="font-size: 1.2em; padding: .5em 2em">'
                + f"{html.escape(ack_texts.PAGE_BUTTON)}</button></form>"
                + _p(ack_texts.PAGE_EXPIRES.format(until=until)))
        return _page(body)


@router.post("/ack/{token}", response_class=HTMLResponse, responses=REFUSALS)
async def post_ack(app: AppDep, token: str = Token) -> HTMLResponse:
    """Acknowledge the notice for the group the link names, as the group (idempotent: a second
    POST, or one after a 收到 in any way, changes nothing)."""
    async with app.session() as session, session.begin():
        try:
            view, recorded = await ack.ack_by_link(session, token=token, now=app.now())
        except ack.LinkError as exc:
            return _refusal(exc)
        tag = notices.tag(view.notice.id, view.notice.urgent)
        group = view.group.title
        if recorded:
            return _page(_p(ack_texts.PAGE_DONE.format(group=group, tag=tag)))
        return _page(_p(ack_texts.PAGE_ALREADY.format(group=group, tag=tag,
                                                      at=_when(view, app))))
