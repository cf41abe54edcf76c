"""The bot with two simulated official channels ("robot", "robot2") beside the in-memory
WeChat transport; `staff_on_robot` binds the demo chain's tiers 2-3 to "robot" with the WeChat
account as their fallback (tier 1 stays on WeChat: the sender's confirmations go there, so a
robot's scripted results hit the notice rows)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from bot.app import BotApp, build_app, running
from bot.channels.base import Limits
from bot.channels.sim import SimOfficialChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.transports.memory import MemoryTransport
from models import Group, Node

ROOMY = Limits(per_minute=1000, max_body_bytes=2048, penalty_seconds=600.0)


@pytest.fixture
def robot() -> SimOfficialChannel:
    return SimOfficialChannel("robot", {"webhook": "https://example.invalid/hook?key=x"},
                              limits=ROOMY)


@pytest.fixture
def robot2() -> SimOfficialChannel:
    return SimOfficialChannel("robot2", {"webhook": "https://example.invalid/hook?key=y"},
                              limits=ROOMY)


@pytest.fixture
async def bot(settings: Settings, transport: MemoryTransport, clock: FakeClock,
              robot: SimOfficialChannel, robot2: SimOfficialChannel) -> AsyncIterator[BotApp]:
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock,
                    channels={"robot": robot, "robot2": robot2})
    async with running(app):
        yield app


async def bind_staff(bot: BotApp, account: str = "robot", fallback: str = "", *,
                     tiers: tuple[int, ...] = (2, 3)) -> list[str]:
    """Groups of these tiers of the demo chain on `account` (fallback `fallback`); their
    rooms."""
    async with bot.session() as s, s.begin():
        ids = select(Node.id).where(Node.tier.in_(tiers)).scalar_subquery()
        await s.execute(update(Group).where(Group.node_id.in_(ids))
                        .values(account=account, fallback_account=fallback))
        rooms = (await s.execute(select(Group.room_id).where(Group.node_id.in_(ids))
                                 .order_by(Group.id))).scalars().all()
    return list(rooms)


@pytest.fixture
async def staff_on_robot(bot: BotApp, chain: object) -> list[str]:
    return await bind_staff(bot)
