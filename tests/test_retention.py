"""Retention (issue 10): the daily purge deletes or anonymises what is past its period, on the
right day and not before, once per missed day after downtime; `tierbot purge --dry-run`
changes nothing; `tierbot campaign end` leaves only the chain and the statistics."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, select

from bot import cli, crypto, pii
from bot.app import BotApp
from bot.config import ConfigError, Settings
from bot.services import retention
from models import (
    AccessLog,
    Base,
    Contact,
    Group,
    InboundMessage,
    JobRun,
    LandlordReport,
    Membership,
    Node,
    OutboxMessage,
    Person,
    PointsEvent,
    PointsStanding,
    PointsTotal,
    PointsWeek,
    TemperatureReading,
    TenantStay,
)
from schedules import periods
from schedules.jobs import close_points_week, fixed_job, post_daily_rollup, purge_personal_data
from tests.conftest import SHANGHAI, TEST_KEYRING, Chat, DemoChain, count
from tests.test_cli import TIERBOT

# What the campaign scenario says about tenants: none of it may survive `campaign end`.
TENANT_MOBILES = ("13800138000", "13905791234", "13611112222")
# A tenant's mobile is stored only as its blind index, mask and sealed value (never plain):
# the traces of one are its index and mask.
TENANT_TRACES = ("王明", "潘先生", "赵丽", "李娜", "湖南长沙", "江西上饶", "安徽阜阳",
                 "sim-panxiansheng", "sim-wangming", "sim-zhaoli", "sim-new-lina", "买菜",
                 *(crypto.blind_index("mobile", m) for m in TENANT_MOBILES),
                 *(pii.mask_mobile(m) for m in TENANT_MOBILES))


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2020, month, day, hour, minute, tzinfo=SHANGHAI)


async def snapshot(app: BotApp) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in id order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with app.session() as s:
        for table in Base.metadata.sorted_tables:
            rows = (await s.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def flat_text(snap: dict[str, list[tuple[Any, ...]]]) -> str:
    return "\n".join(repr(row) for rows in snap.values() for row in rows)


async def _stays(app: BotApp) -> list[TenantStay]:
    async with app.session() as s:
        return list((await s.execute(select(TenantStay).order_by(TenantStay.id))).scalars())


async def test_readings_and_stays_go_30_days_after_the_watch_ends_not_before(
        bot: BotApp, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    await chat.say(chain.tenant_group, chain.landlord, "体温 王明 36.8")
    clock.set(at(2, 25, 10))
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, chain.landlord, "体温 李娜 36.6")
    first, second = await _stays(bot)
    assert await count(bot, TemperatureReading) == 2
    assert await count(bot, LandlordReport, LandlordReport.stay_id == first.id) >= 1

    due = first.watch_until + timedelta(days=30)
    fire = fixed_job(bot.settings, "retention-purge").next_fire(SHANGHAI, now=due)
    assert fire is not None and fire - due < timedelta(days=1)
    # The runs up to the first one after the stay is 30 days past its watch keep it.
    clock.set(fire - timedelta(days=1))
    assert (await purge_personal_data(bot))[:2] == (0, 0)
    clock.set(fire - timedelta(minutes=1))
    assert (await purge_personal_data(bot))[:2] == (0, 0)
    assert [s.id for s in await _stays(bot)] == [first.id, second.id]
    assert await count(bot, TemperatureReading) == 2
    # That run takes it, and only it.
    clock.set(fire)
    assert (await purge_personal_data(bot))[:2] == (1, 1)
    assert [s.id for s in await _stays(bot)] == [second.id]
    assert await count(bot, TemperatureReading, TemperatureReading.stay_id == first.id) == 0
    assert await count(bot, TemperatureReading, TemperatureReading.stay_id == second.id) == 1
    # The report that registered it stays (points were counted from it), without the link.
    assert await count(bot, LandlordReport, LandlordReport.stay_id == first.id) == 0
    # Again the same day: nothing more.
    assert await purge_personal_data(bot) == (0, 0, 0, 0, 0)


async def test_a_tenancy_ended_early_counts_from_its_end(bot: BotApp, chat: Chat,
                                                         chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    first = (await _stays(bot))[0]
    async with bot.session() as s, s.begin():
        stay = await s.get(TenantStay, first.id)
        assert stay is not None
        stay.ended_at = clock.now() + timedelta(days=1)
    counts = await _purge_at(bot, first.watch_until + timedelta(days=29))
    assert counts.get("stays") == 1 and [s.id for s in await _stays(bot)] != [first.id]


async def _purge_at(app: BotApp, now: datetime) -> retention.Counts:
    async with app.session() as s, s.begin():
        return await retention.purge_due(s, now=now, settings=app.settings.retention)


async def test_the_newest_stay_and_message_stay_anonymised_so_their_ids_never_come_back(
        bot: BotApp, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王明 13800138000 来自湖南长沙 体温36.5")
    [stay] = await _stays(bot)
    newest_inbound = await count(bot, InboundMessage)
    later = stay.watch_until + timedelta(days=31)
    counts = await _purge_at(bot, later)
    assert (counts.get("readings"), counts.get("stays")) == (1, 1)
    [kept] = await _stays(bot)
    assert kept.id == stay.id and kept.origin is None and not kept.fever
    assert kept.building_id is None and kept.self_reported_at is None
    async with bot.session() as s:
        rows = list((await s.execute(select(InboundMessage))).scalars())
    assert len(rows) == 1 and rows[0].sender_id == rows[0].room_id == rows[0].command == ""
    assert counts.get("inbound") == newest_inbound
    # Counted once: the next day finds nothing more.
    assert (await _purge_at(bot, later + timedelta(days=1))).as_tuple() == (0, 0, 0, 0, 0)
    # New rows get new ids, and then the anonymised ones go.
    clock.set(later)
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    [_, new] = await _stays(bot)
    assert new.id > stay.id
    async with bot.session() as s:
        ids = list((await s.execute(select(InboundMessage.id))).scalars())
    assert max(ids) > rows[0].id
    await _purge_at(bot, later + timedelta(days=8))
    assert [s.id for s in await _stays(bot)] == [new.id]
    async with bot.session() as s:
        assert rows[0].id not in set((await s.execute(select(InboundMessage.id))).scalars())


async def test_missed_days_are_purged_once_each_as_of_their_own_day(
        bot: BotApp, chat: Chat, chain: DemoChain, clock):
    job = fixed_job(bot.settings, "retention-purge")
    for day in (21, 22, 23):
        clock.set(at(2, day, 10))
        await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    assert await count(bot, InboundMessage) == 3
    assert await count(bot, LandlordReport, LandlordReport.inbound_id.is_not(None)) == 3
    clock.set(at(2, 25, 4))
    [ran] = await periods.catch_up(bot, job)
    assert (ran.period, ran.counts) == ("2020-02-25", (0, 0, 0, 0, 0))
    # Down from 25 Feb to 3 Mar: each day once, in order, each as of its own 03:30.
    clock.set(at(3, 3, 4))
    runs = await periods.catch_up(bot, job)
    assert [r.period for r in runs] == [f"2020-02-{d}" for d in (26, 27, 28, 29)] + [
        "2020-03-01", "2020-03-02", "2020-03-03"]
    inbound = [r.counts[retention.PURGE_KINDS.index("inbound")] for r in runs]
    # 29 Feb (a leap year) 03:30 takes the 21st, 1 Mar the 22nd, 2 Mar the 23rd (the newest,
    # anonymised); a run as of the catch-up's time would have taken all three at once.
    assert inbound == [0, 0, 0, 1, 1, 1, 0]
    assert await count(bot, InboundMessage) == 1
    assert await count(bot, InboundMessage, InboundMessage.sender_id != "") == 0
    # The reports stay, without the link to the purged messages.
    assert await count(bot, LandlordReport) == 3
    assert await count(bot, LandlordReport, LandlordReport.inbound_id.is_not(None)) == 0
    assert await periods.catch_up(bot, job) == []
    async with bot.session() as s:
        keys = list((await s.execute(select(JobRun.key).where(JobRun.job == job.name)
                                     .order_by(JobRun.key))).scalars())
    assert keys == ["2020-02-25"] + [r.period for r in runs]


async def test_outbox_text_goes_after_30_days_and_statistics_keep_no_personal_data(
        bot: BotApp, chat: Chat, chain: DemoChain, clock, transport):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 37.9")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 代办 帮王明买菜")
    clock.set(at(2, 21, 20))
    assert await post_daily_rollup(bot) > 0
    clock.set(at(2, 24, 9))
    assert await close_points_week(bot) > 0
    await bot.idle()
    # The statistics kept for good: roll-up text and standings hold no tenant, no number.
    async with bot.session() as s:
        rollups = list((await s.execute(select(OutboxMessage.text).where(
            OutboxMessage.source == "rollup"))).scalars())
        standings = (await s.execute(select(PointsStanding))).scalars().all()
    assert rollups and all(t for t in rollups)
    for word in TENANT_TRACES + ("董宝明", "13757912345"):
        assert not any(word in (t or "") for t in rollups), word
    assert standings
    assert {c.name for c in PointsStanding.__table__.columns
            if not isinstance(c.type, Integer)} == {"board"}
    assert {s.board for s in standings} <= {"", "red", "black"}

    before = await snapshot(bot)
    sent_with_text = await count(bot, OutboxMessage, OutboxMessage.text.is_not(None),
                                 OutboxMessage.source != "rollup")
    assert sent_with_text > 0
    # 29 days after the last send: nothing; 31 days: every text but the roll-ups'.
    last = at(2, 24, 9)
    assert (await _purge_at(bot, last + timedelta(days=29))).get("outbox_text") < sent_with_text
    counts = await _purge_at(bot, last + timedelta(days=31))
    assert await count(bot, OutboxMessage, OutboxMessage.text.is_not(None),
                       OutboxMessage.source != "rollup") == 0
    assert counts.get("outbox_text") > 0
    after = await snapshot(bot)
    assert after["points_standing"] == before["points_standing"]
    assert after["points_week"] == before["points_week"]
    async with bot.session() as s:
        assert sorted((await s.execute(select(OutboxMessage.text).where(
            OutboxMessage.source == "rollup"))).scalars()) == sorted(rollups)


async def test_a_pending_message_keeps_its_text(bot: BotApp, chain: DemoChain, clock):
    from bot.services import outbox

    async with bot.session() as s, s.begin():
        group = (await s.execute(select(Group).limit(1))).scalar_one()
        await outbox.queue(s, group_id=group.id, source="test", now=clock.now(),
                           text="稍后发送")
        row = (await s.execute(select(OutboxMessage).where(OutboxMessage.source == "test"))
               ).scalar_one()
        row.status = "pending"
    await _purge_at(bot, clock.now() + timedelta(days=400))
    assert await count(bot, OutboxMessage, OutboxMessage.text == "稍后发送") == 1


async def test_the_access_log_is_purged_after_three_years(bot: BotApp, clock):
    from bot.services import people

    async with bot.session() as s, s.begin():
        person = await people.create_person(s, name="许某", now=clock.now())
        s.add_all([AccessLog(at=clock.now() - timedelta(days=age), who="cli", action="reveal",
                             person_id=person.id, field="mobile", why=f"age {age}")
                   for age in (1096, 1094, 10)])
    counts = await _purge_at(bot, clock.now())
    assert counts.get("access_log") == 1
    async with bot.session() as s:
        assert sorted((await s.execute(select(AccessLog.why))).scalars()) == [
            "age 10", "age 1094"]


# --- the CLI -------------------------------------------------------------------------------


def _cli(tmp_path: Path, url: str, *args: str, stdin: str = ""
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERBOT_")}
    env["TIERBOT_DATABASE_URL"] = url
    env["TIERBOT_KEYRING"] = TEST_KEYRING.to_json()  # the suite's keys, as in-process
    return subprocess.run([TIERBOT, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120, check=False, input=stdin)


async def _campaign(bot: BotApp, chat: Chat, chain: DemoChain, clock) -> None:
    """Tenants return, report temperatures (one fever), ask, get claimed; landlords report;
    a notice; the day's roll-up and the week's close."""
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王明 13800138000 来自湖南长沙 体温36.5")
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 38.1")
    await chat.say(chain.tenant_group, chain.tenant, "反馈 潘先生 家里没有口罩了")
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, "sim-new-lina", "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 代办 帮王明买菜")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请各房东今日完成楼道消毒")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    clock.set(at(2, 21, 20))
    await post_daily_rollup(bot)
    clock.set(at(2, 24, 9))
    await close_points_week(bot)
    await bot.idle()


async def test_purge_dry_run_changes_nothing_and_prints_no_personal_data(
        bot: BotApp, chat: Chat, chain: DemoChain, clock, tmp_path: Path, settings: Settings):
    await _campaign(bot, chat, chain, clock)
    before = await snapshot(bot)
    dry = await asyncio.to_thread(_cli, tmp_path, settings.database_url, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert await snapshot(bot) == before
    lines = dict(line.strip().split(": ") for line in dry.stdout.splitlines()[1:])
    assert set(lines) == set(retention.PURGE_KINDS)
    # Run in 2026, everything of 2020 is due.
    assert all(int(lines[k]) > 0 for k in ("readings", "stays", "inbound", "outbox_text"))
    for word in TENANT_TRACES:
        assert word not in dry.stdout + dry.stderr
    done = await asyncio.to_thread(_cli, tmp_path, settings.database_url, "purge")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == dry.stdout.splitlines()[1:]
    assert await snapshot(bot) != before
    again = await asyncio.to_thread(_cli, tmp_path, settings.database_url, "purge")
    assert all(line.endswith(": 0") for line in again.stdout.splitlines()[1:]), again.stdout


async def test_campaign_end_asks_first_and_a_refusal_changes_nothing(
        bot: BotApp, chat: Chat, chain: DemoChain, clock, tmp_path: Path, settings: Settings,
        monkeypatch):
    await _campaign(bot, chat, chain, clock)
    before = await snapshot(bot)
    # Not on a terminal and no --yes: refused.
    no = await asyncio.to_thread(_cli, tmp_path, settings.database_url, "campaign", "end",
                                 stdin="end campaign\n")
    assert no.returncode == 2 and "--yes" in no.stderr
    dry = await asyncio.to_thread(_cli, tmp_path, settings.database_url, "campaign", "end",
                                  "--dry-run")
    async with bot.session() as s:
        people = await retention.campaign_people(s)
    assert len(people) >= 5
    assert dry.returncode == 0 and f"people: {len(people)}" in dry.stdout, dry.stdout
    assert await snapshot(bot) == before
    # On a terminal, anything but the phrase is a no.
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    with pytest.raises(ConfigError, match="not confirmed"):
        await cli._campaign_end(settings, yes=False, dry_run=False, ask=lambda _: "yes")
    assert await snapshot(bot) == before


async def test_campaign_end_leaves_the_chain_and_the_statistics_only(
        bot: BotApp, chat: Chat, chain: DemoChain, clock, tmp_path: Path, settings: Settings):
    await _campaign(bot, chat, chain, clock)
    before = await snapshot(bot)
    text_before = flat_text(before)
    for word in TENANT_TRACES:
        if word != "sim-new-lina":
            assert word in text_before, f"the scenario should leave {word!r} to purge"
    assert not any(m in text_before for m in TENANT_MOBILES)
    async with bot.session() as s:
        rollups = sorted((await s.execute(select(OutboxMessage.text).where(
            OutboxMessage.source == "rollup"))).scalars())
        landlords = (await s.execute(select(Person.id, Person.name, Person.mobile_bidx).join(
            Membership, Membership.person_id == Person.id).where(
            Membership.role != "tenant").distinct().order_by(Person.id))).all()
        people = await retention.campaign_people(s)
        points = sorted((await s.execute(select(
            PointsEvent.id, PointsEvent.landlord_id, PointsEvent.delta, PointsEvent.counts,
            PointsEvent.status, PointsEvent.occurred_at))).all())
    tenant_roles = await count(bot, Membership, Membership.role == "tenant")
    assert rollups and landlords and len(people) >= 5 and tenant_roles >= 3

    done = await asyncio.to_thread(_cli, tmp_path, settings.database_url, "campaign", "end",
                                   "--yes")
    assert done.returncode == 0, done.stderr
    after = await snapshot(bot)
    # Nothing a tenant said or was, anywhere in the database.
    text_after = flat_text(after)
    for word in TENANT_TRACES:
        assert word not in text_after, word
    # The chain, its other people, notices and the statistics are as they were.
    for name in ("node", "chat_group", "notice", "points_week", "points_standing",
                 "points_total", "building", "flat", "shop", "notice_schedule"):
        assert after[name] == before[name], name
    assert await count(bot, Node) == len(before["node"])
    assert await count(bot, Group) == len(before["chat_group"])
    assert await count(bot, Person) == len(before["person"])
    assert await count(bot, Membership) == len(before["membership"]) - tenant_roles
    assert await count(bot, Membership, Membership.role == "tenant") == 0
    async with bot.session() as s:
        kept = (await s.execute(select(Person.id, Person.name, Person.mobile_bidx).join(
            Membership, Membership.person_id == Person.id).where(
            Membership.role != "tenant").distinct().order_by(Person.id))).all()
        assert kept == landlords
        assert sorted((await s.execute(select(OutboxMessage.text).where(
            OutboxMessage.source == "rollup"))).scalars()) == rollups
        tenants = list((await s.execute(select(Person).where(
            Person.name == "（已清除）"))).scalars())
        assert sorted((await s.execute(select(
            PointsEvent.id, PointsEvent.landlord_id, PointsEvent.delta, PointsEvent.counts,
            PointsEvent.status, PointsEvent.occurred_at))).all()) == points
    assert sorted(p.id for p in tenants) == people
    assert all(p.mobile_bidx is None and p.mobile_enc is None and p.mobile_mask is None
               and p.id_number_bidx is None and p.id_number_enc is None for p in tenants)
    assert await count(bot, TemperatureReading) == 0
    assert await count(bot, TenantStay) <= 1
    assert await count(bot, TenantStay, TenantStay.origin.is_not(None)) == 0
    assert await count(bot, InboundMessage, InboundMessage.sender_id != "") == 0
    assert await count(bot, Contact, Contact.person_id.in_([p.id for p in tenants])) == 0
    assert await count(bot, LandlordReport, LandlordReport.detail != "") == 0
    assert await count(bot, PointsEvent, PointsEvent.evidence != "") == 0
    assert await count(bot, OutboxMessage, OutboxMessage.text.is_not(None),
                       OutboxMessage.source != "rollup") == 0
    assert await count(bot, PointsWeek) == len(before["points_week"])
    assert await count(bot, PointsTotal) == len(before["points_total"])
    assert await count(bot, JobRun, JobRun.job == "campaign-end") == 1
    # The bot still works for the chain afterwards.
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    assert chat.replies(chain.tenant_group)
