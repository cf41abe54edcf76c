"""create_api(app): the FastAPI application for one BotApp."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from sqlalchemy import text

from bot.api.deps import AppDep, require_token
from bot.api.routes import account, chain, stats, tenant
from bot.api.routes import points as points_routes  # issue 5
from bot.api.schemas import Health
from bot.app import BotApp


def create_api(bot: BotApp) -> FastAPI:
    """The admin API; every /api route needs the bearer token, /health does not."""
    api = FastAPI(title="tierbot", version="0.1.0")
    api.state.bot = bot
    protected = [Depends(require_token)]
    api.include_router(chain.router, prefix="/api", dependencies=protected, tags=["chain"])
    api.include_router(tenant.router, prefix="/api", dependencies=protected, tags=["tenants"])
    api.include_router(account.router, prefix="/api", dependencies=protected, tags=["accounts"])
    api.include_router(points_routes.router, prefix="/api", dependencies=protected,
                       tags=["points"])
    api.include_router(stats.router, prefix="/api", dependencies=protected, tags=["stats"])

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

    return api
