"""Logging in to the console: passwords, lockout, sessions that expire and end, CSRF on every
POST, and one-time set-up links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import BotApp
from bot.clock import FakeClock
from bot.services import console as logins
from models import ConsoleInvite, ConsoleLogin, ConsoleSession, Person
from tests.conftest import DemoChain
from tests.web.conftest import PASSWORD, Browser


async def test_a_page_without_a_session_sends_to_the_login_page(browser: Browser):
    response = await browser.get("/console/")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/"


async def test_login_opens_the_overview_and_the_cookie_is_httponly_and_lax(
        browser: Browser, people: dict[str, int]):
    response = await browser.login("tier2")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    cookie = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith("tb_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    page = await browser.get("/console/")
    assert page.status_code == 200
    assert "长春社区" in page.text


async def test_the_cookie_is_secure_when_configured(bot: BotApp, browser: Browser,
                                                    people: dict[str, int]):
    bot.settings.console.secure_cookie = True
    response = await browser.login("tier2")
    cookie = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith("tb_console="))
    assert "Secure" in cookie


async def test_the_session_id_is_kept_only_hashed(bot: BotApp, browser: Browser,
                                                  people: dict[str, int]):
    await browser.login("tier2")
    signed = browser.client.cookies["tb_console"]
    sid = signed.rpartition(".")[0]
    async with bot.session() as s:
        rows = list((await s.execute(select(ConsoleSession))).scalars())
    assert [r.sid_hash for r in rows] == [logins.digest(sid)]
    assert sid not in {r.sid_hash for r in rows}


@pytest.mark.parametrize("username,password", [
    ("tier2", "wrong password!"), ("nobody", PASSWORD), ("tier2", ""), ("TIER2", PASSWORD)])
async def test_a_wrong_name_or_password_is_refused_alike(browser: Browser,
                                                         people: dict[str, int],
                                                         username: str, password: str):
    response = await browser.login(username, password)
    assert response.status_code in (401, 422)
    assert "tb_console" not in browser.client.cookies
    assert (await browser.get("/console/")).status_code == 303


async def test_a_forged_cookie_is_not_a_session(bot: BotApp, browser: Browser,
                                                people: dict[str, int]):
    await browser.login("tier2")
    signed = browser.client.cookies["tb_console"]
    sid, _, mac = signed.rpartition(".")
    browser.client.cookies.clear()
    # The right id with a wrong signature, and a signed id that is no session.
    for value in (f"{sid}.{mac[:-2]}AA", f"{sid[:-1]}x.{mac}", sid):
        browser.client.cookies.set("tb_console", value, domain="console.test",
                                   path="/console")
        assert (await browser.get("/console/")).status_code == 303


async def test_lockout_after_repeated_failures_even_for_the_right_password(
        bot: BotApp, clock: FakeClock, browser: Browser, people: dict[str, int]):
    limit = bot.settings.console.max_failures
    for _ in range(limit):
        assert (await browser.login("tier2", "wrong password!")).status_code == 401
    locked = await browser.login("tier2")
    assert locked.status_code == 429
    assert "尝试次数过多" in locked.text
    clock.advance(timedelta(minutes=bot.settings.console.lockout_minutes) + timedelta(seconds=1))
    assert (await browser.login("tier2")).status_code == 303


async def test_lockout_per_address_spans_login_names(bot: BotApp, browser: Browser,
                                                     people: dict[str, int]):
    # One address guessing a different name each time is stopped as well.
    for i in range(bot.settings.console.max_failures):
        await browser.login(f"guess{i}", "wrong password!")
    assert (await browser.login("tier3")).status_code == 429


async def test_a_locked_name_is_locked_from_another_address_too(
        bot: BotApp, browsers, people: dict[str, int]):
    import httpx

    from bot.api import create_api

    api = create_api(bot)
    for i in range(bot.settings.console.max_failures):
        transport = httpx.ASGITransport(app=api, client=(f"10.0.0.{i + 1}", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            b = Browser(c)
            assert (await b.login("tier2", "wrong password!")).status_code == 401
    transport = httpx.ASGITransport(app=api, client=("10.0.1.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        assert (await Browser(c).login("tier2")).status_code == 429
        # Another name from that fresh address still logs in.
        assert (await Browser(c).login("tier3")).status_code == 303


async def test_the_session_ends_after_idle_time(bot: BotApp, clock: FakeClock,
                                                browser: Browser, people: dict[str, int]):
    await browser.login("tier2")
    idle = timedelta(minutes=bot.settings.console.idle_minutes)
    clock.advance(idle - timedelta(seconds=1))
    assert (await browser.get("/console/")).status_code == 200
    clock.advance(idle - timedelta(seconds=1))  # active: the idle time starts again
    assert (await browser.get("/console/")).status_code == 200
    clock.advance(idle)
    assert (await browser.get("/console/")).status_code == 303


async def test_the_session_ends_at_its_absolute_limit_however_active(
        bot: BotApp, clock: FakeClock, browser: Browser, people: dict[str, int]):
    await browser.login("tier2")
    step = timedelta(minutes=bot.settings.console.idle_minutes) / 2
    limit = timedelta(hours=bot.settings.console.absolute_hours)
    passed = timedelta(0)
    while passed + step < limit:
        clock.advance(step)
        passed += step
        assert (await browser.get("/console/")).status_code == 200
    clock.advance(limit - passed)
    assert (await browser.get("/console/")).status_code == 303


async def test_logout_ends_the_session_even_for_a_copied_cookie(
        browser: Browser, browsers, people: dict[str, int]):
    await browser.login("tier2")
    stolen = browser.client.cookies["tb_console"]
    await browser.get("/console/")
    out = await browser.post("/console/logout")
    assert out.status_code == 303 and out.headers["location"] == "/console/login?out=1"
    other: Browser = browsers()
    other.client.cookies.set("tb_console", stolen, domain="console.test", path="/console")
    assert (await other.get("/console/")).status_code == 303


@pytest.mark.parametrize("token", ["", "wrong-token"])
async def test_a_post_without_the_right_csrf_token_is_refused(browser: Browser,
                                                              people: dict[str, int],
                                                              token: str):
    await browser.login("tier2")
    await browser.get("/console/")
    refused = await browser.post("/console/logout", csrf=token)
    assert refused.status_code == 403
    assert (await browser.get("/console/")).status_code == 200  # still logged in


async def test_the_csrf_token_of_another_session_is_refused(browser: Browser, browsers,
                                                            people: dict[str, int]):
    other: Browser = browsers()
    await other.login("tier3")
    await other.get("/console/")
    await browser.login("tier2")
    assert (await browser.post("/console/logout", csrf=other.csrf)).status_code == 403


async def test_htmx_requests_carry_the_token_in_a_header(browser: Browser,
                                                         people: dict[str, int]):
    await browser.login("tier2")
    page = await browser.get("/console/")
    assert f'"X-CSRF-Token": "{browser.csrf}"' in page.text
    out = await browser.client.post("/console/logout", headers={"X-CSRF-Token": browser.csrf,
                                                                "HX-Request": "true"})
    assert out.status_code == 303


async def test_the_login_form_itself_needs_its_token(browser: Browser, people: dict[str, int]):
    await browser.get("/console/login")
    forged = await browser.post("/console/login", {"username": "tier2", "password": PASSWORD},
                                csrf="forged")
    assert forged.status_code == 403
    assert "tb_console" not in browser.client.cookies


async def test_next_never_leaves_the_console(browser: Browser, people: dict[str, int]):
    await browser.get("/console/login")
    for target in ("https://evil.example/", "//evil.example/", "/console//evil.example",
                   "/api/chain"):
        browser.client.cookies.delete("tb_console")
        response = await browser.post("/console/login", {
            "username": "tier2", "password": PASSWORD, "next": target})
        assert response.headers["location"] == "/console/"


async def _invite(bot: BotApp, name: str, *, hours: float = 48) -> str:
    async with bot.session() as s, s.begin():
        person = (await s.execute(select(Person).where(Person.name == name))).scalar_one()
        login = await logins.create_login(s, username=f"p{person.id}", person_id=person.id,
                                          superuser=False, now=bot.now())
        return await logins.issue_invite(s, login=login, hours=hours, now=bot.now())


async def test_an_invite_link_sets_the_password_once(bot: BotApp, browser: Browser,
                                                     chain: DemoChain):
    token = await _invite(bot, "李卫东")
    page = await browser.get(f"/console/invite/{token}")
    assert page.status_code == 200
    done = await browser.post(f"/console/invite/{token}",
                              {"password": "a new password", "again": "a new password"})
    assert done.status_code == 303
    async with bot.session() as s:
        login = (await s.execute(select(ConsoleLogin))).scalar_one()
    assert (await browser.login(login.username, "a new password")).status_code == 303
    # Used: the same link neither shows the form nor sets another password.
    again = await browser.get(f"/console/invite/{token}")
    assert again.status_code == 404 and "链接无效" in again.text
    replay = await browser.post(f"/console/invite/{token}",
                                {"password": "attacker password", "again": "attacker password"})
    assert replay.status_code == 404
    assert (await browser.login(login.username, "attacker password")).status_code == 401


async def test_an_invite_link_expires(bot: BotApp, clock: FakeClock, browser: Browser,
                                      chain: DemoChain):
    token = await _invite(bot, "李卫东", hours=2)
    clock.advance(timedelta(hours=2))
    assert (await browser.get(f"/console/invite/{token}")).status_code == 404
    await browser.get("/console/login")  # a valid form token: only the link is at fault
    used = await browser.post(f"/console/invite/{token}",
                              {"password": "a new password", "again": "a new password"})
    assert used.status_code == 404
    async with bot.session() as s:
        assert (await s.execute(select(ConsoleLogin.password_hash))).scalar_one() is None


async def test_a_new_invite_voids_the_older_one_and_tokens_are_stored_hashed(
        bot: BotApp, browser: Browser, chain: DemoChain):
    first = await _invite(bot, "李卫东")
    async with bot.session() as s, s.begin():
        login = (await s.execute(select(ConsoleLogin))).scalar_one()
        second = await logins.issue_invite(s, login=login, hours=1, now=bot.now())
    assert (await browser.get(f"/console/invite/{first}")).status_code == 404
    assert (await browser.get(f"/console/invite/{second}")).status_code == 200
    async with bot.session() as s:
        hashes = set((await s.execute(select(ConsoleInvite.token_hash))).scalars())
    assert hashes == {logins.digest(first), logins.digest(second)}


@pytest.mark.parametrize("password,again", [("short", "short"),
                                            ("a new password", "another password")])
async def test_an_invite_refuses_a_weak_or_mistyped_password_and_stays_usable(
        bot: BotApp, browser: Browser, chain: DemoChain, password: str, again: str):
    token = await _invite(bot, "李卫东")
    await browser.get(f"/console/invite/{token}")
    refused = await browser.post(f"/console/invite/{token}",
                                 {"password": password, "again": again})
    assert refused.status_code == 422
    assert (await browser.get(f"/console/invite/{token}")).status_code == 200


async def test_setting_a_password_ends_the_sessions_of_the_old_one(
        bot: BotApp, browser: Browser, browsers, people: dict[str, int]):
    await browser.login("tier2")
    async with bot.session() as s, s.begin():
        login = await logins.find_login(s, username="tier2")
        assert login is not None
        token = await logins.issue_invite(s, login=login, hours=1, now=bot.now())
    other: Browser = browsers()
    await other.get(f"/console/invite/{token}")
    await other.post(f"/console/invite/{token}",
                     {"password": "a new password", "again": "a new password"})
    assert (await browser.get("/console/")).status_code == 303
    async with bot.session() as s:
        live = await s.scalar(select(func.count()).select_from(ConsoleSession)
                              .where(ConsoleSession.ended_at.is_(None)))
    assert live == 0


async def test_a_disabled_login_cannot_log_in_and_its_session_stops(
        bot: BotApp, browser: Browser, people: dict[str, int]):
    await browser.login("tier2")
    async with bot.session() as s, s.begin():
        login = await logins.find_login(s, username="tier2")
        assert login is not None
        login.disabled_at = bot.now()
    assert (await browser.get("/console/")).status_code == 303
    assert (await browser.login("tier2")).status_code == 401


async def test_sessions_over_for_a_day_are_deleted_at_the_next_login(
        bot: BotApp, clock: FakeClock, browser: Browser, browsers, people: dict[str, int]):
    await browser.login("tier2")
    await browser.get("/console/")
    assert (await browser.post("/console/logout")).status_code == 303
    other: Browser = browsers()
    await other.login("tier3")  # left open: it expires
    clock.advance(timedelta(hours=bot.settings.console.absolute_hours, days=1, seconds=1))
    await browsers().login("tier1")
    async with bot.session() as s:
        logins_left = list((await s.execute(
            select(ConsoleLogin.username).join(ConsoleSession,
                                               ConsoleSession.login_id == ConsoleLogin.id)
        )).scalars())
    assert logins_left == ["tier1"]


async def test_behind_a_trusted_proxy_the_lockout_counts_the_forwarded_address(
        bot: BotApp, people: dict[str, int]):
    import httpx

    from bot.api import create_api

    bot.settings.console.trusted_proxies = ["10.9.9.9"]
    api = create_api(bot)

    async def attempt(peer: str, forwarded: str, username: str, password: str) -> int:
        transport = httpx.ASGITransport(app=api, client=(peer, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test",
                                     headers={"X-Forwarded-For": forwarded}) as c:
            return (await Browser(c).login(username, password)).status_code

    for i in range(bot.settings.console.max_failures):
        assert await attempt("10.9.9.9", "203.0.113.7", f"guess{i}", "wrong password!") == 401
    # The guesser's address is locked; another client behind the same proxy is not.
    assert await attempt("10.9.9.9", "203.0.113.7", "tier3", PASSWORD) == 429
    assert await attempt("10.9.9.9", "198.51.100.1", "tier3", PASSWORD) == 303
    # A client that is not the proxy cannot pick its address by sending the header.
    for i in range(bot.settings.console.max_failures):
        await attempt("192.0.2.5", f"198.51.100.{100 + i}", f"other{i}", "wrong password!")
    assert await attempt("192.0.2.5", "198.51.100.200", "tier2", PASSWORD) == 429
