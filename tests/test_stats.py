"""统计, GET /api/stats and `tierbot stats export`: the figures match counts made
independently from the rows; scoping to a named subtree; the XLSX report's shape."""

from __future__ import annotations

import re
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from bot.api.app import create_api
from bot.app import BotApp
from bot.services import chain as chain_service
from bot.services import stats, stats_export
from bot.services.chain import whole_tree
from models import (
    LandlordReport,
    Membership,
    Node,
    Person,
    Shop,
    ShopCheckin,
    ShopPatrol,
    ShopReopening,
    TenantStay,
)
from tests.conftest import SHANGHAI, START, Chat, DemoChain
from tests.test_cli import DEMO_CHAIN, Cli, _ok

AUTH = {"Authorization": "Bearer test-token"}
FULL_MOBILE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_api(bot)),
                                 base_url="http://t") as c:
        yield c


async def _busy_day(chat: Chat, chain: DemoChain, clock) -> None:
    """Returns, a fever, reports, check-ins and reopenings, some of them yesterday."""
    clock.set(START - timedelta(days=1))
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 李四 13900001111 来自湖北武汉 昨天晚上 体温36.5")
    await chat.say(chain.shop_group, chain.captain, "巡查 10家 营业4家 无异常")
    clock.set(START)
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王五 13900002222 来自河南信阳 体温38.1")
    await chat.say(chain.ying_group, chain.ying_tenant, "租客返回 赵丽 13900003333 来自安徽阜阳")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 代办 帮王五买药")
    await chat.say(chain.shop_group, chain.captain,
                   "复工登记 3号商位 张伟 13812345678 员工4人 外地返回1人 已承诺")
    await chat.say(chain.shop_group, chain.captain,
                   "复工登记 5号商位 李娜 13912345678 员工3人 已承诺")
    await chat.say(chain.community_group, chain.secretary, "复工审核 1 通过")
    await chat.say(chain.shop_group, chain.captain, "今日巡查：3号 开门 2人 36.5 36.7；4号 关门")
    await chat.say(chain.shop_group, chain.captain, "1号 开门 1人 36.6")


async def _independent(bot: BotApp, root_name: str) -> dict[str, int]:
    """The same figures, counted in Python from whole tables (no shared query code)."""
    async with bot.session() as s:
        nodes = list((await s.execute(select(Node))).scalars())
        stays = list((await s.execute(select(TenantStay))).scalars())
        members = list((await s.execute(select(Membership))).scalars())
        reports = list((await s.execute(select(LandlordReport))).scalars())
        shops = list((await s.execute(select(Shop))).scalars())
        regs = list((await s.execute(select(ShopReopening))).scalars())
        checkins = list((await s.execute(select(ShopCheckin))).scalars())
        patrols = list((await s.execute(select(ShopPatrol))).scalars())
    by_id = {n.id: n for n in nodes}
    root = next(n for n in nodes if n.name == root_name)

    def inside(node_id: int) -> bool:
        current = by_id.get(node_id)
        while current is not None:
            if current.id == root.id:
                return True
            current = by_id.get(current.parent_id) if current.parent_id else None
        return False

    now = START
    today = START.date()
    day_start = START.replace(hour=0)
    mine = [s for s in stays if inside(s.node_id) and s.ended_at is None]
    rows = {n.id for n in nodes if inside(n.id) and n.kind == "shop_row"}
    checked = opened = 0
    for row in rows:
        named = [c for c in checkins if c.node_id == row and c.day == today]
        patrol = next((p for p in patrols if p.node_id == row and p.day == today), None)
        checked += max(len(named), patrol.checked if patrol else 0)
        opened += max(sum(1 for c in named if c.is_open), patrol.opened if patrol else 0)
    return {
        "作战小组": sum(1 for n in nodes if inside(n.id) and n.kind == "team"),
        "小组成员": len({m.person_id for m in members if inside(m.node_id)
                         and by_id[m.node_id].tier in (3, 4) and m.role in ("commander",
                                                                             "member")}),
        "房东": len({m.person_id for m in members if inside(m.node_id) and m.role == "landlord"}),
        "登记租客": len({s.tenant_id for s in mine}),
        "今日返回": sum(1 for s in mine if s.created_at >= day_start),
        "累计返回": len(mine),
        "居家观察": sum(1 for s in mine if s.watch_until > now),
        "发热": sum(1 for s in mine if s.watch_until > now and s.fever),
        "消毒": sum(1 for r in reports if inside(r.node_id) and r.kind == "disinfect"
                    and r.created_at >= day_start),
        "代办": sum(1 for r in reports if inside(r.node_id) and r.kind == "errand"
                    and r.created_at >= day_start),
        "商铺总数": sum(1 for s in shops if inside(s.node_id)),
        "已复工": len({r.shop_id for r in regs if inside(r.node_id) and r.status == "approved"}),
        "待审核": sum(1 for r in regs if inside(r.node_id)
                      and r.status in ("captain", "review")),
        "今日打卡": checked,
        "今日营业": opened,
    }


