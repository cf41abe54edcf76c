"""Dependencies shared by the routes: the bot app, a session, ids and paging, and the scope:
who is asking (a token of a person, or a superuser) and which nodes they may see.

Every /api route takes `ScopeDep` (a test walks the routes and fails for one that does not),
and filters what it reads with `scope.filter(column)` or `scope.sees(...)`.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator
from sqlalchemy import ColumnElement, Select, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from bot.app import BotApp
from bot.services import chain
from bot.services import token as tokens
from models import ApiToken, Node

_bearer = HTTPBearer(auto_error=False, description="a token from `tierbot tokens create`")

# Ids are INTEGER columns: 64-bit in SQLite but 32-bit in PostgreSQL, where a larger value
# makes the driver fail (a 500, found by schemathesis). So the narrower range: anything
# outside it, or not an integer, is a 422.
MAX_ID = 2**31 - 1


def _digits(value: object) -> object:
    """An integer in a path or a query is written in the digits 0-9 and nothing else: pydantic
    would also take "3\v", " 3", "3_0" or "３" (schemathesis sent /api/nodes/3%0B and got 200)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("not an integer written in the digits 0-9")
    return value


Digits = BeforeValidator(_digits)
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="an id"), Digits]
MaybeId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="an id"), Digits]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page"), Digits]
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID,
                                     description="`next_cursor` of the previous page"), Digits]
DEFAULT_LIMIT = 100

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; `next_cursor` (when not null) asks for the next one."""

    items: list[T]
    next_cursor: int | None


def paged(items: Sequence[T], *, limit: int, key: Callable[[T], int]) -> Page[T]:
    """A page from items in cursor order, fetched with one item more than the limit."""
    more = len(items) > limit
    shown = list(items[:limit])
    return Page[T](items=shown, next_cursor=key(shown[-1]) if more and shown else None)


def get_app(request: Request) -> BotApp:
    """The BotApp the API was created for."""
    app: BotApp = request.app.state.bot
    return app


async def get_session(app: Annotated[BotApp, Depends(get_app)]) -> AsyncIterator[AsyncSession]:
    """A read transaction for one request."""
    async with app.session() as session, session.begin():
        yield session


async def get_read_session(app: Annotated[BotApp, Depends(get_app)]
                           ) -> AsyncIterator[AsyncSession]:
    """A read-only transaction for a request that reads a whole subtree (the figures): on
    SQLite off the event loop and beside the writer (BotApp.read_session)."""
    async with app.read_session() as session, session.begin():
        yield session


class FailureThrottle:
    """Wrong tokens per client address, in memory: after `free` failures each further try
    waits 1 s, 2 s, 4 s … up to `max_delay` (429 with Retry-After until then). A success
    forgets the address; so does an hour without failures. Bounded: past `capacity` addresses
    the oldest are dropped."""

    FORGET_AFTER = timedelta(hours=1)

    def __init__(self, *, free: int, max_delay: float, capacity: int = 10_000):
        self.free = free
        self.max_delay = max_delay
        self.capacity = capacity
        # address -> (failures, last failure, blocked until)
        self._state: dict[str, tuple[int, datetime, datetime]] = {}

    def retry_after(self, address: str, now: datetime) -> float:
        """Seconds this address must still wait (0: it may try)."""
        state = self._state.get(address)
        if state is None:
            return 0.0
        failures, last, until = state
        if now - last > self.FORGET_AFTER:
            del self._state[address]
            return 0.0
        return max(0.0, (until - now).total_seconds())

    def failed(self, address: str, now: datetime) -> None:
        """Count a wrong token from this address."""
        failures, _last, _until = self._state.pop(address, (0, now, now))
        failures += 1
        delay = 0.0
        if failures > self.free:
            delay = min(2.0 ** (failures - self.free - 1), self.max_delay)
        self._state[address] = (failures, now, now + timedelta(seconds=delay))
        while len(self._state) > self.capacity:
            del self._state[next(iter(self._state))]

    def succeeded(self, address: str) -> None:
        """A good token: the address starts afresh."""
        self._state.pop(address, None)


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is asking and the nodes they see: the subtrees of `roots`, or all (superuser)."""

    superuser: bool
    person_id: int | None
    token_id: int | None
    roots: tuple[int, ...] = ()

    def nodes(self) -> Select[tuple[int]] | None:
        """The visible node ids as a query (None: every node)."""
        if self.superuser:
            return None
        return chain.subtrees_select(self.roots)

    def filter(self, node_id: QueryableAttribute[int] | ColumnElement[int]
               ) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose node column is visible."""
        visible = self.nodes()
        if visible is None:
            return true()
        if not self.roots:
            return false()
        return node_id.in_(visible)

    async def sees(self, session: AsyncSession, node_id: int) -> bool:
        """Whether the node exists and is visible (both answered alike: 404 either way)."""
        found = await session.execute(select(Node.id).where(Node.id == node_id,
                                                            self.filter(Node.id)))
        return found.first() is not None


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": "Bearer"})


async def get_scope(
    request: Request,
    app: Annotated[BotApp, Depends(get_app)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Scope:
    """401 without a valid token (429 while the address is being slowed down); else what the
    token sees. Each use is recorded on the token (`last_used_at`)."""
    throttle: FailureThrottle = request.app.state.throttle
    address = request.client.host if request.client else ""
    now = app.now()
    wait = throttle.retry_after(address, now)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            "too many wrong tokens from this address: wait and try again",
                            headers={"Retry-After": str(math.ceil(wait))})
    given = credentials.credentials if credentials else ""
    if not given:
        raise _unauthorised("missing bearer token")
    legacy = app.settings.api.token
    if legacy and hmac.compare_digest(given.encode(), legacy.encode()):
        # The deprecated shared [api] token: a superuser with no person (warned at start).
        throttle.succeeded(address)
        return Scope(superuser=True, person_id=None, token_id=None)
    # Its own transaction: a request that fails (404) still records the use.
    async with app.session() as session, session.begin():
        found = await tokens.authenticate(session, secret=given, now=now)
        if isinstance(found, ApiToken):
            roots = () if found.superuser else tuple(
                await tokens.scope_roots(session, person_id=found.person_id))
            scope = Scope(superuser=found.superuser, person_id=found.person_id,
                          token_id=found.id, roots=roots)
    if not isinstance(found, ApiToken):
        throttle.failed(address, now)
        raise _unauthorised(str(found))
    throttle.succeeded(address)
    return scope


async def get_superuser(scope: Annotated[Scope, Depends(get_scope)]) -> Scope:
    """403 unless the token is a superuser's (operators' routes)."""
    if not scope.superuser:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a superuser token may do this")
    return scope


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
AppDep = Annotated[BotApp, Depends(get_app)]
ScopeDep = Annotated[Scope, Depends(get_scope)]
SuperuserDep = Annotated[Scope, Depends(get_superuser)]
