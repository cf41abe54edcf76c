"""Browser tests: Debian's chromium driven by pytest-playwright (headless, no sandbox: CI runs
as root in a container), against a live server: uvicorn on 127.0.0.1 at a free port, in a
thread with its own event loop where the bot (simulated chat, fake clock, the demo chain)
runs on the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvicorn
from fastapi import FastAPI

from bot import simulator
from bot.api.app import create_api
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.transports.sim import SimTransport

CHROMIUM = "/usr/bin/chromium"
T = TypeVar("T")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's chromium (apt), not a downloaded build: .ci/run installs it."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox"]}


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns the signals
        yield


class Live:
    """The running bot and its web server; `run` executes a coroutine on the server's loop
    (the bot's engine lives there) and returns its result."""

    def __init__(self, settings: Settings, clock: FakeClock,
                 extra: Callable[[BotApp, FastAPI], None] | None = None):
        self.settings = settings
        self.clock = clock
        self.extra = extra
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: BotApp | None = None
        self.sim: simulator.Simulator | None = None
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
def live(settings: Settings, clock: FakeClock) -> Iterator[Live]:
    """The bot on the simulated chat with the demo chain, served on 127.0.0.1."""
    server = Live(settings, clock).start()
    try:
        yield server
    finally:
        server.stop()
