"""create_api(app): the FastAPI application for one BotApp."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from bot.api.deps import AppDep, FailureThrottle, get_scope
from bot.api.routes import account, chain, stats, tenant
from bot.api.routes import ack as ack_routes  # issue 15
from bot.api.routes import points as points_routes  # issue 5
from bot.api.schemas import Health, refusals
from bot.app import BotApp

log = logging.getLogger(__name__)

# Every /api router with its tag; all are mounted behind the token (a test walks these and
# checks each route against the OpenAPI's /api paths, so none is mounted another way).
ROUTERS: tuple[tuple[APIRouter, str], ...] = (
    (chain.router, "chain"), (tenant.router, "tenants"), (account.router, "accounts"),
    (points_routes.router, "points"), (stats.router, "stats"),
)


def create_api(bot: BotApp) -> FastAPI:
    """The admin API: every /api route needs a token and sees that token's scope; /health
    needs none; /docs and /openapi.json need a token unless `api.public_docs`."""
    settings = bot.settings.api
    if settings.token:
        log.warning("api.token is deprecated: it acts as a superuser token for the whole "
                    "chain; give each administrator a token of their own (`tierbot tokens "
                    "create --person …`) and remove it")
    public = settings.public_docs
    api = FastAPI(title="tierbot", version="0.2.0", docs_url="/docs" if public else None,
                  redoc_url=None, openapi_url="/openapi.json" if public else None)
    api.state.bot = bot
    api.state.throttle = FailureThrottle(free=settings.failures_before_delay,
                                         max_delay=settings.max_delay_seconds)
    # Routes take ScopeDep themselves (to filter); the router-level one makes a route that
    # forgot it refuse anonymous requests still.
    protected = [Depends(get_scope)]
    for router, tag in ROUTERS:
        api.include_router(router, prefix="/api", dependencies=protected, tags=[tag],
                           responses=refusals(401, 429))

    # Public but signed: the link's own signature is its authority (no API token).
    api.include_router(ack_routes.router, tags=["acknowledgement"])

    if not public:
        @api.get("/openapi.json", include_in_schema=False, dependencies=protected)
        async def openapi() -> dict[str, Any]:
            """The OpenAPI document (a token required)."""
            return api.openapi()

        @api.get("/docs", include_in_schema=False, dependencies=protected)
        async def docs() -> HTMLResponse:
            """Swagger UI (a token required, for the page and for /openapi.json alike)."""
            return get_swagger_ui_html(openapi_url="/openapi.json", title="tierbot API")

    @api.get("/health", response_model=Health)
    async def health(app: AppDep) -> Health:
        """Liveness: the process answers and the database responds."""
        try:
            async with app.session() as session:
                await session.execute(text("SELECT 1"))
            database = "ok"
        except Exception as exc:  # noqa: BLE001 - health reports any failure as text
            database = f"error: {type(exc).__name__}"
        return Health(status="ok" if database == "ok" else "degraded", database=database)

    # The web console (issue 14) on the same app: its own logins and cookies, the same scope.
    from bot.web import mount_console

    mount_console(api)
    return api
