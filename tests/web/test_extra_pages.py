"""The console's shops/enterprises/projects page, exports, import with preview and the
simulator's place, over HTTP: a reopening decided here as 复工审核 decides it in chat (and
only by the community's reviewers), exports that open with openpyxl and land in the access
log (refused to roles not authorised, and for nodes not seen), an import previewed before it
is applied, applied once, refused to anyone but a superuser."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.app import BotApp
from models import AccessLog, Node, Person, ShopReopening
from models.shop import ReopeningStatus
from tests import dump
from tests.conftest import Chat, DemoChain, count
from tests.web.conftest import Browser
from tests.xlsx import write_xlsx

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")
_TAG = re.compile(r"<[^>]*>")


def leaked_mobile(page: str) -> re.Match[str] | None:
    """A whole mobile number in the page: anywhere in its text (+8613612345678 too), or as a
    value of its own in the markup. A run of digits inside a token (the CSRF token, an
    import's digest) is no mobile: checking the raw page failed about one run in fifty."""
    return FULL_MOBILE.search(_TAG.sub(" ", page)) or dump.FULL_MOBILE.search(page)


async def _node_id(bot: BotApp, name: str) -> int:
    async with bot.session() as s:
        return (await s.execute(select(Node.id).where(Node.name == name))).scalar_one()


async def _registered(chat: Chat, chain: DemoChain) -> None:
    await chat.say(chain.shop_group, chain.captain,
                   "复工登记 3号商位 张伟 13812345678 员工4人 外地返回1人 已承诺")


async def _status(bot: BotApp) -> str:
    async with bot.session() as s:
        return (await s.execute(select(ShopReopening.status))).scalar_one()


async def test_a_reopening_is_approved_here_as_in_chat(bot: BotApp, chat: Chat,
                                                      chain: DemoChain, browser: Browser,
                                                      people: dict[str, int], transport):
    await _registered(chat, chain)
    assert await _status(bot) == ReopeningStatus.REVIEW
    await browser.login("secretary")
    page = (await browser.get("/console/units")).text
    assert "3号商位" in page and "张*" in page and "138****5678" in page
    assert not leaked_mobile(page)
    assert 'hx-post="/console/units/reopening/1/review"' in page
    mark = len(transport.sent)
    refused = await browser.post("/console/units/reopening/1/review", {"decision": "reject"})
    assert refused.status_code == 409 and await _status(bot) == ReopeningStatus.REVIEW
    done = await browser.post("/console/units/reopening/1/review", {"decision": "approve"})
    assert done.status_code == 200 and "已通过" in done.text
    assert await _status(bot) == ReopeningStatus.APPROVED
    await bot.idle()
    assert any(s.room_id == chain.shop_group and "#1" in s.text for s in transport.sent[mark:])
    again = await browser.post("/console/units/reopening/1/review", {"decision": "reject",
                                                                    "reason": "重复"})
    assert again.status_code == 409 and await _status(bot) == ReopeningStatus.APPROVED


@pytest.mark.parametrize("who", ["tier3", "tier5", "tier1"])
async def test_only_the_communitys_reviewers_decide(bot: BotApp, chat: Chat, chain: DemoChain,
                                                    browser: Browser, people: dict[str, int],
                                                    who: str):
    await _registered(chat, chain)
    await browser.login(who)
    page = await browser.get("/console/units")
    assert "/review" not in page.text
    tried = await browser.post("/console/units/reopening/1/review", {"decision": "approve"})
    assert tried.status_code == 404 and await _status(bot) == ReopeningStatus.REVIEW


async def test_a_nodes_page_out_of_scope_is_404(bot: BotApp, chain: DemoChain,
                                                browser: Browser, people: dict[str, int]):
    other = await _node_id(bot, "应天喜出租房")
    await browser.login("tier5")
    assert (await browser.get(f"/console/units?node={other}")).status_code == 404
    assert (await browser.get(f"/console/exports?node={other}")).status_code == 404


async def test_an_export_opens_and_is_in_the_access_log(bot: BotApp, chat: Chat,
                                                        chain: DemoChain, browser: Browser,
                                                        people: dict[str, int]):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王五 13900002222 来自河南信阳")
    community = await _node_id(bot, "长春社区")
    await browser.login("tier2")
    form = (await browser.get("/console/exports")).text
    assert 'name="report"' in form and "导入人员" not in form  # the import: superusers only
    got = await browser.post("/console/exports", {"report": "watch", "node": str(community),
                                                  "date": "2020-02-21"})
    assert got.status_code == 200
    assert "attachment" in got.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(got.content)).worksheets[0]
    assert [c.value for c in sheet[4]][2:4] == ["王*", "139****2222"]
    async with bot.session() as s:
        [entry] = (await s.execute(select(AccessLog))).scalars()
    assert (entry.who, entry.action, entry.field, entry.node_id) == (
        f"person:{people['tier2']}", "export", "watch", community)
    log = (await browser.get("/console/access-log")).text
    assert "导出" in log and "居家观察人员" in log and "长春社区" in log


@pytest.mark.parametrize("who,report,node,code", [
    ("tier5", "watch", "董宝明出租房", 403),   # a landlord: not an authorised role
    ("secretary", "watch", "福田街道", 404),    # above their community: not seen
    ("tier3", "stats", "长春社区", 404),         # above their team: not seen
    ("tier3", "stats", "没有", 422),
])
async def test_exports_refused_leave_no_trace(bot: BotApp, chain: DemoChain, browser: Browser,
                                              people: dict[str, int], who: str, report: str,
                                              node: str, code: int):
    node_id = "0" if node == "没有" else str(await _node_id(bot, node))
    await browser.login(who)
    await browser.get("/console/exports")
    got = await browser.post("/console/exports", {"report": report, "node": node_id})
    assert got.status_code == code
    assert await count(bot, AccessLog) == 0


