"""The chat simulator in chromium: every group side by side, a notice sent by the subdistrict
commander arrives in the groups below, the clock moves and the silent group is reminded, the
landlord acknowledges and the sender's 进度 counts it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from models import Group
from tests.conftest import DemoChain
from tests.web.conftest import Live

pytestmark = pytest.mark.browser


def _column(page: Page, room: str):
    return page.locator(f'section.group[data-room="{room}"]')


def _say(page: Page, room: str, speaker: str, text: str) -> None:
    column = _column(page, room)
    column.locator("select").select_option(label=speaker)
    column.locator("input[name=text]").fill(text)
    column.get_by_role("button", name="发送").click()


def test_every_group_side_by_side_and_a_notice_acknowledged(live: Live, page: Page):
    async def rooms(app):
        async with app.session() as s:
            return set((await s.execute(select(Group.room_id).where(
                Group.transport == "sim"))).scalars())

    page.goto(f"{live.base_url}/sim/")
    expect(page.locator("section.group")).to_have_count(len(live.run(rooms)))
    expect(page.locator("#clock")).to_have_text("2020-02-21 10:00")

    _say(page, DemoChain.subdistrict_group, "张建国", "通知 请各房东今日完成楼道消毒")
    expect(_column(page, DemoChain.subdistrict_group).locator(".msg.bot")).to_contain_text(
        re.compile("已发出"))
    tenant = _column(page, DemoChain.tenant_group)
    expect(tenant.locator(".msg.bot").first).to_contain_text("【通知#1】请各房东今日完成楼道消毒")

    page.get_by_role("button", name="+3小时").click()
    expect(page.locator("#clock")).to_have_text("2020-02-21 13:00")
    expect(tenant.locator(".msg.bot").last).to_contain_text("提醒")

    _say(page, DemoChain.tenant_group, "董宝明", "收到")
    expect(tenant.locator(".msg.me").last).to_contain_text("收到")
    _say(page, DemoChain.subdistrict_group, "张建国", "进度")
    expect(_column(page, DemoChain.subdistrict_group).locator(".msg.bot").last).to_contain_text(
        re.compile(r"确认 [1-9]/"))
