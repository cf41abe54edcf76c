"""GET /api/accounts: the bot accounts and how their sending stands (superusers only)."""

from __future__ import annotations

from fastapi import APIRouter

from bot.api.deps import DEFAULT_LIMIT, AppDep, Cursor, Limit, Page, SuperuserDep
from bot.api.schemas import AccountPublic, refusals

router = APIRouter()


@router.get("/accounts", response_model=Page[AccountPublic],
            responses=refusals(403))
async def get_accounts(app: AppDep, scope: SuperuserDep, limit: Limit = DEFAULT_LIMIT,
                       cursor: Cursor = None) -> Page[AccountPublic]:
    """Connected, logged in as, paused until, last error, rows waiting and the watchdog's
    health, problems and since, per account (403
    but for a superuser: accounts serve the whole chain). Accounts come from the config and
    have no ids: the cursor is how many were listed before."""
    rows = [AccountPublic(name=a.name, connected=a.connected, logged_in_as=a.logged_in_as,
                          last_error=a.last_error, paused_until=a.paused_until,
                          pending=a.pending, health=a.health, problems=list(a.problems),
                          since=a.since) for a in await app.account_status()]
    start = cursor or 0
    more = len(rows) > start + limit
    return Page[AccountPublic](items=rows[start:start + limit],
                               next_cursor=start + limit if more else None)
