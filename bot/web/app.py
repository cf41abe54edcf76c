"""mount_console(api): the console's routers, static files and error pages on the API app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.web import auth
from bot.web.deps import LoginRequired, get_viewer, render
from bot.web.pages import access_log, board, exports, overview, points, simulator, units, watch
from bot.web.pages import chain as chain_page

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"

# Every page router; each is mounted behind get_viewer (a live session and, on POST, the
# CSRF token). tests/web/test_access.py walks the routes these make and tries each as a
# foreign viewer, so a page added here is covered without anyone remembering to.
PAGES: tuple[APIRouter, ...] = (overview.router, chain_page.router, board.router,
                                 watch.router, points.router, access_log.router,
                                 units.router, exports.router)

# Content-Security-Policy: scripts only from the vendored files (no inline script, no
# eval); htmx adds its indicator style inline, hence style-src 'unsafe-inline'.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def mount_console(api: FastAPI) -> None:
    """Add /console to the admin API's app."""
    api.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    api.include_router(auth.router, prefix=PREFIX, include_in_schema=False)
    for router in PAGES:
        api.include_router(router, prefix=PREFIX, dependencies=[Depends(get_viewer)],
                           include_in_schema=False)
    # The chat simulator (superusers; a bot on the simulated chat): not in PAGES, its JSON
    # endpoints are not pages of a node.
    simulator.mount(api, prefix=PREFIX)

    @api.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        target = f"{PREFIX}/login?next={quote(request.url.path)}"
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method not in ("GET", "HEAD"):
            return Response(status_code=401)
        return RedirectResponse(target, 303)

    @api.exception_handler(StarletteHTTPException)
    async def console_errors(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(PREFIX + "/") or request.url.path.startswith(
                f"{PREFIX}/static/"):
            return await http_exception_handler(request, exc)
        return render(request, "error.html", viewer=getattr(request.state, "viewer", None),
                      message=str(exc.detail), status_code=exc.status_code)

    @api.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path.startswith(PREFIX):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            if not request.url.path.startswith(f"{PREFIX}/static/"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response