async def test_an_export_of_a_day_out_of_range_is_refused(bot: BotApp, chain: DemoChain,
                                                          browser: Browser,
                                                          people: dict[str, int]):
    # 0001-01-01 in Shanghai starts in year 0 in UTC: a clear refusal, not a server error.
    await browser.login("tier2")
    await browser.get("/console/exports")
    node = str(await _node_id(bot, "长春社区"))
    for day, text in (("0001-01-01", "日期超出范围"), ("2020-2-1", "日期格式应为")):
        got = await browser.post("/console/exports", {"report": "stats", "node": node,
                                                      "date": day})
        assert got.status_code == 422 and text in got.text, (day, got.text)
    assert await count(bot, AccessLog) == 0


async def test_an_export_without_the_csrf_token_is_refused(bot: BotApp, chain: DemoChain,
                                                           browser: Browser,
                                                           people: dict[str, int]):
    await browser.login("tier2")
    got = await browser.post("/console/exports", {"report": "stats",
                                                  "node": str(await _node_id(bot, "长春社区"))},
                             csrf="")
    assert got.status_code == 403 and await count(bot, AccessLog) == 0


def _chain_file(tmp_path, rows=None):
    return write_xlsx(tmp_path / "chain.xlsx", {
        "people": [["key", "name", "mobile", "contacts"],
                   *(rows or [["ma", "马红梅", "13612345678", "sim-mahongmei"]])],
        "nodes": [["key", "name", "kind", "parent", "commander"],
                  ["", "福田街道", "subdistrict", "", ""],
                  ["", "长春社区", "community", "福田街道", ""],
                  ["t2", "长春第二作战小组", "team", "长春社区", "ma"]]})


async def _people(bot: BotApp) -> int:
    async with bot.session() as s:
        return (await s.execute(select(func.count()).select_from(Person))).scalar_one()


async def test_an_import_is_previewed_then_applied_once(bot: BotApp, chain: DemoChain,
                                                        browser: Browser,
                                                        people: dict[str, int], tmp_path):
    path = _chain_file(tmp_path)
    before = await _people(bot)
    await browser.login("ops")
    await browser.get("/console/exports")
    shown = await browser.client.post("/console/import/preview", data={"csrf": browser.csrf},
                                      files={"file": ("chain.xlsx", path.read_bytes())})
    assert shown.status_code == 200
    assert "长春第二作战小组" in shown.text and "136****5678" in shown.text
    assert not leaked_mobile(shown.text)
    assert await _people(bot) == before  # nothing before the confirmation
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', shown.text).group(1)
    applied = await browser.post("/console/import/apply", {"digest": digest, "suffix": ".xlsx"})
    assert applied.status_code == 200 and "已导入" in applied.text
    assert await _people(bot) == before + 1
    twice = await browser.post("/console/import/apply", {"digest": digest, "suffix": ".xlsx"})
    assert twice.status_code == 409 and await _people(bot) == before + 1
    forged = await browser.post("/console/import/apply", {"digest": "../../etc/passwd",
                                                          "suffix": ".xlsx"})
    assert forged.status_code in (409, 422)


async def test_a_bad_file_shows_its_rows_and_offers_no_apply(bot: BotApp, chain: DemoChain,
                                                             browser: Browser,
                                                             people: dict[str, int],
                                                             tmp_path):
    path = _chain_file(tmp_path, [["ma", "马红梅", "1361234", ""]])
    await browser.login("ops")
    await browser.get("/console/exports")
    shown = await browser.client.post("/console/import/preview", data={"csrf": browser.csrf},
                                      files={"file": ("chain.xlsx", path.read_bytes())})
    assert shown.status_code == 200 and "people 表第 2 行" in shown.text
    assert "apply-form" not in shown.text and "1361234" not in shown.text


@pytest.mark.parametrize("who", ["tier1", "tier2"])
async def test_only_a_superuser_imports(bot: BotApp, chain: DemoChain, browser: Browser,
                                        people: dict[str, int], tmp_path, who: str):
    path = _chain_file(tmp_path)
    await browser.login(who)
    await browser.get("/console/exports")
    shown = await browser.client.post("/console/import/preview", data={"csrf": browser.csrf},
                                      files={"file": ("chain.xlsx", path.read_bytes())})
    assert shown.status_code == 403


async def test_an_oversized_or_foreign_upload_is_refused(bot: BotApp, chain: DemoChain,
                                                         browser: Browser,
                                                         people: dict[str, int]):
    await browser.login("ops")
    await browser.get("/console/exports")
    big = await browser.client.post("/console/import/preview", data={"csrf": browser.csrf},
                                    files={"file": ("chain.xlsx", b"0" * (10 * 2**20 + 1))})
    exe = await browser.client.post("/console/import/preview", data={"csrf": browser.csrf},
                                    files={"file": ("chain.exe", b"MZ")})
    assert (big.status_code, exe.status_code) == (413, 422)


async def test_the_simulator_page_is_for_superusers_on_the_simulated_chat(
        bot: BotApp, chain: DemoChain, browser: Browser, people: dict[str, int]):
    await browser.login("tier1")
    assert (await browser.get("/console/simulator/")).status_code == 403
    await browser.post("/console/logout")
    await browser.login("ops")
    # The test bot's chat is the plain in-memory one: the page says the simulator is off.
    page = await browser.get("/console/simulator/")
    assert page.status_code == 404 and "演示模式" in page.text
