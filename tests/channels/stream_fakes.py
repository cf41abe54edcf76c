"""What the fake platform gateways of the inbound sources (DingTalk Stream, Feishu's long
connection) share: an aiohttp server on 127.0.0.1 that a fake's handlers answer, and the
handler the sources feed in the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from aiohttp import web

from bot.transports.base import IncomingMessage

Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


class Gateway(Protocol):
    port: int
    sockets: list[web.WebSocketResponse]


G = TypeVar("G", bound=Gateway)


@asynccontextmanager
async def serving(fake: G, routes: Sequence[Route]) -> AsyncIterator[G]:
    """Serve `routes` (method, path, handler) on a free loopback port, set `fake.port`, and
    close the fake's websockets and the server afterwards."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.port = runner.addresses[0][1]
    try:
        yield fake
    finally:
        for ws in fake.sockets:
            await ws.close()
        await runner.cleanup()


class Inbox:
    """The handler a source feeds: keeps what arrives, or fails like a database that is down."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.fail = False

    async def __call__(self, message: IncomingMessage) -> None:
        if self.fail:
            raise RuntimeError("database down")
        self.messages.append(message)
