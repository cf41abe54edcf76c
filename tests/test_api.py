"""The admin API (bot/api): health, tokens, the chain tree, the masked tenants, paging, ids,
the docs behind a token, and the one scope dependency every /api route must take."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, get_origin
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute

from bot.api import create_api
from bot.api.app import ROUTERS
from bot.api.deps import MAX_ID, Page, get_scope
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.transports.memory import MemoryTransport
from tests.conftest import Chat, DemoChain

# The deprecated shared [api] token of the test settings: a superuser.
AUTH = {"Authorization": "Bearer test-token"}
FULL_MOBILE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the API of the running bot (no network)."""
    transport = httpx.ASGITransport(app=create_api(bot))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _api_routes(bot: BotApp) -> list[tuple[str, str]]:
    """(method, path) of every /api route in the OpenAPI schema, path parameters set to 1."""
    out = []
    for path, operations in create_api(bot).openapi()["paths"].items():
        if path.startswith("/api"):
            filled = re.sub(r"\{[^}]+\}", "1", path)
            out.extend((method.upper(), filled) for method in sorted(operations))
    return out


def _shape(node: dict[str, Any]) -> tuple[Any, ...]:
    """A node of /api/chain reduced to what the test compares."""
    return (node["name"], node["tier"], node["kind"], node["commanders"],
            [(g["title"], g["room_id"], g["transport"]) for g in node["groups"]],
            [_shape(child) for child in node["children"]])


async def _node_ids(client: httpx.AsyncClient) -> dict[str, int]:
    """Node name -> id, read from /api/chain."""
    ids: dict[str, int] = {}

    def walk(node: dict[str, Any]) -> None:
        ids[node["name"]] = node["id"]
        for child in node["children"]:
            walk(child)

    response = await client.get("/api/chain", headers=AUTH)
    assert response.status_code == 200
    for root in response.json()["items"]:
        walk(root)
    return ids


