"""GET /api/stats: a subtree's figures of one day (the sections of 统计)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AfterValidator, BeforeValidator

from bot.api.deps import MAX_ID, AppDep, Digits, ReadSessionDep, ScopeDep
from bot.api.schemas import StatsPublic, StatsSectionPublic, refusals
from bot.services import stats
from models import Node

router = APIRouter()

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day_only(value: Any) -> Any:
    """Refuse anything but YYYY-MM-DD before pydantic's lax date parsing, which would read
    `0` or `1582520000` as a Unix timestamp and answer for 1970 or some other day."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("the date must be written YYYY-MM-DD, e.g. 2020-02-21")
    return value


def _in_range(value: date) -> date:
    """Refuse the first and last days a date can hold (see stats.FIRST_DAY)."""
    if not stats.day_in_range(value):
        raise ValueError(f"the date must be between {stats.FIRST_DAY} and {stats.LAST_DAY}")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day_only), AfterValidator(_in_range)]


@router.get("/stats", response_model=StatsPublic, responses=refusals(404))
async def get_stats(
    session: ReadSessionDep, app: AppDep, scope: ScopeDep,
    node: Annotated[int, Query(ge=1, le=MAX_ID, description="a node id: its whole subtree"),
                    Digits],
    day: Annotated[IsoDay | None, Query(alias="date",
                                      description="the day, 2020-02-21 (default today)")] = None,
) -> StatsPublic:
    """The figures of `node`'s subtree on `date`, section by section; 404 for a node the
    token does not see, and for a day after today (it has no figures yet: a well-formed
    date, so not a 422, which is kept for malformed requests)."""
    root = await session.get(Node, node)
    if root is None or not await scope.sees(session, node):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node}")
    now, zone = app.now(), app.settings.zone
    today = now.astimezone(zone).date()
    if day is not None and day > today:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no figures for {day}: it is in the future (today is {today})")
    figures = await stats.compute(session, node=root, day=day or today, zone=zone, now=now)
    return StatsPublic(
        node_id=root.id, node=root.name, date=figures.day.isoformat(),
        sections=[StatsSectionPublic(key=s.key, title=s.title,
                                     items={label: value for label, value in items})
                  for s, items in figures.sections])
