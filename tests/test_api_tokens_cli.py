"""`tierbot tokens create | list | revoke`, and the tokens it makes used against the API."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.api import create_api
from bot.app import build_app, running
from bot.cli import main
from bot.config import Settings
from bot.transports.memory import MemoryTransport

DEMO_CHAIN = Path(__file__).parents[1] / "bot" / "demo" / "chain.toml"


def _get(url: str, path: str, secret: str) -> tuple[int, Any]:
    """One API request on a fresh bot over the database (no legacy token configured)."""
    async def go() -> tuple[int, Any]:
        app = build_app(Settings(database_url=url, transport="memory", scheduler=False),
                        transport=MemoryTransport("sim"))
        async with running(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_api(app)), base_url="http://t") as c:
            response = await c.get(path, headers={"Authorization": f"Bearer {secret}"})
            return response.status_code, response.json()

    return asyncio.run(go())


def test_tokens_create_list_revoke(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]):
    monkeypatch.delenv("TIERBOT_CONFIG", raising=False)
    monkeypatch.delenv("TIERBOT_API__TOKEN", raising=False)
    base = ["--database-url", db_url]
    assert main(base + ["chain", "import", str(DEMO_CHAIN)]) == 0
    capsys.readouterr()

    assert main(base + ["tokens", "create", "--person", "李卫东", "--days", "7",
                        "--label", "community office"]) == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert re.fullmatch(r"tb_[A-Za-z0-9_-]{43}", secret)
    assert "shown only now" in err and "sees the subtrees of nodes" in err

    # A tenant's role sees nothing: refused unless it is a superuser token.
    assert main(base + ["tokens", "create", "--person", "sim-panxiansheng"]) == 2
    assert "holds no role" in capsys.readouterr().err
    assert main(base + ["tokens", "create", "--person", "sim-panxiansheng",
                        "--superuser"]) == 0
    superuser = capsys.readouterr().out.strip()
    assert superuser != secret
    for bad, says in ((["--person", "无此人"], "no person"), (["--person", "#999"], "no person"),
                      (["--person", "张建国", "--days", "0"], "--days")):
        assert main(base + ["tokens", "create", *bad]) == 2, bad
        assert says in capsys.readouterr().err, bad

    assert main(base + ["tokens", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1\tactive\t#") and "李卫东\tsubtree" in lines[0]
    assert "last used never\tcommunity office" in lines[0]
    assert lines[1].startswith("2\tactive\t#") and "潘先生\tsuperuser" in lines[1]
    assert secret not in "\n".join(lines)

    status, body = _get(db_url, "/api/chain", secret)
    assert status == 200
    assert [root["name"] for root in body["items"]] == ["长春社区"]
    status, body = _get(db_url, "/api/chain", superuser)
    assert [root["name"] for root in body["items"]] == ["福田街道"]
    assert main(base + ["tokens", "list"]) == 0
    assert "last used never" not in capsys.readouterr().out.splitlines()[0]

    assert main(base + ["tokens", "revoke", "1"]) == 0
    assert capsys.readouterr().out.strip() == "token 1 revoked"
    assert main(base + ["tokens", "revoke", "99"]) == 2
    assert "no token 99" in capsys.readouterr().err
    assert main(base + ["tokens", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("1\trevoked\t")
    assert _get(db_url, "/api/chain", secret) == (401, {"detail": "token revoked"})
    assert _get(db_url, "/api/chain", superuser)[0] == 200
