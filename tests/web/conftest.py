"""The console's fixtures: a browser-like HTTP client (cookies kept, CSRF tokens read from the
pages as a browser's forms would send them) and logins of people of the demo chain."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from bot.api import create_api
from bot.app import BotApp
from bot.services import console as logins
from models import Person
from tests.conftest import DemoChain

PASSWORD = "correct horse battery"
# Who logs in: login name -> the demo chain person (None: an operator, superuser).
PEOPLE = {"tier1": "张建国", "tier2": "李卫东", "secretary": "陈秀英", "tier3": "吴海峰",
          "tier5": "董宝明", "ops": None}


@pytest.fixture(autouse=True)
def cheap_hashes() -> None:
    """Argon2's cheapest parameters: the suite logs in hundreds of times on 2 shared cores."""
    logins.use_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))


_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class Browser:
    """An HTTP client that keeps cookies and sends back the CSRF token of the last page."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client
        self.csrf = ""

    def _remember(self, response: httpx.Response) -> None:
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        response = await self.client.get(path, **kw)
        self._remember(response)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None, *,
                   csrf: str | None = None, **kw: Any) -> httpx.Response:
        """A form POST with the page's token (or the `csrf` given, "" for none)."""
        form = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:
            form["csrf"] = token
        response = await self.client.post(path, data=form, **kw)
        self._remember(response)
        return response

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/console/login")
        return await self.post("/console/login", {"username": username, "password": password})


@pytest.fixture
async def browser(bot: BotApp) -> AsyncIterator[Browser]:
    """A fresh browser on the console of the running bot."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_api(bot)),
                                 base_url="http://console.test") as client:
        yield Browser(client)


@pytest.fixture
async def browsers(bot: BotApp) -> AsyncIterator[Any]:
    """A factory of further browsers (another person, another tab without the cookie)."""
    clients: list[httpx.AsyncClient] = []
    api = create_api(bot)

    def make() -> Browser:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                   base_url="http://console.test")
        clients.append(client)
        return Browser(client)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def people(bot: BotApp, chain: DemoChain) -> dict[str, int]:
    """Console logins (password PASSWORD) for people at tiers 1, 2, 3, 5, a secretary and an
    operator; login name -> person id (0 for the operator)."""
    out: dict[str, int] = {}
    async with bot.session() as s, s.begin():
        for username, name in PEOPLE.items():
            person_id = None
            if name is not None:
                person_id = (await s.execute(
                    select(Person.id).where(Person.name == name))).scalar_one()
            await logins.create_login(s, username=username, person_id=person_id,
                                      superuser=name is None, now=bot.now(), password=PASSWORD)
            out[username] = person_id or 0
    return out
