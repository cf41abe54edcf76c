"""`tierbot console invite | superuser`, the links and logins they make used in the console;
and the vendored static files: served, pinned by digest, shipped as package data."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import tomllib
from pathlib import Path

import httpx
import pytest

from bot.api import create_api
from bot.app import build_app, running
from bot.cli import main
from bot.config import Settings
from bot.transports.memory import MemoryTransport
from tests.web.conftest import Browser

ROOT = Path(__file__).parents[2]
DEMO_CHAIN = ROOT / "bot" / "demo" / "chain.toml"
VENDOR = ROOT / "bot" / "web" / "static" / "vendor"


def _browse(url: str, steps) -> list[int]:
    """Run `steps(browser)` against a fresh bot over the database; returns its statuses."""
    async def go() -> list[int]:
        app = build_app(Settings(database_url=url, transport="memory", scheduler=False),
                        transport=MemoryTransport("sim"))
        async with running(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_api(app)),
                base_url="http://console.test") as c:
            return await steps(Browser(c))

    return asyncio.run(go())


def test_console_invite_prints_a_one_time_link(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]):
    monkeypatch.delenv("TIERBOT_CONFIG", raising=False)
    base = ["--database-url", db_url]
    assert main(base + ["chain", "import", str(DEMO_CHAIN)]) == 0
    capsys.readouterr()
    assert main(base + ["console", "invite", "--person", "李卫东", "--login", "liweidong"]) == 0
    out, err = capsys.readouterr()
    link = out.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/console/invite/[A-Za-z0-9_-]{43}", link)
    assert "liweidong" in err and "works once" in err
    path = link.removeprefix("http://127.0.0.1:8080")

    async def use(b: Browser) -> list[int]:
        await b.get(path)
        done = await b.post(path, {"password": "a long password", "again": "a long password"})
        again = await b.get(path)
        login = await b.login("liweidong", "a long password")
        page = await b.get("/console/")
        return [done.status_code, again.status_code, login.status_code, page.status_code]

    assert _browse(db_url, use) == [303, 404, 303, 200]
    # A second invite for the same person reuses the login; a tenant gets none.
    assert main(base + ["console", "invite", "--person", "李卫东"]) == 0
    assert "liweidong" in capsys.readouterr().err
    assert main(base + ["console", "invite", "--person", "sim-panxiansheng"]) == 2
    assert "holds no role" in capsys.readouterr().err


def test_console_superuser_reads_the_password_from_stdin(db_url: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]):
    monkeypatch.delenv("TIERBOT_CONFIG", raising=False)
    base = ["--database-url", db_url]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(base + ["console", "superuser", "ops"]) == 2
    assert "至少" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("operators password\n"))
    assert main(base + ["console", "superuser", "ops"]) == 0
    out, err = capsys.readouterr()
    assert "operators password" not in out + err
    monkeypatch.setattr("sys.stdin", io.StringIO("operators password\n"))
    assert main(base + ["console", "superuser", "ops"]) == 2  # the name is taken

    async def use(b: Browser) -> list[int]:
        login = await b.login("ops", "operators password")
        return [login.status_code, (await b.get("/console/chain")).status_code]

    assert _browse(db_url, use) == [303, 200]


def _readme_digests() -> dict[str, str]:
    text = (VENDOR / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| (\S+\.js) \|.*\| ([0-9a-f]{64}) \|$", text, re.M))


def test_vendored_files_match_their_pinned_digests():
    digests = _readme_digests()
    assert set(digests) == {p.name for p in VENDOR.glob("*.js")}
    for name, digest in digests.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_templates_use_only_vendored_scripts():
    for template in (ROOT / "bot" / "web" / "templates").glob("*.html"):
        for src in re.findall(r'<script[^>]*src="([^"]+)"', template.read_text("utf-8")):
            assert src.startswith("/console/static/"), (template.name, src)
            assert (ROOT / "bot" / "web" / src.removeprefix("/console/")).is_file(), src
        assert "http://" not in template.read_text("utf-8").replace("http://127", "")
        assert "https://" not in template.read_text("utf-8")


def test_package_data_ships_the_templates_and_static_files():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["bot.web"]
    web = ROOT / "bot" / "web"
    shipped = {p for pattern in patterns for p in web.glob(pattern)}
    wanted = {p for p in (web / "templates").rglob("*") if p.is_file()} | {
        p for p in (web / "static").rglob("*") if p.is_file()}
    assert wanted <= shipped, wanted - shipped


async def test_static_files_are_served_and_pages_carry_a_strict_policy(
        browser: Browser, people: dict[str, int]):
    for name in _readme_digests():
        response = await browser.get(f"/console/static/vendor/{name}")
        assert response.status_code == 200 and len(response.content) > 10_000
    await browser.login("tier2")
    page = await browser.get("/console/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script to allow