async def test_health_needs_no_token_and_reports_the_database(client: httpx.AsyncClient):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_every_api_route_refuses_a_missing_or_wrong_token(bot: BotApp):
    routes = _api_routes(bot)
    assert ("GET", "/api/chain") in routes and ("GET", "/api/tenants") in routes
    for method, path in routes:
        # A fresh API per route: wrong tokens from one address are soon slowed down (429).
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_api(bot)),
                                   base_url="http://t")
        for headers in ({}, {"Authorization": "Bearer wrong-token"},
                        {"Authorization": "Bearer tb_" + "x" * 43},
                        {"Authorization": "Basic dGVzdC10b2tlbg=="}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer", (method, path, headers)
            assert "token" in response.json()["detail"]
        await client.aclose()


def test_every_api_route_takes_the_scope_and_every_list_is_paged(bot: BotApp):
    """A route cannot forget the scope: each /api endpoint must receive it as a parameter
    (the router-level check only authenticates, it filters nothing)."""
    routes = [r for router, _tag in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 6
    # Nothing reaches /api but through these routers.
    assert {"/api" + r.path for r in routes} == {
        p for p in create_api(bot).openapi()["paths"] if p.startswith("/api")}

    def reaches_scope(dependant: Any) -> bool:
        return dependant.call is get_scope or any(reaches_scope(d)
                                                  for d in dependant.dependencies)

    for route in routes:
        # Named dependencies are the endpoint's parameters; the router's have no name.
        named = [d for d in route.dependant.dependencies if d.name is not None]
        assert any(reaches_scope(d) for d in named), f"{route.path} does not take ScopeDep"
        model = route.response_model
        assert get_origin(model) is not list and model is not list, (
            f"{route.path}: a list must be a Page (limit and cursor)")
        if isinstance(model, type) and issubclass(model, Page):
            params = {p.name for p in route.dependant.query_params}
            assert {"limit", "cursor"} <= params, route.path


def test_every_integer_parameter_is_bounded_to_an_id_both_stores_hold(bot: BotApp):
    schema = create_api(bot).openapi()
    seen = 0
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                types = [param["schema"]] + param["schema"].get("anyOf", [])
                for t in types:
                    if t.get("type") == "integer":
                        seen += 1
                        assert "maximum" in t and t["maximum"] <= MAX_ID, (path, param)
                        assert t.get("minimum", -1) >= 1, (path, param)
    assert seen >= 7


async def test_chain_is_the_nested_tree_of_the_demo_chain(client: httpx.AsyncClient,
                                                          chain: DemoChain):
    response = await client.get("/api/chain", headers=AUTH)
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    assert [_shape(root) for root in page["items"]] == [
        ("福田街道", 1, "subdistrict", ["张建国"],
         [("福田街道指挥群", chain.subdistrict_group, "sim")], [
            ("长春社区", 2, "community", ["李卫东"],
             [("长春社区指挥群", chain.community_group, "sim")], [
                ("长春第一作战小组", 3, "team", ["吴海峰"],
                 [("长春第一作战小组群", chain.team_group, "sim")], [
                    ("第一小组房东群", 4, "team_landlords", ["刘芳"],
                     [("第一小组房东群", chain.landlords_group, "sim")], [
                        ("董宝明出租房", 5, "landlord_tenants", ["董宝明"],
                         [("董宝明租客群", chain.tenant_group, "sim")], []),
                        ("应天喜出租房", 5, "landlord_tenants", [],
                         [("应天喜租客群", chain.ying_group, "sim")], []),
                        ("长春专业街一排", 5, "shop_row", ["王强"],
                         [("专业街一排商户群", chain.shop_group, "sim")], []),
                    ]),
                ]),
            ]),
        ]),
    ]


async def test_a_node_by_id_is_its_subtree(client: httpx.AsyncClient, chain: DemoChain):
    ids = await _node_ids(client)
    response = await client.get(f"/api/nodes/{ids['第一小组房东群']}", headers=AUTH)
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["children"]] == [
        "董宝明出租房", "应天喜出租房", "长春专业街一排"]
    assert (await client.get("/api/nodes/99999", headers=AUTH)).status_code == 404


async def test_chain_of_an_empty_store_is_empty(client: httpx.AsyncClient):
    response = await client.get("/api/chain", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_tenants_are_masked(client: httpx.AsyncClient, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    assert chat.replies(chain.tenant_group)[0].startswith("已登记 王* 返回")
    ids = await _node_ids(client)

    response = await client.get("/api/tenants", headers=AUTH)
    assert response.status_code == 200
    assert "13800138000" not in response.text
    assert not FULL_MOBILE.search(response.text)
    [stay] = response.json()["items"]
    assert stay["name"] == "王*"
    assert stay["mobile"] == "138****8000"
    assert stay["origin"] == "湖南长沙"
    assert stay["node_id"] == ids["董宝明出租房"]
    assert stay["under_watch"] is True
    assert stay["fever"] is False
    one = await client.get(f"/api/tenants/{stay['id']}", headers=AUTH)
    assert one.status_code == 200 and one.json() == stay
    assert "13800138000" not in one.text


async def test_tenants_filtered_by_node_subtree(client: httpx.AsyncClient, chat: Chat,
                                                chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    ids = await _node_ids(client)

    async def names_under(node: int) -> list[str]:
        response = await client.get("/api/tenants", params={"node": node}, headers=AUTH)
        assert response.status_code == 200
        return [s["name"] for s in response.json()["items"]]

    assert await names_under(ids["董宝明出租房"]) == ["王*"]
    assert await names_under(ids["福田街道"]) == ["王*"]
    assert await names_under(ids["第一小组房东群"]) == ["王*"]
    assert await names_under(ids["应天喜出租房"]) == []
    assert await names_under(ids["长春专业街一排"]) == []


async def test_tenant_pages_follow_the_cursor_without_loss_or_repeat(
        client: httpx.AsyncClient, chat: Chat, chain: DemoChain):
    names = ["王明", "潘一", "潘二", "潘三", "潘四"]
    for i, name in enumerate(names):
        await chat.say(chain.tenant_group, chain.landlord,
                       f"租客返回 {name} 1380013800{i} 来自湖南长沙")
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    while True:
        params: dict[str, int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/tenants", params=params, headers=AUTH)).json()
        pages += 1
        assert len(page["items"]) <= 2
        seen.extend(s["id"] for s in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen)
    whole = (await client.get("/api/tenants", headers=AUTH)).json()
    assert [s["id"] for s in whole["items"]] == seen and whole["next_cursor"] is None


async def test_tenants_of_an_unknown_node_is_404(client: httpx.AsyncClient, chain: DemoChain):
    response = await client.get("/api/tenants", params={"node": 99999}, headers=AUTH)
    assert response.status_code == 404
    assert "99999" in response.json()["detail"]
    # The largest id a store can hold is an id like any other: unknown, 404.
    response = await client.get("/api/tenants", params={"node": MAX_ID}, headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize("value", ["福田街道", "9223372036854775808", "9223372036854775807",
                                   "2147483648", "0", "-1", "1.5", "1e3",
                                   "99999999999999999999999999", "0x10",
                                   # an id with more than digits (schemathesis: 3%0B was a 200)
                                   "3\x0b", " 3", "3 ", "3_0", "+3", "３"])
async def test_malformed_and_out_of_range_ids_are_422(client: httpx.AsyncClient,
                                                      chain: DemoChain, value: str):
    response = await client.get("/api/tenants", params={"node": value}, headers=AUTH)
    assert response.status_code == 422, value
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "node"]
    for path in (f"/api/nodes/{quote(value)}", f"/api/tenants/{quote(value)}"):
        response = await client.get(path, headers=AUTH)
        assert response.status_code == 422, path
    for path in ("/api/chain", "/api/tenants", "/api/accounts"):
        response = await client.get(path, params={"cursor": value}, headers=AUTH)
        assert response.status_code == 422, (path, value)


@pytest.mark.parametrize("limit", ["0", "501", "-3", "x", "9223372036854775808"])
async def test_a_limit_out_of_range_is_422(client: httpx.AsyncClient, limit: str):
    for path in ("/api/chain", "/api/tenants", "/api/accounts"):
        response = await client.get(path, params={"limit": limit}, headers=AUTH)
        assert response.status_code == 422, (path, limit)


async def test_docs_need_a_token(client: httpx.AsyncClient):
    for path in ("/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers={"Authorization": "Bearer no"})
                ).status_code == 401, path
        assert (await client.get(path, headers=AUTH)).status_code == 200, path
    assert "/api/chain" in (await client.get("/openapi.json", headers=AUTH)).json()["paths"]
    assert (await client.get("/redoc", headers=AUTH)).status_code == 404


async def test_docs_are_public_when_configured(settings: Settings, clock: FakeClock):
    public = settings.model_copy(update={"api": settings.api.model_copy(
        update={"public_docs": True, "token": ""})})
    app = build_app(public, transport=MemoryTransport("sim"), clock=clock)
    async with running(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_api(app)), base_url="http://t") as c:
        assert (await c.get("/openapi.json")).status_code == 200
        assert (await c.get("/docs")).status_code == 200
        # The API itself is no more public for it.
        assert (await c.get("/api/chain")).status_code == 401


def test_the_shared_token_still_works_as_a_superuser_and_is_warned_about(
        bot: BotApp, caplog: pytest.LogCaptureFixture):
    with caplog.at_level("WARNING", logger="bot.api.app"):
        create_api(bot)
    assert "api.token is deprecated" in caplog.text
    assert "test-token" not in caplog.text


async def test_without_the_shared_token_nothing_is_warned(
        settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture):
    app = build_app(settings.model_copy(update={"api": settings.api.model_copy(
        update={"token": ""})}), transport=MemoryTransport("sim"), clock=clock)
    async with running(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_api(app)), base_url="http://t") as c:
        # An empty shared token matches nothing, not even an empty header.
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer  "}):
            assert (await c.get("/api/chain", headers=headers)).status_code == 401
    assert "deprecated" not in caplog.text


async def test_pages_hold_each_tenants_latest_stay_as_the_unpaged_list_does(
        bot: BotApp, client: httpx.AsyncClient, chain: DemoChain):
    from datetime import timedelta

    from sqlalchemy import select

    from bot.services import people, tenant
    from models import Node, TenantStay

    now = bot.now()
    async with bot.session() as s, s.begin():
        nodes = {n.name: n.id for n in (await s.execute(select(Node))).scalars()}
        dong, ying = nodes["董宝明出租房"], nodes["应天喜出租房"]
        plan = [  # tenant index, node, days before now, ended
            (0, dong, 3, False), (0, dong, 1, False), (0, ying, 2, False),
            (1, dong, 5, False), (1, dong, 0, True),
            (2, ying, 1, False), (2, ying, 1, False),   # same arrival: the higher id wins
            (3, dong, 9, False),
        ]
        tenants = [await people.create_person(s, name=f"租客{i}", now=now) for i in range(4)]
        for i, node, days, ended in plan:
            s.add(TenantStay(tenant_id=tenants[i].id, node_id=node, arrived_at=now - timedelta(
                days=days), watch_until=now + timedelta(days=14 - days), created_at=now,
                ended_at=now if ended else None))
        await s.flush()
        for within in ([dong], [ying], [dong, ying]):
            whole = sorted(r.stay.id for r in await tenant.list_tenants(s, node_ids=within))
            for size in (1, 2, 3, 10):
                paged_ids: list[int] = []
                after = None
                while True:
                    rows = await tenant.page_tenants(s, node_ids=within, after_id=after,
                                                     limit=size)
                    paged_ids.extend(r.stay.id for r in rows)
                    if len(rows) < size:
                        break
                    after = rows[-1].stay.id
                assert paged_ids == whole, (within, size)
    listed = (await client.get("/api/tenants", params={"limit": 2}, headers=AUTH)).json()
    assert len(listed["items"]) == 2 and listed["next_cursor"] == listed["items"][1]["id"]
    names = [t["name"] for t in (await client.get("/api/tenants", headers=AUTH)).json()["items"]]
    assert names == ["租**"] * 4