def _parse_reply(text: str) -> dict[str, int]:
    return {label: int(value) for label, value in re.findall(r"([^\s：，]+) (\d+)", text)}


# The subtree's upper nodes loaded (a city's few hundred), or too many to load (nested IN).
@pytest.mark.parametrize("upper_loaded", [5000, 1], ids=["upper-loaded", "upper-nested"])
async def test_stats_matches_counts_made_from_the_rows(bot, chat: Chat, chain: DemoChain, clock,
                                                       monkeypatch, upper_loaded: int):
    monkeypatch.setattr(chain_service, "UPPER_LOADED", upper_loaded)
    await _busy_day(chat, chain, clock)
    for room, contact, root in ((chain.subdistrict_group, chain.commander, "福田街道"),
                                (chain.community_group, chain.secretary, "长春社区"),
                                (chain.landlords_group, chain.team_member, "第一小组房东群")):
        await chat.say(room, contact, "统计")
        [reply] = chat.replies(room)
        assert reply.startswith(f"【统计 2月21日】{root}")
        got = _parse_reply(reply)
        expected = await _independent(bot, root)
        assert {k: got[k] for k in expected} == expected, reply
    # The day's facts, spelled out once (so the two countings cannot agree on nonsense).
    assert (expected["今日返回"], expected["累计返回"], expected["发热"]) == (2, 3, 1)
    assert (expected["已复工"], expected["待审核"], expected["今日打卡"], expected["今日营业"]) \
        == (1, 1, 3, 2)


async def test_a_second_chain_beside_this_one_is_not_counted(bot, chat: Chat, chain: DemoChain,
                                                            clock):
    # A city's figures read whole tables when its root is the chain's only one
    # (chain.whole_tree); a second root beside it must make them filter again.
    await _busy_day(chat, chain, clock)
    async with bot.session() as s:
        city = (await s.execute(select(Node).where(Node.name == "福田街道"))).scalar_one()
        assert (await whole_tree(s, city)).everything
    now = START
    async with bot.session() as s, s.begin():
        parent = None
        for tier, kind in enumerate(("subdistrict", "community", "team", "team_landlords",
                                     "landlord_tenants"), start=1):
            node = Node(tier=tier, kind=kind, name=f"别处{tier}", parent_id=parent,
                        created_at=now)
            s.add(node)
            await s.flush()
            parent = node.id
        landlord, tenant = Person(name="别处房东", created_at=now), Person(name="别处租客",
                                                                      created_at=now)
        s.add_all([landlord, tenant])
        await s.flush()
        s.add_all([Membership(person_id=landlord.id, node_id=parent, role="landlord",
                              created_at=now),
                   TenantStay(tenant_id=tenant.id, node_id=parent, arrived_at=now,
                              watch_until=now + timedelta(days=14), fever=True,
                              created_at=now),
                   LandlordReport(landlord_id=landlord.id, node_id=parent, kind="disinfect",
                                  created_at=now),
                   Shop(node_id=parent, name="别处商铺", created_at=now)])
    async with bot.session() as s:
        assert not (await whole_tree(s, city)).everything
    await chat.say(chain.subdistrict_group, chain.commander, "统计")
    got = _parse_reply(chat.replies(chain.subdistrict_group)[0])
    expected = await _independent(bot, "福田街道")
    assert {k: got[k] for k in expected} == expected
    assert expected["作战小组"] == 1 and expected["发热"] == 1  # the other chain's are not


async def test_stats_of_a_named_subtree_and_its_limits(bot, chat: Chat, chain: DemoChain, clock):
    await _busy_day(chat, chain, clock)
    await chat.say(chain.subdistrict_group, chain.commander, "统计 长春社区")
    [reply] = chat.replies(chain.subdistrict_group)
    assert reply.startswith("【统计 2月21日】长春社区")
    # Not above or beside the asker's node; not in a tier-5 group; not for landlords.
    await chat.say(chain.team_group, chain.team_commander, "统计 福田街道")
    assert chat.replies(chain.team_group) == ["本级以下没有「福田街道」。"]
    await chat.say(chain.tenant_group, chain.landlord, "统计")
    assert "只能在" in chat.replies(chain.tenant_group)[0]
    await chat.say(chain.landlords_group, chain.landlord, "统计")
    assert "您没有权限" in chat.replies(chain.landlords_group)[0]


