"""The console in chromium against a live server (the bot on the simulated chat, SQLite and
PostgreSQL): logging in; the overview's numbers are 统计's; a notice sent from the delivery
board and acknowledged in the console's simulator; a reopening approved; a reveal that lands in the access log; an
export that opens with openpyxl; a tier-3 person kept out of another unit's pages by URL."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from bot.app import BotApp
from bot.services import stats
from models import AccessLog, Group, Node, OutboxMessage, ShopReopening
from models.shop import ReopeningStatus
from tests.conftest import DemoChain
from tests.web.conftest import PASSWORD, Live
from tests.web.test_pages import _chat_figures

pytestmark = pytest.mark.browser


def _say(live: Live, room: str, contact: str, text: str) -> list[str]:
    """A chat message on the live bot; what the bot sent to that room because of it."""
    async def work(app: BotApp) -> list[str]:
        transport = app.transport
        mark = len(transport.sent)  # type: ignore[attr-defined]
        await transport.inject(transport.message(room, contact, text))  # type: ignore[attr-defined]
        await app.idle()
        return [s.text for s in transport.sent[mark:] if s.room_id == room]  # type: ignore[attr-defined]
    return live.run(work)


def _node_id(live: Live, name: str) -> int:
    async def work(app: BotApp) -> int:
        async with app.session() as s:
            return (await s.execute(select(Node.id).where(Node.name == name))).scalar_one()
    return live.run(work)


def _login(page: Page, live: Live, username: str) -> None:
    page.goto(f"{live.base_url}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("header.top .who")).to_have_text(username)


def test_logging_in_and_the_overview_shows_统计(live: Live, page: Page):
    _say(live, DemoChain.tenant_group, DemoChain.landlord,
         "租客返回 王明 13800138000 来自湖南长沙 体温38.2")
    [reply] = _say(live, DemoChain.community_group, DemoChain.community_commander, "统计")
    expected = _chat_figures(reply, [(s.key, s.title) for s in stats.SECTIONS])
    page.goto(f"{live.base_url}/console/")
    expect(page).to_have_url(re.compile("/console/login"))
    page.get_by_label("用户名").fill("tier2")
    page.get_by_label("密码").fill("wrong password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    _login(page, live, "tier2")
    for (section, label), value in expected.items():
        expect(page.locator(f'[data-section="{section}"] dd[data-label="{label}"]')
               ).to_have_text(str(value))
    assert any(v > 0 for v in expected.values())


def test_a_notice_sent_from_the_board_and_acknowledged_in_the_simulator(live: Live,
                                                                        page: Page):
    _login(page, live, "tier1")
    page.get_by_role("link", name="通知送达").click()
    page.get_by_label("内容").fill("请各房东今日完成楼道消毒")
    page.get_by_role("button", name="发送", exact=True).click()
    expect(page.locator("#notice-result")).to_contain_text("#1")
    page.get_by_role("button", name="退出").click()

    _login(page, live, "ops")
    page.get_by_role("link", name="模拟器").click()
    tenant = page.locator(f'section.group[data-room="{DemoChain.tenant_group}"]')
    expect(tenant.locator(".msg.bot").first).to_contain_text("【通知#1】请各房东今日完成楼道消毒")
    tenant.locator("select").select_option(label="董宝明")
    tenant.locator("input[name=text]").fill("收到")
    tenant.get_by_role("button", name="发送").click()
    expect(tenant.locator(".msg.me").last).to_contain_text("收到")

    async def acked(app: BotApp) -> bool:
        async with app.session() as s:
            return (await s.execute(select(OutboxMessage.acked_at).join(
                Group, Group.id == OutboxMessage.group_id).where(
                Group.room_id == DemoChain.tenant_group, OutboxMessage.notice_id == 1))
            ).scalar_one() is not None
    assert live.run(acked)
    page.goto(f"{live.base_url}/console/")
    page.get_by_role("button", name="退出").click()
    _login(page, live, "tier1")
    page.get_by_role("link", name="通知送达").click()
    expect(page.locator('[data-notice="1"]')).to_contain_text(re.compile(r"确认 1/\d"))


def test_a_reopening_approved(live: Live, page: Page):
    _say(live, DemoChain.shop_group, DemoChain.captain,
         "复工登记 3号商位 张伟 13812345678 员工4人 外地返回1人 已承诺")
    _login(page, live, "secretary")
    page.get_by_role("link", name="商铺企业").click()
    row = page.locator("#reg-1")
    expect(row).to_contain_text("3号商位")
    row.get_by_role("button", name="通过").click()
    expect(page.locator("#reg-1")).to_contain_text("已通过")

    async def status(app: BotApp) -> str:
        async with app.session() as s:
            return (await s.execute(select(ShopReopening.status))).scalar_one()
    assert live.run(status) == ReopeningStatus.APPROVED


def test_a_reveal_lands_in_the_access_log(live: Live, page: Page):
    _say(live, DemoChain.tenant_group, DemoChain.landlord,
         "租客返回 周芳 13800138000 来自湖南长沙")
    _login(page, live, "tier2")
    page.get_by_role("link", name="居家观察").click()
    row = page.locator("tr", has_text="周*")
    expect(row).to_contain_text("138****8000")
    row.get_by_placeholder("查看原因").fill("核实返乡信息")
    row.get_by_role("button", name="查看").click()
    expect(row.locator(".revealed")).to_contain_text("13800138000")
    page.get_by_role("link", name="查阅记录").click()
    entry = page.locator("tr[data-log]").first
    expect(entry).to_contain_text("核实返乡信息")
    expect(entry).to_contain_text("周*")

    async def logged(app: BotApp) -> list[str]:
        async with app.session() as s:
            return list((await s.execute(select(AccessLog.why))).scalars())
    assert live.run(logged) == ["核实返乡信息"]


def test_an_export_opens_with_openpyxl(live: Live, page: Page, tmp_path: Path):
    _say(live, DemoChain.tenant_group, DemoChain.landlord,
         "租客返回 王五 13900002222 来自河南信阳")
    _login(page, live, "tier2")
    page.get_by_role("link", name="导出导入").click()
    page.get_by_label("报表").select_option(label="居家观察人员")
    page.get_by_label("单位").select_option(label="长春社区")
    with page.expect_download() as download:
        page.get_by_role("button", name="导出 XLSX").click()
    path = tmp_path / "export.xlsx"
    download.value.save_as(path)
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert "居家观察人员" in str(sheet["A1"].value)
    assert [c.value for c in sheet[4]][2:4] == ["王*", "139****2222"]


PAGES = ("/console/?node={id}", "/console/watch?node={id}", "/console/points?node={id}",
         "/console/units?node={id}", "/console/exports?node={id}")


def test_a_tier3_person_cannot_reach_another_units_pages(live: Live, page: Page):
    other = _node_id(live, "华鑫针织")  # a tier-3 unit beside 吴海峰's team
    own = _node_id(live, "长春第一作战小组")
    _login(page, live, "tier3")
    for path in PAGES:
        response = page.goto(live.base_url + path.format(id=other))
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("alert")).to_contain_text("无权查看")
        mine = page.goto(live.base_url + path.format(id=own))
        assert mine is not None and mine.status == 200, path
