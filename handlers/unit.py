"""企业登记, 员工登记, 企业日报, 工作卡: enterprises (in their community's and their own groups)
and key projects (in their task force group), and workers' temperatures."""

from __future__ import annotations

from datetime import timedelta

from bot import pii, texts, unit_texts
from bot.domain import UserError
from bot.grammar import EnterpriseRegister, EnterpriseReport, Temperature, WorkCard, WorkerRegister
from bot.permission import COMMUNITY_STAFF, LIAISON, PROJECT_LEAD
from bot.router import Context, Reply, Router
from bot.services import chain, people
from bot.services import unit as units
from bot.services.tenant import local_date, report_possible_fever
from models import InviteKind, NodeKind, Role

router = Router(name=__name__)


# The routes declare no tiers: their rules check the kind of node (enterprise, project), so a
# refusal anywhere names who uses the command rather than a tier (a team is also tier 3).
@router.command(EnterpriseRegister, allow=COMMUNITY_STAFF | LIAISON)
async def on_enterprise_register(cmd: EnterpriseRegister, ctx: Context) -> str:
    """企业登记 名称 地址:… 联络员:姓名 手机号 员工N人 车间:… 宿舍:… [已复工] — 企业建档（一企一档），例：企业登记 华鑫针织 地址:长春路12号 员工120人 已复工"""
    assert ctx.node is not None
    found = await units.register_enterprise(ctx.session, node=ctx.node, cmd=cmd, now=ctx.now(),
                                            zone=ctx.zone)
    t = unit_texts.Enterprise
    summary = units.describe_file(found)
    if not found.created:
        text = t.UPDATED.format(name=found.node.name, summary=summary)
    else:
        text = t.CREATED.format(name=found.node.name, summary=summary)
        if ctx.node.kind == NodeKind.COMMUNITY:
            # The enterprise's group and its liaison are bound by codes, never by a number.
            days = ctx.settings.invites.ttl_days
            ttl = timedelta(days=days)
            group = await chain.issue_invite(ctx.session, node=found.node, kind=InviteKind.GROUP,
                                             role=None, now=ctx.now(), ttl=ttl)
            person = await chain.issue_invite(ctx.session, node=found.node,
                                              kind=InviteKind.PERSON, role=Role.LIAISON,
                                              now=ctx.now(), ttl=ttl)
            text += t.INVITES.format(group_code=group.code, person_code=person.code, days=days)
    return text


def _mentioned(ctx: Context) -> tuple[str, ...]:
    """The contacts @-mentioned, other than the sender and the bot."""
    return tuple(c for c in ctx.message.mention_ids if c != ctx.message.sender_id)


@router.command(WorkerRegister, allow=LIAISON)
async def on_worker_register(cmd: WorkerRegister, ctx: Context) -> str:
    """员工登记 [@员工] 姓名 手机号 来自哪里 [返岗日期] [车间/宿舍] [居家观察/隔离] — 员工建卡（一人一卡），例：员工登记 张伟 13905790001 来自安徽阜阳 2月18日 一车间"""
    assert ctx.node is not None
    result = await units.register_worker(
        ctx.session, node=ctx.node, by=ctx.sender, cmd=cmd, transport=ctx.message.transport,
        mentioned=_mentioned(ctx), now=ctx.now(), zone=ctx.zone,
        watch_days=ctx.settings.tenants.home_watch_days,
        fever_threshold=ctx.settings.tenants.fever_threshold, inbound_id=ctx.inbound_id)
    t = unit_texts.Worker
    card = result.card
    health = (t.ISOLATED if card.health == "isolated" else
              t.WATCH.format(until=local_date(card.watch_until, ctx.zone))
              if card.watch_until else "")
    text = (t.REGISTERED if result.created else t.UPDATED).format(
        name=pii.mask_name(result.person.name), origin=card.origin or unit_texts.Enterprise.NONE,
        returned=f"{card.returned_on.month}月{card.returned_on.day}日" if card.returned_on else "",
        group=t.GROUP.format(group=result.group.name) if result.group else "", health=health)
    if result.linked:
        text += t.LINKED
    if result.fever:
        text += "\n" + t.TEMP_FEVER.format(name=pii.mask_name(result.person.name),
                                           value=cmd.temperature or 0,
                                           threshold=ctx.settings.tenants.fever_threshold)
    return text


