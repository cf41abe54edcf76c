"""The console's dependencies: the signed session cookie, the logged-in viewer (with the same
Scope an API token of that person gets), the CSRF check every POST passes, and rendering."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from bot.api.deps import Scope, get_app
from bot.app import BotApp
from bot.services import console as logins
from bot.services import token as tokens
from bot.web import texts
from models import Membership, Node, Role

COOKIE = "tb_console"
# The anonymous forms' (login, set-up link) CSRF token: a double-submit cookie.
PRE_COOKIE = "tb_pre"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HERE = Path(__file__).parent

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
templates.globals["texts"] = texts


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page (htmx: HX-Redirect)."""


def console_key(request: Request) -> bytes:
    """The key signing session cookies (config, or random for this process)."""
    key: bytes | None = getattr(request.app.state, "console_key", None)
    if key is None:
        configured = get_app(request).settings.console.secret_key
        key = configured.encode() if configured else secrets.token_bytes(32)
        request.app.state.console_key = key
    return key


def _mac(key: bytes, value: str) -> str:
    raw = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(key: bytes, value: str) -> str:
    """value.signature"""
    return f"{value}.{_mac(key, value)}"


def unsign(key: bytes, signed: str) -> str | None:
    """The value if the signature is right, else None."""
    value, _, mac = signed.rpartition(".")
    if not value or not hmac.compare_digest(mac.encode(), _mac(key, value).encode()):
        return None
    return value


def address(request: Request) -> str:
    """The client's address (the lockout's per-address count): the peer, or behind a trusted
    proxy the right-most X-Forwarded-For entry that is not itself a trusted proxy."""
    peer = request.client.host if request.client else ""
    trusted = set(get_app(request).settings.console.trusted_proxies)
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")
            if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return peer


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in person of this request and what they see."""

    login_id: int
    username: str
    person_id: int | None
    superuser: bool
    csrf: str
    scope: Scope
    # The tiers where they hold the commander's role (指挥长).
    commands_tiers: frozenset[int] = frozenset()

    @property
    def reads_access_log(self) -> bool:
        """Superusers and commanders of tiers 1-2 read the access log (issue 14)."""
        return self.superuser or bool(self.commands_tiers & {1, 2})

    @property
    def who(self) -> str:
        """How the access log names them (never a name or a number)."""
        return f"person:{self.person_id}" if self.person_id is not None else \
            f"console:{self.login_id}"


async def _submitted_csrf(request: Request) -> str:
    given = request.headers.get(CSRF_HEADER, "")
    if given:
        return given
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form: FormData = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, expected: str) -> None:
    """403 unless an unsafe request carries the expected token (header or form field)."""
    if request.method in SAFE_METHODS:
        return
    given = await _submitted_csrf(request)
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, texts.CSRF_REFUSED)


async def get_viewer(request: Request, app: Annotated[BotApp, Depends(get_app)]) -> Viewer:
    """The viewer of a live session (else LoginRequired), its CSRF token checked on every
    unsafe request: every console page takes this, so none can forget either."""
    cached: Viewer | None = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    signed = request.cookies.get(COOKIE, "")
    sid = unsign(console_key(request), signed) if signed else None
    if sid is None:
        raise LoginRequired
    settings = app.settings.console
    async with app.session() as session, session.begin():
        found = await logins.find_session(session, sid=sid, now=app.now(),
                                          idle=timedelta(minutes=settings.idle_minutes))
        if found is None:
            viewer = None
        else:
            row, login = found
            roots: tuple[int, ...] = ()
            commands: frozenset[int] = frozenset()
            if not login.superuser and login.person_id is not None:
                roots = tuple(await tokens.scope_roots(session, person_id=login.person_id))
                commands = await _commands_tiers(session, login.person_id)
            viewer = Viewer(login_id=login.id, username=login.username,
                            person_id=login.person_id, superuser=login.superuser,
                            csrf=row.csrf,
                            scope=Scope(superuser=login.superuser, person_id=login.person_id,
                                        token_id=None, roots=roots),
                            commands_tiers=commands)
    if viewer is None:
        raise LoginRequired
    await check_csrf(request, viewer.csrf)
    request.state.viewer = viewer
    return viewer


async def _commands_tiers(session: AsyncSession, person_id: int) -> frozenset[int]:
    rows = await session.execute(
        select(Node.tier).join(Membership, Membership.node_id == Node.id)
        .where(Membership.person_id == person_id, Membership.role == Role.COMMANDER))
    return frozenset(int(tier) for tier in rows.scalars())


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def render(request: Request, name: str, *, viewer: Viewer | None = None,
           status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page (or an htmx fragment) from its template."""
    context.setdefault("page", "")
    html = templates.get_template(name).render(request=request, viewer=viewer,
                                               nav=texts.NAV, **context)
    return HTMLResponse(html, status_code=status_code)


def set_session_cookie(request: Request, response: Response, sid: str, *, max_age: int
                       ) -> None:
    """The session cookie: signed, HttpOnly, SameSite=Lax, Secure when configured."""
    response.set_cookie(COOKIE, sign(console_key(request), sid), max_age=max_age,
                        path="/console", httponly=True, samesite="lax",
                        secure=get_app(request).settings.console.secure_cookie)


def clear_session_cookie(response: Response) -> None:
    """Forget the session cookie in the browser."""
    response.delete_cookie(COOKIE, path="/console")
