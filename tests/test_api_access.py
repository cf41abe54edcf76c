"""Who sees what through the API: per-person tokens scoped to their subtrees, the authorisation
matrix over every /api route, expired and revoked tokens, last use, and slowed-down guessing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from bot.api import create_api
from bot.app import BotApp
from bot.clock import FakeClock
from bot.services import ack, people
from bot.services import chain as chains
from bot.services import notice as notices
from bot.services import token as tokens
from models import ApiToken, Membership, Node, NodeKind, Person, Role, TenantStay
from schedules.jobs import close_points_week
from tests.conftest import DemoChain

KINDS = [NodeKind.SUBDISTRICT, NodeKind.COMMUNITY, NodeKind.TEAM, NodeKind.TEAM_LANDLORDS,
         NodeKind.LANDLORD_TENANTS]


@dataclass
class World:
    """The demo chain and sibling branches at every tier, each ending in a landlord's node
    with a landlord and a tenant's stay; tokens of people at tiers 1-5, a superuser, a tenant."""

    nodes: dict[str, int] = field(default_factory=dict)
    # node name -> names of the node and its ancestors (worked out here, not by the code
    # under test)
    path: dict[str, list[str]] = field(default_factory=dict)
    stays: dict[str, int] = field(default_factory=dict)          # leaf name -> stay id
    landlords: dict[str, str] = field(default_factory=dict)      # leaf name -> landlord
    tokens: dict[str, str] = field(default_factory=dict)         # who -> secret
    roots: dict[str, str | None] = field(default_factory=dict)   # who -> node they head

    def sees(self, who: str, node: str) -> bool:
        root = self.roots[who]
        return root == "*" or (root is not None and root in self.path[node])


async def _build(bot: BotApp) -> World:
    w = World()
    now = bot.now()
    async with bot.session() as s, s.begin():
        for node in (await s.execute(select(Node).order_by(Node.id))).scalars():
            w.nodes[node.name] = node.id
            parent = next((n for n, i in w.nodes.items() if i == node.parent_id), None)
            w.path[node.name] = [node.name] + (w.path[parent] if parent else [])

        async def branch(prefix: str, parent: str | None) -> str:
            """Nodes from below `parent` down to a landlord's node; returns the leaf."""
            tier = len(w.path[parent]) + 1 if parent else 1
            above = await s.get(Node, w.nodes[parent]) if parent else None
            name = parent
            for kind in KINDS[tier - 1:]:
                name = f"{prefix}-{kind.value}"
                node = await chains.create_node(s, name=name, kind=kind, parent=above, now=now)
                w.nodes[name] = node.id
                w.path[name] = [name] + (w.path[above.name] if above else [])
                above = node
            assert name is not None
            return name

        leaves = ["董宝明出租房", "应天喜出租房"]
        leaves.append(await branch("B", None))                    # another subdistrict
        leaves.append(await branch("A2x", "福田街道"))            # another community
        leaves.append(await branch("A3x", "长春社区"))            # another team
        leaves.append(await branch("A4x", "长春第一作战小组"))    # another landlords group

        for i, leaf in enumerate(leaves):
            if leaf == "董宝明出租房":
                landlord = (await s.execute(
                    select(Person).where(Person.name == "董宝明"))).scalar_one()
            else:
                landlord = await people.create_person(s, name=f"房东{i}", now=now)
                await people.grant_role(s, person_id=landlord.id, node_id=w.nodes[leaf],
                                        role=Role.LANDLORD, now=now)
            w.landlords[leaf] = landlord.name
            tenant = await people.create_person(s, name=f"租客{i}", now=now,
                                                mobile=f"1390000000{i}")
            stay = TenantStay(tenant_id=tenant.id, landlord_id=landlord.id,
                              node_id=w.nodes[leaf], origin="湖北", arrived_at=now,
                              watch_until=now + timedelta(days=14), created_at=now)
            s.add(stay)
            await s.flush()
            w.stays[leaf] = stay.id

        async def person(name: str) -> Person:
            return (await s.execute(select(Person).where(Person.name == name))).scalar_one()

        tier4 = await people.create_person(s, name="孙组员", now=now)
        await people.grant_role(s, person_id=tier4.id, node_id=w.nodes["第一小组房东群"],
                                role=Role.MEMBER, now=now)
        operator = await people.create_person(s, name="运维", now=now)
        holders = {"tier1": ("张建国", "福田街道"), "tier2": ("李卫东", "长春社区"),
                   "tier3": ("吴海峰", "长春第一作战小组"), "tier4": ("孙组员", "第一小组房东群"),
                   "tier5": ("董宝明", "董宝明出租房"), "secretary": ("陈秀英", "长春社区"),
                   "tenant": ("潘先生", None)}
        for who, (name, root) in holders.items():
            _, secret = await tokens.create_token(s, person=await person(name), superuser=False,
                                                  days=30, label=who, now=now)
            w.tokens[who], w.roots[who] = secret, root
        _, w.tokens["superuser"] = await tokens.create_token(
            s, person=operator, superuser=True, days=30, label="ops", now=now)
        w.roots["superuser"] = "*"
    return w


