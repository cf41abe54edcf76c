"""Who reaches what through the console: every console route tried by people at tiers 1-5, a
secretary, a tenant and a superuser against every branch of a chain with siblings at every
tier (the API's matrix world). A foreign id is a 404 (like one that does not exist) and
changes nothing; lists and trees hold only the viewer's own part. A route added to PAGES
without a case here fails the coverage test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import BotApp
from bot.services import console as logins
from bot.services import personal
from bot.services import points as pts
from bot.web.app import PAGES, PREFIX
from bot.web.pages import simulator as simulator_page
from models import (
    AccessLog,
    ApiToken,
    InviteCode,
    Notice,
    OutboxMessage,
    Person,
    PointsEvent,
    PointsStatus,
    Shop,
    ShopReopening,
    TenantStay,
)
from models.shop import ReopeningStatus
from tests.test_api_access import World
from tests.web.conftest import PASSWORD, Browser

PUBLIC = {("GET", "/console/login"), ("POST", "/console/login"), ("POST", "/console/logout"),
          ("GET", "/console/invite/{token}"), ("POST", "/console/invite/{token}")}


def console_routes() -> set[tuple[str, str]]:
    """(method, path) of every page route behind the login (the simulator's place for a bot
    on a real chat platform included: the test bot's chat is not the simulated one)."""
    return {(method, PREFIX + route.path) for router in (*PAGES, simulator_page.fallback)
            for route in router.routes
            for method in route.methods}  # type: ignore[attr-defined]


async def _setup(bot: BotApp, world: World) -> dict[str, dict[str, int]]:
    """Console logins for the API world's token holders; per leaf its node, a tenant under
    watch, a pending points event and an access-log entry (reason 'why-<leaf>')."""
    out: dict[str, dict[str, int]] = {}
    now = bot.now()
    async with bot.session() as s, s.begin():
        for token in (await s.execute(select(ApiToken))).scalars():
            username = "superuser" if token.superuser else token.label
            await logins.create_login(s, username=username, person_id=None
                                      if token.superuser else token.person_id,
                                      superuser=token.superuser, now=now, password=PASSWORD)
        rule = bot.settings.points.rules[0]
        for leaf, stay_id in world.stays.items():
            stay = await s.get(TenantStay, stay_id)
            assert stay is not None
            event = await pts.record(
                s, landlord_id=stay.landlord_id, node_id=stay.node_id, rule=rule, delta=1,
                source_kind="test", source_key=f"matrix-{leaf}", evidence="matrix", now=now,
                zone=bot.settings.zone)
            assert event is not None and event.status == PointsStatus.PENDING
            tenant = await s.get(Person, stay.tenant_id)
            assert tenant is not None
            await personal.reveal(s, tenant, "mobile", who="cli", why=f"why-{leaf}", now=now)
            shop = Shop(node_id=stay.node_id, name=f"shop-{leaf}", created_at=now)
            s.add(shop)
            await s.flush()
            reg = ShopReopening(shop_id=shop.id, node_id=stay.node_id, owner_id=stay.tenant_id,
                                staff=1, status=ReopeningStatus.REVIEW, created_at=now)
            s.add(reg)
            await s.flush()
            out[leaf] = {"node": stay.node_id, "tenant": stay.tenant_id, "event": event.id,
                         "reg": reg.id}
    return out


async def _state(bot: BotApp) -> tuple[int, ...]:
    """What a refused request must not change."""
    async with bot.session() as s:
        counts = [await s.scalar(select(func.count()).select_from(m))
                  for m in (AccessLog, InviteCode, Notice, OutboxMessage, Person)]
        pending = await s.scalar(select(func.count()).select_from(PointsEvent).where(
            PointsEvent.status == PointsStatus.PENDING))
        review = await s.scalar(select(func.count()).select_from(ShopReopening).where(
            ShopReopening.status == ReopeningStatus.REVIEW))
    return (*[int(c or 0) for c in counts], int(pending or 0), int(review or 0))


Case = Callable[[Browser, str, str, dict[str, int]], Awaitable[int]]


async def _post(b: Browser, path: str, data: dict[str, str]) -> int:
    await b.get("/console/")
    return (await b.post(path, data)).status_code


# One case per console route: given the viewer's browser, the viewer, the leaf and its ids,
# make the request about that leaf and return the status. GETs of a node's page answer 200
# for a visible node; POSTs are only tried on foreign leaves (they would act otherwise).
CASES: dict[tuple[str, str], tuple[str, Case]] = {
    ("GET", "/console/"): ("page", lambda b, who, leaf, ids: _get(b, f"/console/?node={ids['node']}", leaf)),
    ("GET", "/console/board"): ("page", lambda b, who, leaf, ids: _get(b, f"/console/board?node={ids['node']}", leaf)),
    ("GET", "/console/watch"): ("page", lambda b, who, leaf, ids: _get(b, f"/console/watch?node={ids['node']}", leaf)),
    ("GET", "/console/points"): ("page", lambda b, who, leaf, ids: _get(b, f"/console/points?node={ids['node']}", leaf)),
    ("GET", "/console/chain"): ("list", lambda b, who, leaf, ids: _listed(b, "/console/chain", leaf)),
    ("GET", "/console/access-log"): ("list", lambda b, who, leaf, ids: _listed(b, "/console/access-log", f"why-{leaf}")),
    ("POST", "/console/chain/{node_id}/invite"): ("act", lambda b, who, leaf, ids: _post(
        b, f"/console/chain/{ids['node']}/invite", {"kind": "person", "role": "landlord"})),
    ("POST", "/console/board/preview"): ("act", lambda b, who, leaf, ids: _post(
        b, "/console/board/preview", {"origin": str(ids["node"]), "text": "测试通知"})),
    ("POST", "/console/board/send"): ("act", lambda b, who, leaf, ids: _post(
        b, "/console/board/send", {"origin": str(ids["node"]), "text": "测试通知"})),
    ("POST", "/console/watch/{person_id}/reveal"): ("act", lambda b, who, leaf, ids: _post(
        b, f"/console/watch/{ids['tenant']}/reveal", {"field": "mobile", "reason": "越权"})),
    ("POST", "/console/points/{event_id}/verify"): ("act", lambda b, who, leaf, ids: _post(
        b, f"/console/points/{ids['event']}/verify", {"decision": "approve"})),
    ("GET", "/console/units"): ("page", lambda b, who, leaf, ids: _get(b, f"/console/units?node={ids['node']}", leaf)),
    ("GET", "/console/exports"): ("page", lambda b, who, leaf, ids: _get(b, f"/console/exports?node={ids['node']}", leaf)),
    ("POST", "/console/units/reopening/{registration_id}/review"): ("act", lambda b, who, leaf, ids: _post(
        b, f"/console/units/reopening/{ids['reg']}/review", {"decision": "approve"})),
    ("POST", "/console/exports"): ("act", lambda b, who, leaf, ids: _post(
        b, "/console/exports", {"report": "stats", "node": str(ids["node"])})),
    # Superusers' routes, about no node: anyone else is refused (403).
    ("POST", "/console/import/preview"): ("ops", lambda b, who, leaf, ids: _upload(b)),
    ("POST", "/console/import/apply"): ("ops", lambda b, who, leaf, ids: _post(
        b, "/console/import/apply", {"digest": "0" * 64, "suffix": ".xlsx"})),
    ("GET", "/console/simulator"): ("ops", lambda b, who, leaf, ids: _status(b, "/console/simulator")),
    ("GET", "/console/simulator/"): ("ops", lambda b, who, leaf, ids: _status(b, "/console/simulator/")),
}


async def _upload(b: Browser) -> int:
    """An import preview of a small chain file (it would add a person)."""
    await b.get("/console/")
    response = await b.client.post("/console/import/preview", data={"csrf": b.csrf}, files={
        "file": ("chain.toml", '[[people]]\nkey = "x"\nname = "越权"\n\n[[nodes]]\n'
                 'name = "越权街道"\nkind = "subdistrict"\n'.encode())})
    return response.status_code


async def _status(b: Browser, path: str) -> int:
    return (await b.get(path)).status_code


async def _get(b: Browser, path: str, leaf: str) -> int:
    response = await b.get(path)
    if response.status_code == 404:
        assert leaf not in response.text
    return response.status_code


async def _listed(b: Browser, path: str, marker: str) -> int:
    """200 when the marker is listed, 404 when the page lists without it, 403 if refused."""
    response = await b.get(path)
    if response.status_code != 200:
        return response.status_code
    return 200 if marker in response.text else 404


def test_every_console_route_has_a_case_in_the_matrix():
    assert console_routes() == set(CASES), "add the new console route to CASES"


def _mounted(bot: BotApp) -> set[tuple[str, str, bool]]:
    """(method, path, behind get_viewer) of every route the app serves under /console (routers
    included lazily by newer FastAPI versions are opened up)."""
    from fastapi.routing import APIRoute

    from bot.api import create_api
    from bot.web.deps import get_viewer

    out: set[tuple[str, str, bool]] = set()
    for route in create_api(bot).routes:
        context = getattr(route, "include_context", None)
        if context is not None:
            guarded = any(d.dependency is get_viewer for d in context.dependencies)
            pairs = [(context.prefix + r.path, r, guarded) for r in
                     context.included_router.routes]
        elif isinstance(route, APIRoute):
            pairs = [(route.path, route, False)]
        else:
            continue
        for path, inner, guarded in pairs:
            if not path.startswith(PREFIX):
                continue
            guarded = guarded or any(d.dependency is get_viewer
                                     for d in getattr(inner, "dependencies", []))
            out |= {(m, path, guarded) for m in getattr(inner, "methods", set()) - {"HEAD"}}
    return out


def test_every_console_route_is_public_on_purpose_or_behind_the_login(bot: BotApp):
    mounted = _mounted(bot)
    assert {(m, p) for m, p, _ in mounted} - PUBLIC == console_routes()
    assert {(m, p) for m, p, guarded in mounted if not guarded} == PUBLIC


async def test_console_authorisation_matrix(bot: BotApp, world: World, browsers):
    ids = await _setup(bot, world)
    whos = list(world.tokens)
    for who in whos:
        b: Browser = browsers()
        assert (await b.login(who)).status_code == 303, who
        reads_log = who in ("tier1", "tier2", "superuser")
        for (method, path), (kind, case) in CASES.items():
            for leaf, leaf_ids in ids.items():
                sees = world.sees(who, leaf)
                if kind == "act" and sees or kind == "ops" and who == "superuser":
                    continue
                before = await _state(bot)
                got = await case(b, who, leaf, leaf_ids)
                if path == "/console/access-log" and not reads_log or kind == "ops":
                    expected = 403
                else:
                    expected = 200 if sees else 404
                assert got == expected, (who, method, path, leaf)
                assert await _state(bot) == before, (who, method, path, leaf)


async def test_without_a_session_every_route_sends_to_the_login(bot: BotApp, browsers):
    b: Browser = browsers()
    for method, path in console_routes():
        url = path.replace("{node_id}", "1").replace("{person_id}", "1").replace(
            "{event_id}", "1").replace("{registration_id}", "1")
        response = await b.client.request(method, url)
        assert response.status_code in ((303,) if method == "GET" else (401,)), (method, path)


async def test_every_post_refuses_a_missing_or_wrong_csrf_token(bot: BotApp, world: World,
                                                               browsers):
    ids = await _setup(bot, world)
    b: Browser = browsers()
    await b.login("tier2")
    leaf = ids["董宝明出租房"]
    for method, path in console_routes():
        if method != "POST":
            continue
        url = path.replace("{node_id}", str(leaf["node"])).replace(
            "{person_id}", str(leaf["tenant"])).replace("{event_id}", str(leaf["event"])).replace(
            "{registration_id}", str(leaf["reg"]))
        for token in ("", "wrong"):
            before = await _state(bot)
            response = await b.post(url, {"origin": str(leaf["node"]), "text": "x",
                                          "kind": "group", "field": "mobile", "reason": "ok",
                                          "decision": "approve"}, csrf=token)
            assert response.status_code == 403, (path, token)
            assert await _state(bot) == before, path


@pytest.fixture
async def world(bot: BotApp, chain) -> World:
    """The API matrix's world (sibling branches at every tier, tokens of each holder)."""
    from tests.test_api_access import _build

    bot_world = await _build(bot)
    # Sessions live long enough for the whole matrix.
    bot.settings.console.idle_minutes = 24 * 60
    _ = timedelta
    return bot_world