async def on_worker_temperature(cmd: Temperature, ctx: Context) -> Reply:
    """体温 in an enterprise's group (routed by handlers.tenant.on_temperature)."""
    assert ctx.node is not None
    threshold = ctx.settings.tenants.fever_threshold
    as_liaison = LIAISON(ctx)
    try:
        result = await units.record_temperature(
            ctx.session, node=ctx.node, cmd=cmd, sender=ctx.sender, as_liaison=as_liaison,
            now=ctx.now(), zone=ctx.zone, fever_threshold=threshold, inbound_id=ctx.inbound_id)
    except UserError as exc:
        # A fever is never dropped for want of a card: the community hears of it.
        if cmd.value >= threshold and not as_liaison:
            reply = await worker_possible_fever(ctx, value=cmd.value)
            return Reply(f"{reply.text}（{exc.text}）", reply.mentions)
        raise
    name = pii.mask_name(result.person.name)
    if result.fever:
        return Reply(unit_texts.Worker.TEMP_FEVER.format(name=name, value=result.value,
                                                         threshold=threshold),
                     await _liaison_mentions(ctx))
    return Reply(unit_texts.Worker.TEMP_OK.format(name=name, value=result.value))


async def worker_possible_fever(ctx: Context, *, value: float | None) -> Reply:
    """A worker says they may have a fever: the community is told, the liaison mentioned."""
    assert ctx.node is not None
    enterprise = await units.enterprise_of(ctx.session, node=ctx.node)
    who = ctx.sender.name if ctx.sender is not None else ctx.message.sender_name
    await report_possible_fever(ctx.session, node=enterprise, name=who, value=value,
                                now=ctx.now(), zone=ctx.zone)
    text = unit_texts.Worker.MAYBE_FEVER.format(
        name=pii.mask_name(who),
        value=texts.Tenant.MAYBE_FEVER_VALUE.format(value=value) if value else "")
    return Reply(text, await _liaison_mentions(ctx))


async def _liaison_mentions(ctx: Context) -> tuple[str, ...]:
    assert ctx.node is not None
    enterprise = await units.enterprise_of(ctx.session, node=ctx.node)
    ids: list[str] = []
    for person in await chain.commanders(ctx.session, node=enterprise):
        ids += await people.contact_ids(ctx.session, person_id=person.id,
                                        transport=ctx.message.transport)
    return tuple(ids)


@router.command(EnterpriseReport, allow=LIAISON)
async def on_enterprise_report(cmd: EnterpriseReport, ctx: Context) -> str:
    """企业日报 在岗N 返岗N 隔离N 异常N — 企业每日报告，例：企业日报 在岗120 返岗3 隔离2 异常0"""
    assert ctx.node is not None
    filed = await units.file_report(ctx.session, node=ctx.node, by=ctx.sender, cmd=cmd,
                                    now=ctx.now(), zone=ctx.zone, inbound_id=ctx.inbound_id)
    enterprise = await units.enterprise_of(ctx.session, node=ctx.node)
    t = unit_texts.Report
    text = (t.CORRECTED if filed.corrected else t.OK).format(
        name=enterprise.name, date=local_date(ctx.now(), ctx.zone), on_duty=cmd.on_duty,
        returned=cmd.returned, isolated=cmd.isolated, anomalies=cmd.anomalies)
    if filed.told:
        text += t.ANOMALY_TOLD.format(anomalies=cmd.anomalies)
    return text


@router.command(WorkCard, allow=PROJECT_LEAD)
async def on_work_card(cmd: WorkCard, ctx: Context) -> str:
    """工作卡 在场N 新进N 异常N [问题:…] — 重点工程每日工作卡，例：工作卡 在场85 新进5 异常0 问题:口罩缺200个"""
    assert ctx.node is not None and ctx.group is not None
    filed = await units.file_work_card(ctx.session, node=ctx.node, group=ctx.group,
                                       by=ctx.sender, cmd=cmd, now=ctx.now(), zone=ctx.zone,
                                       inbound_id=ctx.inbound_id)
    t = unit_texts.Card
    text = (t.CORRECTED if filed.corrected else t.OK).format(
        name=ctx.node.name, date=local_date(ctx.now(), ctx.zone), on_site=cmd.on_site,
        arrivals=cmd.arrivals, anomalies=cmd.anomalies)
    if filed.told:
        text += t.ANOMALY_TOLD.format(anomalies=cmd.anomalies)
    if filed.tickets:
        text += t.TICKETS.format(ids="、#".join(str(x.id) for x in filed.tickets))
    return text