@pytest.fixture
async def world(bot: BotApp, chain: DemoChain) -> World:
    """The demo chain with sibling branches, stays, landlords and tokens."""
    return await _build(bot)


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the API of the running bot."""
    transport = httpx.ASGITransport(app=create_api(bot))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _tree_names(items: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        out.add(node["name"])
        for child in node["children"]:
            walk(child)

    for item in items:
        walk(item)
    return out


async def _all(client: httpx.AsyncClient, path: str, headers: dict[str, str],
               **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list, following the cursor with small pages."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page_params = params | {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=page_params, headers=headers)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_authorisation_matrix(bot: BotApp, clock: FakeClock, world: World,
                                    client: httpx.AsyncClient):
    """Every token reads every object of every route: only its own subtree's succeed (404
    otherwise, like an id that does not exist), and its lists hold only its own."""
    # A closed week with a standing for each landlord, in two ranking scopes.
    clock.advance(timedelta(days=3, hours=-1))
    assert await close_points_week(bot) > 0
    covered: set[str] = set()
    leaves = list(world.stays)
    for who, secret in world.tokens.items():
        h = _auth(secret)
        # GET /api/nodes/{id}: each node of the chain.
        covered.add("/api/nodes/{node_id}")
        for name, node_id in world.nodes.items():
            response = await client.get(f"/api/nodes/{node_id}", headers=h)
            expected = 200 if world.sees(who, name) else 404
            assert response.status_code == expected, (who, name, response.text)
            if expected == 404:
                assert name not in response.text
        # GET /api/chain: exactly the visible nodes, in trees.
        covered.add("/api/chain")
        visible = {n for n in world.nodes if world.sees(who, n)}
        assert _tree_names(await _all(client, "/api/chain", h)) == visible, who
        # GET /api/tenants/{id}, /api/tenants?node=, /api/tenants.
        covered |= {"/api/tenants/{stay_id}", "/api/tenants"}
        for leaf in leaves:
            ok = world.sees(who, leaf)
            response = await client.get(f"/api/tenants/{world.stays[leaf]}", headers=h)
            assert response.status_code == (200 if ok else 404), (who, leaf)
            response = await client.get("/api/tenants", params={"node": world.nodes[leaf]},
                                        headers=h)
            assert response.status_code == (200 if ok else 404), (who, leaf)
            if ok:
                assert [s["id"] for s in response.json()["items"]] == [world.stays[leaf]]
        listed = {s["id"] for s in await _all(client, "/api/tenants", h)}
        assert listed == {world.stays[leaf] for leaf in leaves if world.sees(who, leaf)}, who
        # GET /api/points/weeks/{week}: only the visible landlords' standings.
        covered.add("/api/points/weeks/{week}")
        response = await client.get("/api/points/weeks/2020-W08", headers=h)
        assert response.status_code == 200, (who, response.text)
        shown = {s["landlord"] for scope in response.json()["scopes"]
                 for s in scope["standings"] + scope["red"] + scope["black"]}
        assert shown == {world.landlords[leaf] for leaf in leaves if world.sees(who, leaf)}, who
        # GET /api/stats?node=: a subtree's figures, only for nodes the token sees.
        covered.add("/api/stats")
        for name, node_id in world.nodes.items():
            response = await client.get("/api/stats", params={"node": node_id}, headers=h)
            expected = 200 if world.sees(who, name) else 404
            assert response.status_code == expected, (who, name, response.text)
            if expected == 404:
                assert name not in response.text
        # GET /api/accounts: the bot accounts serve everyone: operators only.
        covered.add("/api/accounts")
        response = await client.get("/api/accounts", headers=h)
        assert response.status_code == (200 if who == "superuser" else 403), who
    # The matrix went over every /api route there is.
    assert covered == {p for p in create_api(bot).openapi()["paths"] if p.startswith("/api")}
    # Sanity of the world itself: each tier's person sees some but not all.
    for who in ("tier1", "tier2", "tier3", "tier4", "tier5"):
        seen = [leaf for leaf in leaves if world.sees(who, leaf)]
        assert 0 < len(seen) < len(leaves), who
    assert not any(world.sees("tenant", n) for n in world.nodes)


async def test_the_scope_follows_the_roles_at_once(bot: BotApp, world: World,
                                                   client: httpx.AsyncClient):
    h = _auth(world.tokens["tier2"])
    stay = world.stays["董宝明出租房"]
    assert (await client.get(f"/api/tenants/{stay}", headers=h)).status_code == 200
    async with bot.session() as s, s.begin():
        person = (await s.execute(select(Person).where(Person.name == "李卫东"))).scalar_one()
        await s.execute(Membership.__table__.delete().where(Membership.person_id == person.id))
    assert (await client.get(f"/api/tenants/{stay}", headers=h)).status_code == 404
    assert (await client.get("/api/chain", headers=h)).json()["items"] == []


async def test_expired_and_revoked_tokens_get_401(bot: BotApp, clock: FakeClock, world: World,
                                                  client: httpx.AsyncClient):
    async with bot.session() as s, s.begin():
        zhang = (await s.execute(select(Person).where(Person.name == "张建国"))).scalar_one()
        short, short_secret = await tokens.create_token(s, person=zhang, superuser=True, days=1,
                                                        label="short", now=bot.now())
    h = _auth(short_secret)
    assert (await client.get("/api/chain", headers=h)).status_code == 200
    clock.advance(timedelta(days=1, seconds=-1))
    assert (await client.get("/api/chain", headers=h)).status_code == 200
    clock.advance(timedelta(seconds=1))
    for path in ("/api/chain", "/api/tenants", "/api/accounts", "/openapi.json"):
        response = await client.get(path, headers=h)
        assert response.status_code == 401, path
        assert response.json()["detail"] == "token expired"
        assert response.headers["www-authenticate"] == "Bearer"

    h = _auth(world.tokens["tier1"])
    assert (await client.get("/api/chain", headers=h)).status_code == 200
    async with bot.session() as s, s.begin():
        [mine] = [t for t, _ in await tokens.list_tokens(s) if t.label == "tier1"]
        assert await tokens.revoke_token(s, token_id=mine.id, now=bot.now()) is mine
    for path in ("/api/chain", f"/api/nodes/{world.nodes['福田街道']}", "/docs"):
        response = await client.get(path, headers=h)
        assert response.status_code == 401, path
        assert response.json()["detail"] == "token revoked"
    # Others' tokens are untouched.
    assert (await client.get("/api/chain", headers=_auth(world.tokens["tier2"]))
            ).status_code == 200


async def test_each_use_is_recorded_and_the_token_is_stored_only_hashed(
        bot: BotApp, clock: FakeClock, world: World, client: httpx.AsyncClient):
    secret = world.tokens["tier3"]
    assert re.fullmatch(r"tb_[A-Za-z0-9_-]{43}", secret)

    async def last_used() -> Any:
        async with bot.session() as s:
            return (await s.execute(select(ApiToken.last_used_at)
                                    .where(ApiToken.label == "tier3"))).scalar_one()

    assert await last_used() is None
    assert (await client.get("/api/chain", headers=_auth(secret))).status_code == 200
    assert await last_used() == clock.now()
    clock.advance(timedelta(minutes=5))
    # A refused read (another subtree: 404) is a use all the same.
    other = world.stays["B-landlord_tenants"]
    assert (await client.get(f"/api/tenants/{other}", headers=_auth(secret))).status_code == 404
    assert await last_used() == clock.now()
    # Nothing in the store holds the secret; its SHA-256 is what is kept.
    async with bot.session() as s:
        rows = (await s.execute(text("SELECT * FROM api_token"))).all()
    assert secret not in repr(rows)
    assert hashlib.sha256(secret.encode()).hexdigest() in repr(rows)


async def test_wrong_tokens_from_one_address_are_slowed_down(bot: BotApp, clock: FakeClock,
                                                             world: World):
    api = create_api(bot)

    def client_from(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=api, client=(address, 1)),
                                 base_url="http://t")

    free = bot.settings.api.failures_before_delay
    good = _auth(world.tokens["tier1"])
    async with client_from("10.0.0.1") as guesser, client_from("10.0.0.2") as bystander:
        for i in range(free):
            response = await guesser.get("/api/chain", headers=_auth(f"tb_guess{i}"))
            assert response.status_code == 401, i
        # Free tries used up: the next wrong one is refused and then waits 1 s, 2 s, 4 s …
        for delay in (1, 2, 4, 8):
            assert (await guesser.get("/api/chain", headers=_auth("tb_again"))
                    ).status_code == 401
            response = await guesser.get("/api/chain", headers=_auth("tb_again"))
            assert response.status_code == 429
            assert response.headers["retry-after"] == str(delay)
            # While waiting, even a good token is not looked at.
            assert (await guesser.get("/api/chain", headers=good)).status_code == 429
            # Another address is not held up.
            assert (await bystander.get("/api/chain", headers=good)).status_code == 200
            clock.advance(timedelta(seconds=delay - 0.5))
            assert (await guesser.get("/api/chain", headers=good)).status_code == 429
            clock.advance(timedelta(seconds=0.5))
        # The wait over, a good token passes and the address starts afresh.
        assert (await guesser.get("/api/chain", headers=good)).status_code == 200
        for i in range(free):
            assert (await guesser.get("/api/chain", headers=_auth(f"tb_x{i}"))
                    ).status_code == 401
        assert (await guesser.get("/api/chain", headers=_auth("tb_y"))).status_code == 401
        assert (await guesser.get("/api/chain", headers=good)).status_code == 429


def test_the_throttle_is_bounded_and_capped():
    from datetime import UTC, datetime

    from bot.api.deps import FailureThrottle

    now = datetime(2020, 2, 21, tzinfo=UTC)
    throttle = FailureThrottle(free=1, max_delay=60, capacity=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", now)
    assert len(throttle._state) == 100
    for _ in range(50):
        throttle.failed("10.9.9.9", now)
    assert throttle.retry_after("10.9.9.9", now) == 60
    # An hour without failures forgets the address.
    assert throttle.retry_after("10.9.9.9", now + timedelta(hours=1, seconds=1)) == 0


async def test_the_ack_links_are_public_but_signed(bot: BotApp, world: World,
                                                   client: httpx.AsyncClient):
    """/ack/{token} (issue 15) needs no API token and takes none into account: a link we
    signed works with any Authorization or none, and every forgery is refused to everyone,
    the superuser included."""
    async with bot.session() as s, s.begin():
        origin = (await s.execute(select(Node).where(Node.name == "福田街道"))).scalar_one()
        notice, rows = await notices.create(
            s, origin=origin, origin_group_id=None, sender_id=None, text="今晚8点开视频会",
            urgent=False, scope=notices.Scope(down_to_tier=2), now=bot.now())
        group_id = (await s.execute(text(
            "SELECT group_id FROM outbox_message WHERE notice_id = :n ORDER BY id LIMIT 1"),
            {"n": notice.id})).scalar_one()
    assert rows >= 1
    token = ack.sign(notice_id=notice.id, group_id=group_id,
                     expires=bot.now() + timedelta(days=1))
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    everyone = [{}, {"Authorization": "Bearer not-a-token"}] + [
        _auth(secret) for secret in world.tokens.values()]
    for headers in everyone:
        assert (await client.get(f"/ack/{token}", headers=headers)).status_code == 200
        for method in (client.get, client.post):
            refused = await method(f"/ack/{forged}", headers=headers)
            assert refused.status_code == 403 and "链接无效" in refused.text, headers
    # Acknowledged once, whoever posts it how often.
    for headers in everyone:
        assert (await client.post(f"/ack/{token}", headers=headers)).status_code == 200
    async with bot.session() as s:
        acked = (await s.execute(text(
            "SELECT count(*) FROM outbox_message WHERE acked_at IS NOT NULL"))).scalar_one()
    assert acked == 1
