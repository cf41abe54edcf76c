"""The console's fixtures: a browser-like HTTP client (cookies kept, CSRF tokens read from the
pages as a browser's forms would send them) and logins of people of the demo chain.

And for the browser tests (test_browser_*.py): Debian's chromium driven by pytest-playwright
(headless, no sandbox: CI runs as root in a container) against a live server: uvicorn on
127.0.0.1 at a free port, in a thread with its own event loop where the bot (simulated chat,
fake clock, the demo chain with console logins) runs on the test database (SQLite and
PostgreSQL). `page` is built here from `chromium`, not from pytest-playwright's `browser`
fixture: that name is the HTTP client's above in this directory, and pytest-playwright's is
session-wide (see `chromium`); Playwright's own `expect` waits for what the page shows."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher, profiles
from fastapi import FastAPI
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select

from bot import simulator
from bot.api import create_api
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.services import console as logins
from bot.transports.sim import SimTransport
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


async def add_logins(session: Any, *, now: Any) -> dict[str, int]:
    """Console logins (password PASSWORD) for people at tiers 1, 2, 3, 5, a secretary and an
    operator; login name -> person id (0 for the operator)."""
    out: dict[str, int] = {}
    for username, name in PEOPLE.items():
        person_id = None
        if name is not None:
            person_id = (await session.execute(
                select(Person.id).where(Person.name == name))).scalar_one()
        await logins.create_login(session, username=username, person_id=person_id,
                                  superuser=name is None, now=now, password=PASSWORD)
        out[username] = person_id or 0
    return out


@pytest.fixture
async def people(bot: BotApp, chain: DemoChain) -> dict[str, int]:
    """Console logins of the demo chain (add_logins); login name -> person id."""
    async with bot.session() as s, s.begin():
        return await add_logins(s, now=bot.now())


CHROMIUM = "/usr/bin/chromium"
T = TypeVar("T")


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """Debian's chromium (apt), not a downloaded build: .ci/run installs it. Started and
    stopped per test: a Playwright left running keeps an event loop running in the main
    thread, and the async tests that follow on the same worker could not start theirs."""
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(chromium: Chromium) -> Iterator[Page]:
    """A fresh page in a context of its own (no cookies from another test), Chinese locale."""
    context = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns the signals
        yield


class Live:
    """The running bot and its web server (the console with the logins of add_logins, the
    simulator at /sim); `run` executes a coroutine on the server's loop (the bot's engine
    lives there) and returns its result."""

    def __init__(self, settings: Settings, clock: FakeClock,
                 extra: Callable[[BotApp, FastAPI], None] | None = None):
        self.settings = settings
        self.clock = clock
        self.extra = extra
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: BotApp | None = None
        self.sim: simulator.Simulator | None = None
        self.people: dict[str, int] = {}
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server: _Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="live-server", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        transport = SimTransport(now=self.clock.now)
        app = build_app(self.settings.model_copy(update={"transport": "sim"}),
                        transport=transport, clock=self.clock)
        async with running(app):
            await load_demo_chain(app, units=True)
            async with app.session() as session, session.begin():
                self.people = await add_logins(session, now=app.now())
            self.app = app
            web = create_api(app)
            self.sim = simulator.Simulator(app)
            web.include_router(simulator.router(self.sim, base="/sim"))
            if self.extra is not None:
                self.extra(app, web)
            self._server = _Server(uvicorn.Config(web, log_config=None, lifespan="off"))
            serving = asyncio.create_task(self._server.serve(sockets=[self._sock]))
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.01)
            self._ready.set()
            await serving

    def start(self) -> Live:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()

    def run(self, work: Callable[[BotApp], Coroutine[Any, Any, T]]) -> T:
        """work(app) on the server's loop."""
        assert self.loop is not None and self.app is not None
        return asyncio.run_coroutine_threadsafe(work(self.app), self.loop).result(60)


@pytest.fixture
def live(settings: Settings, clock: FakeClock, cheap_hashes: None) -> Iterator[Live]:
    """The bot on the simulated chat with the demo chain, served on 127.0.0.1."""
    server = Live(settings, clock).start()
    try:
        yield server
    finally:
        server.stop()
