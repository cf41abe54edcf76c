"""The chat simulator's endpoints (bot/simulator) without a browser: a message needs the
page's token (another site's page cannot speak), bad input changes nothing, the log shows
both sides, the clock moves and reminders arrive; it refuses a bot not on the simulated chat."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bot import simulator
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.transports.sim import SimTransport
from models import InboundMessage
from tests.conftest import DemoChain, count


@pytest.fixture
async def sim_bot(settings: Settings, clock: FakeClock) -> AsyncIterator[BotApp]:
    app = build_app(settings.model_copy(update={"transport": "sim"}),
                    transport=SimTransport(now=clock.now), clock=clock)
    async with running(app):
        await load_demo_chain(app)
        yield app


@pytest.fixture
async def sim(sim_bot: BotApp) -> simulator.Simulator:
    return simulator.Simulator(sim_bot)


@pytest.fixture
async def client(sim: simulator.Simulator) -> AsyncIterator[httpx.AsyncClient]:
    web = FastAPI()
    web.include_router(simulator.router(sim, base="/sim"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web),
                                 base_url="http://127.0.0.1") as c:
        yield c


def _auth(sim: simulator.Simulator) -> dict[str, str]:
    return {"X-Sim-Token": sim.token}


async def test_the_page_carries_its_token_and_every_group(client, sim):
    page = await client.get("/sim/")
    assert page.status_code == 200 and sim.token in page.text and "聊天模拟器" in page.text
    state = (await client.get("/sim/state")).json()
    rooms = [g["room"] for g in state["groups"]]
    assert DemoChain.subdistrict_group in rooms and DemoChain.tenant_group in rooms
    # The commanders of the tier above sit in the group below.
    [community] = [g for g in state["groups"] if g["room"] == DemoChain.community_group]
    assert DemoChain.commander in [m["contact"] for m in community["members"]]


async def test_speaking_shows_both_sides_where_they_go(client, sim, sim_bot):
    said = await client.post("/sim/say", headers=_auth(sim), json={
        "room": DemoChain.subdistrict_group, "contact": DemoChain.commander,
        "text": "通知 请各房东今日完成楼道消毒"})
    assert said.status_code == 200
    log = (await client.get("/sim/messages?after=0")).json()["messages"]
    assert log[0] == {**log[0], "who": "张建国", "bot": False,
                      "room": DemoChain.subdistrict_group}
    notice_rooms = {m["room"] for m in log if m["bot"] and m["text"].startswith("【通知#1】请")}
    assert DemoChain.tenant_group in notice_rooms and DemoChain.subdistrict_group not in notice_rooms
    after = log[-1]["id"]
    assert (await client.get(f"/sim/messages?after={after}")).json()["messages"] == []
    # Reminders arrive when the clock moves past the deadline.
    moved = await client.post("/sim/clock", headers=_auth(sim), json={"minutes": 180})
    assert moved.status_code == 200 and moved.json()["now"] == "2020-02-21 13:00"
    later = (await client.get(f"/sim/messages?after={after}")).json()["messages"]
    assert any("提醒" in m["text"] and m["room"] == DemoChain.tenant_group for m in later)


@pytest.mark.parametrize("headers", [{}, {"X-Sim-Token": "guess"}, {"X-Sim-Token": ""}])
async def test_without_the_pages_token_nothing_is_said_or_moved(client, sim, sim_bot, headers):
    before = sim_bot.now()
    said = await client.post("/sim/say", headers=headers, json={
        "room": DemoChain.tenant_group, "contact": DemoChain.landlord, "text": "收到"})
    moved = await client.post("/sim/clock", headers=headers, json={"minutes": 60})
    assert (said.status_code, moved.status_code) == (403, 403)
    assert await count(sim_bot, InboundMessage) == 0 and sim.log == []
    assert sim_bot.now() == before


@pytest.mark.parametrize("body", [
    {"room": DemoChain.tenant_group, "contact": "sim-nobody-known", "text": "收到"},
    {"room": DemoChain.tenant_group, "contact": DemoChain.landlord, "text": "长" * 2001},
    {"room": DemoChain.tenant_group, "contact": DemoChain.landlord, "text": ""},
    {"room": DemoChain.tenant_group, "contact": "", "name": "  ", "text": "你好"},
])
async def test_bad_messages_are_refused_and_change_nothing(client, sim, sim_bot, body):
    response = await client.post("/sim/say", headers=_auth(sim), json=body)
    assert response.status_code == 422
    assert await count(sim_bot, InboundMessage) == 0 and sim.log == []


@pytest.mark.parametrize("minutes", [0, -5, 30 * 24 * 60 + 1])
async def test_the_clock_moves_forward_only_and_not_too_far(client, sim, sim_bot, minutes):
    before = sim_bot.now()
    response = await client.post("/sim/clock", headers=_auth(sim), json={"minutes": minutes})
    assert response.status_code == 422 and sim_bot.now() == before


async def test_a_new_speaker_gets_a_contact_of_their_own(client, sim):
    said = await client.post("/sim/say", headers=_auth(sim), json={
        "room": DemoChain.ying_group, "contact": "", "name": "应天喜", "text": "帮助"})
    assert said.status_code == 200
    people = {p["name"]: p["contact"] for p in (await client.get("/sim/state")).json()["people"]}
    assert people["应天喜"].startswith("sim-web-")


async def test_the_simulator_needs_the_simulated_chat(bot):
    with pytest.raises(ValueError, match="simulated chat"):
        simulator.Simulator(bot)


def test_demo_web_listens_on_this_machine_only_by_default():
    from bot.cli import _parser

    args = _parser().parse_args(["demo", "--web"])
    assert (args.web, args.host) == (True, "127.0.0.1")
