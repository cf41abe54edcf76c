"""The never-ignore-a-fever rule as a Hypothesis property over the real pipeline (issue 11).

One bot on one SQLite database (a copy of the migrated template) serves all examples; the
database and the chat are real, only the clock is fake. For every generated phrasing of a
tenant's reading in their tier-5 group: the reading is stored with its value, or the writer
gets a one-line answer; at or above the threshold the landlord is mentioned and the team's
tier-4 group is told (a fever alert, or a possible-fever alert when the value is not sure).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import BotApp, build_app
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.transports.memory import MemoryTransport
from models import TemperatureReading
from tests.conftest import START, Chat, DemoChain
from tests.grammar.test_understanding import _EMOJI, _written

THRESHOLD = 37.3
CHAIN = DemoChain()


class _Bot:
    """A running bot kept across Hypothesis examples, driven from a synchronous test."""

    def __init__(self, template: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="tierbot-fever-"))
        shutil.copy(template, self.dir / "tierbot.db")
        self.runner = asyncio.Runner()
        self.transport = MemoryTransport("sim", bot_id="sim-bot")
        clock = FakeClock(START)
        self.transport._now = clock.now
        self.app: BotApp = build_app(
            Settings(database_url=f"sqlite+aiosqlite:///{self.dir / 'tierbot.db'}",
                     transport="memory", scheduler=False,
                     # One tenant writes every example within one fake minute: the flood
                     # rule (tests/test_replies.py) must not silence him here.
                     pacing={"min_gap_seconds": 0, "jitter_seconds": 0,
                             "commands_per_minute": 1_000_000}),
            transport=self.transport, clock=clock)
        self.chat = Chat(self.app, self.transport)
        self.runner.run(self.app.start())
        self.runner.run(load_demo_chain(self.app))
        self.say(CHAIN.tenant2, "租客返回 王明 13800000009 来自湖南长沙")

    def say(self, contact: str, text: str) -> None:
        self.runner.run(self.chat.say(CHAIN.tenant_group, contact, text))

    def latest_reading(self) -> tuple[int, float] | None:
        async def go() -> tuple[int, float] | None:
            async with self.app.session() as s:
                row = (await s.execute(select(TemperatureReading.id, TemperatureReading.value)
                                       .order_by(TemperatureReading.id.desc()).limit(1))).first()
            return None if row is None else (row[0], row[1])
        return self.runner.run(go())

    def close(self) -> None:
        self.runner.run(self.app.stop())
        self.runner.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def live(sqlite_template: Path) -> Iterator[_Bot]:
    bot = _Bot(sqlite_template)
    yield bot
    bot.close()


_values = st.integers(min_value=350, max_value=420).map(lambda n: n / 10)
_styles = st.sampled_from(["dot", "comma", "full", "degree", "chinese"])
_decoration = st.lists(_EMOJI, max_size=2).map("".join)
_lead = st.sampled_from(["", "房东，", "报告一下", "早上量了一下", "今天", "我的"])
_keyword = st.sampled_from(["体温", "体溫", "體溫", "测体温", "体温："])
_tail = st.sampled_from(["", "度", "℃", " 正常", " 有点烧", "，谢谢房东", "算发烧吗？", "了"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=_values, style=_styles, lead=_lead, keyword=_keyword, tail=_tail,
       before=_decoration, after=_decoration)
def test_a_health_report_is_never_ignored(live: _Bot, value, style, lead, keyword, tail,
                                          before, after):
    text = f"{before}{lead}{keyword}{_written(value, style)}{tail}{after}"
    last = live.latest_reading()
    live.say(CHAIN.tenant2, text)
    replies = live.chat.replies(CHAIN.tenant_group)
    team = live.chat.replies(CHAIN.landlords_group)
    reading = live.latest_reading()
    stored = reading is not None and reading != last
    assert replies, f"silence for {text!r}"
    if stored:
        assert reading is not None and reading[1] == pytest.approx(value), text
    else:
        assert len(replies) == 1 and "\n" not in replies[0], text
    if value >= THRESHOLD:
        assert live.chat.mentions(CHAIN.tenant_group)[0] == (CHAIN.landlord,), text
        assert team and ("发热" in team[0]), f"the team was not told: {text!r}"
    else:
        assert stored or "体温" in replies[0], text
        assert not team, f"a normal reading alarmed the team: {text!r}"