async def test_api_stats_and_its_errors(bot, chat: Chat, chain: DemoChain, clock, client):
    await _busy_day(chat, chain, clock)
    async with bot.session() as s:
        changchun = (await s.execute(select(Node).where(Node.name == "长春社区"))).scalar_one()
    response = await client.get(f"/api/stats?node={changchun.id}", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["date"] == "2020-02-21" and body["node"] == "长春社区"
    flat = {k: v for s in body["sections"] for k, v in s["items"].items()}
    expected = await _independent(bot, "长春社区")
    assert {k: flat[k] for k in expected} == expected
    # Yesterday: one return, its check-in, nothing reopened yet.
    response = await client.get(f"/api/stats?node={changchun.id}&date=2020-02-20", headers=AUTH)
    flat = {k: v for s in response.json()["sections"] for k, v in s["items"].items()}
    assert (flat["今日返回"], flat["累计返回"], flat["已复工"], flat["今日打卡"],
            flat["今日营业"]) == (1, 1, 0, 10, 4)
    assert (await client.get("/api/stats?node=999", headers=AUTH)).status_code == 404
    bad = await client.get(f"/api/stats?node={changchun.id}&date=2020-13-01", headers=AUTH)
    assert bad.status_code == 422
    # A number is not a day: pydantic alone would read it as a Unix timestamp (1970-01-01).
    for spelt in ("0", "1582243200", "20200220", "2020-2-20"):
        bad = await client.get(f"/api/stats?node={changchun.id}&date={spelt}", headers=AUTH)
        assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text, (spelt, bad.text)
    # The first day a date holds starts in year 0 in UTC (Shanghai is ahead): out of range.
    first = await client.get(f"/api/stats?node={changchun.id}&date=0001-01-01", headers=AUTH)
    assert first.status_code == 422 and "between 0001-01-02" in first.text, first.text
    assert (await client.get(f"/api/stats?node={changchun.id}&date=0001-01-02",
                             headers=AUTH)).status_code == 200
    future = await client.get(f"/api/stats?node={changchun.id}&date=2020-03-01", headers=AUTH)
    # Well-formed, so not a 422 (the schema cannot know today): nothing to find yet.
    assert future.status_code == 404 and "future" in future.text
    assert (await client.get(f"/api/stats?node={changchun.id}")).status_code == 401


async def test_export_has_merged_headers_and_text_phones(bot, chat: Chat, chain: DemoChain,
                                                         clock, tmp_path: Path):
    await _busy_day(chat, chain, clock)
    async with bot.session() as s:
        root = (await s.execute(select(Node).where(Node.name == "福田街道"))).scalar_one()
        figures, regs = await stats_export.collect(s, root=root, day=START.date(),
                                                   zone=SHANGHAI, now=bot.now())
    path = tmp_path / "stats.xlsx"
    stats_export.write(path, figures=figures, reopenings=regs, zone=SHANGHAI)
    book = CalamineWorkbook.from_path(str(path))
    sheet = book.get_sheet_by_index(0).to_python()
    labels = [label for s in stats.SECTIONS for label, _ in (await _labels(bot, s))]
    assert sheet[2][2:] == labels
    names = [row[0] for row in sheet[3:]]
    assert names == ["福田街道", "长春社区", "长春第一作战小组", "第一小组房东群"]
    # The root's row equals what 统计 says for it.
    expected = await _independent(bot, "福田街道")
    got = dict(zip(labels, sheet[3][2:], strict=True))
    assert {k: int(got[k]) for k in expected} == expected
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert xml.count("<mergeCell ") >= 2 + len([s for s in stats.SECTIONS])
    regs_sheet = book.get_sheet_by_index(1).to_python()
    assert regs_sheet[1][4] == "138****5678" and isinstance(regs_sheet[1][4], str)
    with zipfile.ZipFile(path) as z:
        everything = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    assert not FULL_MOBILE.search(everything)


async def _labels(bot: BotApp, section: stats.Section) -> list[tuple[str, int]]:
    async with bot.session() as s:
        return await section.compute(s, [], stats.Day.of(START.date(), zone=SHANGHAI,
                                                          now=START))


def test_cli_stats_export(tmp_path: Path):
    cli = Cli(tmp_path)
    _ok(cli("chain", "import", str(DEMO_CHAIN)))
    out = tmp_path / "report.xlsx"
    result = _ok(cli("stats", "export", "--date", "2020-02-21", "--node", "长春社区",
                     "--output", str(out)))
    assert "wrote" in result.stdout and out.is_file()
    sheet = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    assert sheet[3][0] == "长春社区" and sheet[1][0] == "单位"
    bad = cli("stats", "export", "--date", "21.2.2020", "--node", "长春社区")
    assert bad.returncode == 2 and "--date" in bad.stderr
    first = cli("stats", "export", "--date", "0001-01-01", "--node", "长春社区")
    assert first.returncode == 2 and "between 0001-01-02" in first.stderr, first.stderr
    missing = cli("stats", "export", "--date", "2020-02-21", "--node", "没有这个")
    assert missing.returncode == 2 and "--node" in missing.stderr


async def test_the_daily_rollup_carries_the_numbers(bot, chat: Chat, chain: DemoChain, clock,
                                                    transport):
    from schedules.jobs import post_daily_rollup

    await _busy_day(chat, chain, clock)
    clock.set(START.replace(hour=20))
    mark = len(transport.sent)
    assert await post_daily_rollup(bot) == 3
    await bot.idle()
    [text] = [s.text for s in transport.sent[mark:] if s.room_id == chain.community_group]
    expected = await _independent(bot, "长春社区")
    assert text.startswith("【每日汇总 2月21日】长春社区")
    assert (f"商铺：商铺总数 {expected['商铺总数']}，已复工 {expected['已复工']}，"
            f"待审核 {expected['待审核']}，今日打卡 {expected['今日打卡']}，"
            f"今日营业 {expected['今日营业']}") in text.splitlines()
    assert (f"人员：作战小组 {expected['作战小组']}，小组成员 {expected['小组成员']}，"
            f"房东 {expected['房东']}") in text.splitlines()


async def test_a_whole_chain_counts_the_same_as_its_nodes_listed(bot, chain: DemoChain):
    # A city's figures (the chain's only root: chain.Subtree.everything) are read by other
    # statements than a subtree's (the indexes that hold the rows in order or as a range);
    # over stays ended, ended later, returned later, watched or not, with a fever, a tenant
    # at two places and a landlord with two groups, both give the same figures, today and on
    # an earlier day.
    now = START
    async with bot.session() as s, s.begin():
        leaves = list((await s.execute(select(Node.id).where(Node.tier == 5)
                                       .order_by(Node.id))).scalars())
        people = [Person(name=f"人{i}", created_at=now) for i in range(6)]
        s.add_all(people)
        await s.flush()
        a, b, c, d, e, landlord = (p.id for p in people)
        s.add_all([Membership(person_id=landlord, node_id=leaf, role="landlord",
                              created_at=now - timedelta(days=3)) for leaf in leaves[:2]])

        def stay(tenant: int, leaf: int, created: timedelta, watch: timedelta, *,
                 ended: timedelta | None = None, fever: bool = False) -> TenantStay:
            return TenantStay(tenant_id=tenant, node_id=leaf, arrived_at=now + created,
                              watch_until=now + watch, fever=fever, created_at=now + created,
                              ended_at=None if ended is None else now + ended)

        s.add_all([
            stay(a, leaves[0], -timedelta(days=2), timedelta(days=12), fever=True),
            stay(a, leaves[1], -timedelta(hours=2), timedelta(days=14)),   # a's second place
            stay(b, leaves[0], -timedelta(days=20), -timedelta(days=6)),   # watch over
            stay(c, leaves[1], -timedelta(days=5), timedelta(days=9),
                 ended=-timedelta(days=1)),                                # ended yesterday
            stay(d, leaves[0], -timedelta(hours=1), timedelta(days=14), fever=True,
                 ended=timedelta(hours=1)),                                # ends later today
            stay(e, leaves[1], timedelta(days=1), timedelta(days=15)),     # returns tomorrow
        ])
    async with bot.session() as s:
        city = (await s.execute(select(Node).where(Node.name == "福田街道"))).scalar_one()
        whole = await whole_tree(s, city)
        assert whole.everything
        listed = list((await s.execute(select(Node.id))).scalars())
        sections = [section for section in stats.SECTIONS
                    if section.key in ("people", "tenants")]
        for at in (now, now - timedelta(days=1)):
            figures = []
            for ids in (whole, listed):
                computed = await stats.compute(s, node=city, day=at.date(), zone=SHANGHAI,
                                               now=now, node_ids=ids, sections=sections)
                figures.append(dict(item for _, items in computed.sections for item in items))
            by_root, by_list = figures
            assert by_root == by_list, at
            if at == now:  # the day's facts, spelled out once
                assert {k: by_root[k] for k in ("登记租客", "今日返回", "累计返回", "居家观察",
                                                "发热")} \
                    == {"登记租客": 3, "今日返回": 2, "累计返回": 5, "居家观察": 3, "发热": 2}
