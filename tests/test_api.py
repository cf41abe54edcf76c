"""The admin API (bot/api): health, the bearer token, the chain tree and the masked tenants."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.api import create_api
from bot.app import BotApp
from tests.conftest import Chat, DemoChain

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
    for root in response.json():
        walk(root)
    return ids


async def test_health_needs_no_token_and_reports_the_database(client: httpx.AsyncClient):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_every_api_route_refuses_a_missing_or_wrong_token(
        bot: BotApp, client: httpx.AsyncClient):
    routes = _api_routes(bot)
    assert ("GET", "/api/chain") in routes and ("GET", "/api/tenants") in routes
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong-token"},
                        {"Authorization": "Basic dGVzdC10b2tlbg=="}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer", (method, path, headers)
            assert "token" in response.json()["detail"]


async def test_chain_is_the_nested_tree_of_the_demo_chain(client: httpx.AsyncClient,
                                                          chain: DemoChain):
    response = await client.get("/api/chain", headers=AUTH)
    assert response.status_code == 200
    tree = response.json()
    assert [_shape(root) for root in tree] == [
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


async def test_chain_of_an_empty_store_is_empty(client: httpx.AsyncClient):
    response = await client.get("/api/chain", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == []


async def test_tenants_are_masked(client: httpx.AsyncClient, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    assert chat.replies(chain.tenant_group)[0].startswith("已登记 王* 返回")
    ids = await _node_ids(client)

    response = await client.get("/api/tenants", headers=AUTH)
    assert response.status_code == 200
    assert "13800138000" not in response.text
    assert not FULL_MOBILE.search(response.text)
    [stay] = response.json()
    assert stay["name"] == "王*"
    assert stay["mobile"] == "138****8000"
    assert stay["origin"] == "湖南长沙"
    assert stay["node_id"] == ids["董宝明出租房"]
    assert stay["under_watch"] is True
    assert stay["fever"] is False


async def test_tenants_filtered_by_node_subtree(client: httpx.AsyncClient, chat: Chat,
                                                chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    ids = await _node_ids(client)

    async def names_under(node: int) -> list[str]:
        response = await client.get("/api/tenants", params={"node": node}, headers=AUTH)
        assert response.status_code == 200
        return [s["name"] for s in response.json()]

    assert await names_under(ids["董宝明出租房"]) == ["王*"]
    assert await names_under(ids["福田街道"]) == ["王*"]
    assert await names_under(ids["第一小组房东群"]) == ["王*"]
    assert await names_under(ids["应天喜出租房"]) == []
    assert await names_under(ids["长春专业街一排"]) == []


async def test_tenants_of_an_unknown_node_is_404(client: httpx.AsyncClient, chain: DemoChain):
    response = await client.get("/api/tenants", params={"node": 99999}, headers=AUTH)
    assert response.status_code == 404
    assert "99999" in response.json()["detail"]


async def test_tenants_of_a_non_integer_node_is_422(client: httpx.AsyncClient,
                                                   chain: DemoChain):
    response = await client.get("/api/tenants", params={"node": "福田街道"}, headers=AUTH)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "node"]
