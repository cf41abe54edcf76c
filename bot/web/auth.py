"""The console's public pages: log in, log out, and the one-time set-up link."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.deps import AppDep
from bot.services import console as logins
from bot.web import texts
from bot.web.deps import (
    COOKIE,
    PRE_COOKIE,
    address,
    clear_session_cookie,
    console_key,
    get_viewer,
    render,
    set_session_cookie,
    unsign,
)

router = APIRouter()


def _with_pre_token(request: Request, name: str, *, status_code: int = 200,
                    **context: Any) -> HTMLResponse:
    """An anonymous form's page with its CSRF token, also set in a cookie of its own (double
    submit: a forged cross-site form cannot read the cookie to copy it)."""
    token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    page = render(request, name, csrf=token, status_code=status_code, **context)
    page.set_cookie(PRE_COOKIE, token, path="/console", httponly=True, samesite="strict",
                    max_age=3600)
    return page


def _check_pre(request: Request, given: str) -> None:
    expected = request.cookies.get(PRE_COOKIE, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, texts.CSRF_REFUSED)


def _safe_next(target: str) -> str:
    """Only a path of the console itself (no open redirect to another site)."""
    if target.startswith("/console/") and not target.startswith("/console//") \
            and "\\" not in target:
        return target
    return "/console/"


def _login_page(request: Request, *, error: str = "", note: str = "", next_: str = "",
                status_code: int = 200) -> HTMLResponse:
    return _with_pre_token(request, "login.html", error=error, note=note,
                           next=_safe_next(next_), status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "", out: int = 0) -> HTMLResponse:
    """The login form."""
    return _login_page(request, next_=next, note=texts.LOGGED_OUT if out else "")


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request, app: AppDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=logins.MAX_PASSWORD)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Check the password; on success a new session and its cookie, then the page asked for."""
    _check_pre(request, csrf)
    settings = app.settings.console
    now = app.now()
    async with app.session() as session, session.begin():
        found = await logins.authenticate(
            session, username=username.strip(), password=password, address=address(request),
            now=now, max_failures=settings.max_failures,
            window=timedelta(minutes=settings.lockout_minutes))
        opened = None
        if isinstance(found, logins.ConsoleLogin):
            absolute = timedelta(hours=settings.absolute_hours)
            opened = await logins.open_session(session, login=found, now=now,
                                               absolute=absolute)
    if opened is None:
        message = texts.LOGIN_LOCKED if found == logins.Refusal.LOCKED else texts.LOGIN_FAILED
        code = (status.HTTP_429_TOO_MANY_REQUESTS if found == logins.Refusal.LOCKED
                else status.HTTP_401_UNAUTHORIZED)
        return _login_page(request, error=message, next_=next, status_code=code)
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    set_session_cookie(request, response, opened.sid,
                       max_age=int(settings.absolute_hours * 3600))
    return response


@router.post("/logout")
async def logout(request: Request, app: AppDep) -> Response:
    """End this session (the CSRF token is checked like on every console POST)."""
    await get_viewer(request, app)
    sid = unsign(console_key(request), request.cookies.get(COOKIE, ""))
    if sid is not None:
        async with app.session() as session, session.begin():
            await logins.end_session(session, sid=sid, now=app.now())
    response = RedirectResponse("/console/login?out=1", status.HTTP_303_SEE_OTHER)
    clear_session_cookie(response)
    return response


def _invite_page(request: Request, token: str, *, error: str = "", valid: bool = True,
                 status_code: int = 200) -> HTMLResponse:
    return _with_pre_token(request, "invite.html", error=error, valid=valid, token=token,
                           status_code=status_code)


@router.get("/invite/{token}", response_class=HTMLResponse)
async def invite_form(request: Request, app: AppDep, token: str) -> HTMLResponse:
    """The set-up page of a one-time link (a page saying so when it no longer works)."""
    async with app.session() as session:
        invite = await logins.pending_invite(session, token=token[:100], now=app.now())
    if invite is None:
        return _invite_page(request, "", error=texts.INVITE_INVALID, valid=False,
                            status_code=status.HTTP_404_NOT_FOUND)
    return _invite_page(request, token)


@router.post("/invite/{token}", response_class=HTMLResponse)
async def invite_accept(
    request: Request, app: AppDep, token: str,
    password: Annotated[str, Form(max_length=logins.MAX_PASSWORD)],
    again: Annotated[str, Form(max_length=logins.MAX_PASSWORD)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Set the password and use the link up; then the login page."""
    _check_pre(request, csrf)
    if password != again:
        return _invite_page(request, token, error=texts.INVITE_MISMATCH,
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        async with app.session() as session, session.begin():
            login = await logins.accept_invite(session, token=token[:100], password=password,
                                               now=app.now())
    except logins.PasswordRefused as exc:
        return _invite_page(request, token, error=str(exc),
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    if login is None:
        return _invite_page(request, "", error=texts.INVITE_INVALID, valid=False,
                            status_code=status.HTTP_404_NOT_FOUND)
    return RedirectResponse(f"/console/login?next={quote('/console/')}",
                            status.HTTP_303_SEE_OTHER)
