"""Fixtures for the Wechaty end-to-end tests: the Node test gateway (a real Wechaty puppet
service on the mock puppet) started on a free loopback port, and a small world to chat in."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.wechaty_gateway.smoke_client import Gateway, GatewayError

GATEWAY_DIR = Path(__file__).resolve().parents[1] / "wechaty_gateway"
EVENT_TIMEOUT = 20.0

BOT = {"id": "wx-bot", "name": "小助手"}
CONTACTS = [
    {"id": "wx-zhang", "name": "张建国"},
    {"id": "wx-li", "name": "李卫东"},
    {"id": "wx-wu", "name": "吴海峰"},
    {"id": "wx-liu", "name": "刘芳"},
    {"id": "wx-dong", "name": "董宝明"},
    {"id": "wx-ying", "name": "应天喜"},
    {"id": "wx-pan", "name": "潘先生"},
    {"id": "wx-zhao", "name": "赵丽"},
]
ROOMS = {
    "futian@chatroom": ("福田街道指挥群", ["wx-zhang", "wx-li"]),
    "changchun@chatroom": ("长春社区指挥群", ["wx-li", "wx-wu"]),
    "team1@chatroom": ("长春第一作战小组群", ["wx-wu", "wx-liu"]),
    "team1-landlords@chatroom": ("第一小组房东群", ["wx-liu", "wx-dong", "wx-ying"]),
    "dong@chatroom": ("董宝明租客群", ["wx-dong", "wx-pan"]),
    "ying@chatroom": ("应天喜租客群", ["wx-ying", "wx-zhao"]),
}


def world(bot: dict[str, str] = BOT, rooms: dict[str, tuple[str, list[str]]] = ROOMS,
          contacts: list[dict[str, str]] = CONTACTS) -> dict[str, Any]:
    """The gateway's `setup` command for the test world (the bot is in every room)."""
    return {
        "bot": bot,
        "contacts": contacts,
        "rooms": [{"id": rid, "topic": topic, "members": [bot["id"], *members],
                   "owner": members[0]} for rid, (topic, members) in rooms.items()],
    }


class GatewayDriver:
    """The thread-based gateway driver of smoke_client, awaitable from the test's event loop."""

    def __init__(self, gateway: Gateway, setup: dict[str, Any]):
        self.gateway = gateway
        self.setup = setup
        # Processes killed or stopped before a restart: what they reported stays readable.
        self.previous: list[Gateway] = []

    @classmethod
    async def launch(cls, setup: dict[str, Any], *, port: int = 0,
                     token: str | None = None) -> GatewayDriver:
        """Start `node gateway.mjs` and build the world."""
        gateway = await asyncio.to_thread(Gateway, port, token)
        driver = cls(gateway, setup)
        await driver.cmd("setup", **setup)
        return driver

    @property
    def endpoint(self) -> str:
        """host:port of the gateway's gRPC service."""
        return self.gateway.endpoint

    @property
    def token(self) -> str:
        """The token the gateway accepts (any other is refused)."""
        return self.gateway.token

    async def cmd(self, name: str, **fields: Any) -> dict[str, Any]:
        """One command; raises GatewayError unless it succeeded."""
        return await asyncio.to_thread(self.gateway.cmd, name, **fields)

    def mark(self) -> int:
        """A position in the event list: wait for what comes after it."""
        return len(self.gateway.events)

    async def wait_event(self, pred: Callable[[dict[str, Any]], bool], *, since: int = 0,
                         timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The first event after `since` that matches."""
        return await asyncio.to_thread(self.gateway.wait_event, pred, timeout, since)

    async def say(self, room: str, contact: str, text: str, **fields: Any) -> str:
        """A contact speaks in a room; returns the message id."""
        reply = await self.cmd("say", room=room, contact=contact, text=text, **fields)
        return str(reply["message_id"])

    async def bot_message(self, room: str, *, since: int, startswith: str = "",
                          timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The next message of the bot in the room after `since` (starting with the text)."""
        return await self.wait_event(
            lambda e: (e.get("event") == "message" and e.get("self") is True
                       and e.get("room") == room and e["text"].startswith(startswith)),
            since=since, timeout=timeout)

    def bot_messages(self, room: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
        """Every message of the bot seen by the gateway (in one room)."""
        return [e for e in self.gateway.events[since:]
                if e.get("event") == "message" and e.get("self") is True
                and (room is None or e.get("room") == room)]

    def bot_messages_all_processes(self, room: str | None = None) -> list[dict[str, Any]]:
        """Every message of the bot seen by this gateway and the processes it replaced (a
        killed process reported its messages on stdout before it died)."""
        return [e for gateway in [*self.previous, self.gateway] for e in gateway.events
                if e.get("event") == "message" and e.get("self") is True
                and (room is None or e.get("room") == room)]

    async def kill(self) -> None:
        """SIGKILL the gateway (the client's connection drops)."""
        await asyncio.to_thread(self.gateway.kill)

    async def restart(self) -> None:
        """Start a new gateway on the same port with the same token and world."""
        port, token = self.gateway.port, self.gateway.token
        self.previous.append(self.gateway)
        self.gateway = await asyncio.to_thread(Gateway, port, token)
        await self.cmd("setup", **self.setup)

    async def stop(self) -> None:
        """Stop the gateway process and close its pipes."""
        await asyncio.to_thread(self.gateway.stop)


@pytest.fixture(scope="session")
def gateway_dir() -> Path:
    """The Node gateway, with its packages installed (npm ci when missing or stale)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        # Not a skip: the end-to-end tests must run in CI.
        pytest.fail("node >= 18 and npm are needed for the Wechaty end-to-end tests")
    modules = GATEWAY_DIR / "node_modules"
    lock = GATEWAY_DIR / "package-lock.json"

    def stale() -> bool:
        return not modules.is_dir() or modules.stat().st_mtime < lock.stat().st_mtime

    if stale():
        # npm ci deletes node_modules first: two test runs at once must not both do it.
        with open(Path(tempfile.gettempdir()) / "tierbot-wechaty-gateway-npm.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            if stale():
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=GATEWAY_DIR,
                               check=True, stdout=subprocess.DEVNULL)
    return GATEWAY_DIR


@pytest.fixture
async def gateway(gateway_dir: Path) -> AsyncIterator[GatewayDriver]:
    """A running gateway with the test world."""
    driver = await GatewayDriver.launch(world())
    try:
        yield driver
    finally:
        with contextlib.suppress(GatewayError):
            await driver.stop()
