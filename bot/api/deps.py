"""Dependencies shared by the routes: the bot app, a session, and the bearer-token check."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import BotApp

_bearer = HTTPBearer(auto_error=False)


def get_app(request: Request) -> BotApp:
    """The BotApp the API was created for."""
    app: BotApp = request.app.state.bot
    return app


async def get_session(app: Annotated[BotApp, Depends(get_app)]) -> AsyncIterator[AsyncSession]:
    """A read transaction for one request."""
    async with app.session() as session, session.begin():
        yield session


def require_token(
    app: Annotated[BotApp, Depends(get_app)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries the configured bearer token (none configured: none pass)."""
    expected = app.settings.api.token
    given = credentials.credentials if credentials else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


SessionDep = Annotated[AsyncSession, Depends(get_session)]
AppDep = Annotated[BotApp, Depends(get_app)]
