"""GET /api/points/weeks/{week}: a closed week's ranking, red and black lists and rewards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from bot.api.deps import Digits, ScopeDep, SessionDep
from bot.api.schemas import refusals
from bot.services import points

router = APIRouter()


class StandingPublic(BaseModel):
    """A landlord's place in a closed week (names as the lists publish them; no numbers)."""

    rank: int
    landlord: str
    node: str
    score: int
    week_change: int
    deducted: int
    list: str
    reward_points: int
    reward_yuan: float


class ScopeWeekPublic(BaseModel):
    """One ranking scope's week."""

    scope: str
    red: list[StandingPublic]
    black: list[StandingPublic]
    standings: list[StandingPublic]


class PointsWeekPublic(BaseModel):
    """A closed ISO week across the ranking scopes."""

    week: str
    scopes: list[ScopeWeekPublic]


@router.get("/points/weeks/{week}", response_model=PointsWeekPublic,
            responses=refusals(404))
async def get_points_week(session: SessionDep, seen: ScopeDep, week: str,
                          limit: Annotated[int | None, Query(
                              ge=1, le=100_000, description="standings per scope"),
                              Digits] = None,
                          ) -> PointsWeekPublic:
    """The week's ranking per scope with its lists and rewards, of the landlords the token
    sees (ranks stay those of the whole scope); 404 until the week is closed."""
    try:
        points.parse_week(week)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"not an ISO week: {week}") from None
    if not await points.closed_weeks(session, week=week):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"week {week} is not closed")
    rows = await points.week_rows(session, week=week, within=seen.nodes())
    scopes = []
    for scope, items in points.group_by_scope(rows).items():
        public = [StandingPublic(rank=r.rank, landlord=r.landlord, node=r.node, score=r.score,
                                 week_change=r.week_change, deducted=r.deducted, list=r.board,
                                 reward_points=r.reward_points, reward_yuan=r.reward_fen / 100)
                  for r in items]
        scopes.append(ScopeWeekPublic(
            scope=scope, red=[p for p in public if p.list == points.RED],
            black=[p for p in public if p.list == points.BLACK],
            standings=public[:limit] if limit else public))
    return PointsWeekPublic(week=week, scopes=scopes)
