"""schemathesis against the OpenAPI of a live API (uvicorn on a loopback port, its own event
loop in a thread) with a valid token: no 5xx, every response as the schema documents it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from bot.api import create_api
from bot.app import build_app, running
from bot.cli import _ApiServer
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.transports.memory import MemoryTransport
from schedules.jobs import close_points_week
from tests.test_api_access import World, _build

EXAMPLES = 30


@pytest.fixture
def live_api(settings: Settings, clock: FakeClock) -> Iterator[tuple[str, World]]:
    """The API of a bot with the access test's world (a closed week included), served."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        async def go() -> None:
            transport = MemoryTransport("sim", bot_id="sim-bot")
            transport._now = clock.now
            app = build_app(settings, transport=transport, clock=clock)
            async with running(app):
                await load_demo_chain(app)
                state["world"] = await _build(app)
                clock.advance(timedelta(days=3, hours=-1))
                await close_points_week(app)
                server = _ApiServer(uvicorn.Config(create_api(app), host="127.0.0.1", port=0,
                                                   log_config=None, lifespan="off"))
                state["server"] = server
                serving = asyncio.create_task(server.serve())
                while not server.started and not serving.done():
                    await asyncio.sleep(0.01)
                state["port"] = server.servers[0].sockets[0].getsockname()[1]
                ready.set()
                await serving

        try:
            asyncio.run(go())
        finally:
            ready.set()

    thread = threading.Thread(target=serve, name="live-api", daemon=True)
    thread.start()
    assert ready.wait(120) and "port" in state, "the API did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}", state["world"]
    finally:
        if "server" in state:
            state["server"].should_exit = True
        thread.join(60)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid-input", "invalid-input"])
def test_the_api_keeps_its_schema(live_api: tuple[str, World], mode: GenerationMode) -> None:
    """Every operation of the served schema, with generated input: no 5xx, each response as
    documented (status, content type, headers, body), invalid input refused, the token
    enforced. (schemathesis' own pytest loader does not run on pytest 9: so by hand.)"""
    url, world = live_api
    auth = {"Authorization": f"Bearer {world.tokens['superuser']}"}
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"HTTPBearer": {"bearer": world.tokens["superuser"]}}}})
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=auth, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/chain", "/api/tenants", "/api/accounts",
                                              "/api/nodes/{node_id}", "/api/tenants/{stay_id}",
                                              "/api/points/weeks/{week}"}
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue   # /health: nothing to send wrong
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call_and_validate(base_url=url)
            statuses.setdefault(case.operation.path, set()).add(response.status_code)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path}") from exc
    # The token was used: with valid input nothing came back 401, and the lists were read
    # (invalid input includes a spoilt Authorization header: 401 is right there).
    if mode == GenerationMode.POSITIVE:
        assert all(401 not in seen for seen in statuses.values()), statuses
        for path in ("/api/chain", "/api/tenants", "/api/accounts", "/health"):
            assert 200 in statuses[path], (path, statuses[path])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid-input", "invalid-input"])
def test_the_ack_links_keep_their_schema(live_api: tuple[str, World], mode: GenerationMode
                                         ) -> None:
    """The public, signed acknowledgement routes (issue 15) on their own: generated tokens are
    refused as documented (403 HTML with the reason, 422 past the length limit), never a 5xx,
    never an acknowledgement; no API token is sent, none is needed to be refused."""
    url, world = live_api
    auth = {"Authorization": f"Bearer {world.tokens['superuser']}"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()
                  if result.ok().path.startswith("/ack/")]
    assert {(op.method.upper(), op.path) for op in operations} == {
        ("GET", "/ack/{token}"), ("POST", "/ack/{token}")}
    seen: set[int] = set()
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call_and_validate(base_url=url)
            assert response.status_code in (403, 404, 422), response.text
            seen.add(response.status_code)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path}") from exc
    assert seen
