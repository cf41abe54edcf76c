"""GET /api/accounts: the bot accounts and how their sending stands."""

from __future__ import annotations

from fastapi import APIRouter

from bot.api.deps import AppDep
from bot.api.schemas import AccountPublic

router = APIRouter()


@router.get("/accounts", response_model=list[AccountPublic])
async def get_accounts(app: AppDep) -> list[AccountPublic]:
    """Connected, logged in as, paused until, last error and rows waiting, per account."""
    return [AccountPublic(name=a.name, connected=a.connected, logged_in_as=a.logged_in_as,
                          last_error=a.last_error, paused_until=a.paused_until,
                          pending=a.pending) for a in await app.account_status()]
