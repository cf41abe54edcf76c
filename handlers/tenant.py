"""租客返回 and 体温: a tenant's return and home-watch readings, in the tier-5 group."""

from __future__ import annotations

from datetime import timedelta

from bot import pii, texts
from bot.domain import UserError
from bot.grammar import HealthMention, Temperature, TenantReturn
from bot.permission import LANDLORD_FORM
from bot.router import Context, Reply, Router
from bot.services import people, tenant
from bot.services import unit as units
from handlers import unit as unit_handlers
from handlers.landlord import landlord_node
from models import Node, Role

router = Router(name=__name__)

TENANT_TIERS = {5}


def _health_tiers(ctx: Context) -> set[int]:
    """体温 and health words in tenant groups, and in an enterprise's groups (its workers)."""
    node = ctx.node
    if node is not None and node.kind in units.ENTERPRISE_KINDS:
        return TENANT_TIERS | {node.tier}
    return TENANT_TIERS


def _in_enterprise(ctx: Context) -> bool:
    return ctx.node is not None and ctx.node.kind in units.ENTERPRISE_KINDS


def _return_tiers(ctx: Context) -> set[int]:
    """租客返回 in tenant groups; the landlord's 房东上报 返回 also in the tier-4 group he sits
    in (like his other reports)."""
    return {4, 5} if getattr(ctx.command, "landlord_form", False) else TENANT_TIERS


async def _landlord_mentions(ctx: Context, node: Node | None = None) -> tuple[str, ...]:
    node = node or ctx.node
    assert node is not None
    return tuple(await people.holder_contact_ids(ctx.session, node_id=node.id,
                                                 role=Role.LANDLORD,
                                                 transport=ctx.message.transport))


@router.command(TenantReturn, tiers=_return_tiers, allow=LANDLORD_FORM)
async def on_tenant_return(cmd: TenantReturn, ctx: Context) -> Reply:
    """租客返回 姓名 手机号 来自哪里 [到达时间] [体温] — 登记返回，例：租客返回 王明 13800138000 来自湖南长沙 2月20日凌晨4点 体温36.5"""
    assert ctx.node is not None
    is_landlord = Role.LANDLORD in ctx.roles
    staff = bool(ctx.memberships) and any(m.role != Role.TENANT for m in ctx.memberships)
    # In the tier-4 group (房东上报 返回 only): the return belongs to the landlord's own place.
    node = ctx.node if ctx.node.tier == 5 else await landlord_node(ctx)
    result = await tenant.register_return(
        ctx.session, node=node, cmd=cmd, sender=ctx.sender, on_behalf=is_landlord or staff,
        by_landlord=is_landlord, transport=ctx.message.transport,
        contact_id=ctx.message.sender_id, display_name=ctx.message.sender_name, now=ctx.now(),
        zone=ctx.zone, watch_days=ctx.settings.tenants.home_watch_days,
        fever_threshold=ctx.settings.tenants.fever_threshold, inbound_id=ctx.inbound_id)
    name = pii.mask_name(result.tenant.name)
    until = tenant.local_date(result.stay.watch_until, ctx.zone)
    if result.outcome == "again":
        return Reply(texts.Tenant.RETURN_AGAIN.format(name=name, until=until))
    if result.outcome == "confirmed":
        text = texts.Tenant.RETURN_CONFIRMED.format(name=name, until=until)
    else:
        text = texts.Tenant.RETURN_OK.format(
            name=name, origin=result.stay.origin or texts.Tenant.ORIGIN_UNKNOWN,
            arrived=tenant.arrival_text(cmd.arrival, result.stay.arrived_at, ctx.zone),
            until=until)
    if cmd.name is None and ctx.sender is None and result.outcome == "new":
        text += texts.Tenant.RETURN_NAMED_BY_DISPLAY  # a greeting is never taken for a name
    if cmd.temperature is not None:
        text += texts.Tenant.RETURN_OK_TEMPERATURE.format(value=cmd.temperature)
    if result.fever:
        text += texts.Tenant.RETURN_FEVER
    if result.link is not None and result.claimed is not None:
        # The landlord says whether this contact is the tenant he registered (确认/不是).
        text += "\n" + texts.Identity.LINK_ASK.format(
            name=pii.mask_name(result.claimed.name), id=result.link.id,
            mobile=result.claimed.mobile_mask or "")
    stay = result.stay
    told = False
    if (result.link is None and stay.self_reported_at is not None
            and stay.landlord_reported_at is None):
        # The landlord must confirm within late_return_hours or lose points: tell them now
        # (a claimed link asks him 确认/不是 instead).
        points = ctx.settings.points
        rule = points.rule_for("auto:late_return")
        text += texts.Tenant.RETURN_TELL_LANDLORD.format(deadline=tenant.local_datetime(
            stay.self_reported_at + timedelta(hours=points.late_return_hours), ctx.zone))
        if rule is not None:
            text += texts.Tenant.RETURN_TELL_LANDLORD_LATE.format(points=abs(rule.delta))
        told = True
    if told or result.fever or result.link is not None:
        return Reply(text, result.landlord_contacts)
    return Reply(text)


async def _possible_fever(ctx: Context, *, name: str | None, value: float | None) -> Reply:
    """Tell the landlord (mentioned) and the team that someone may have a fever; ask to confirm."""
    assert ctx.node is not None
    is_landlord = Role.LANDLORD in ctx.roles
    who = (name if name and is_landlord else
           ctx.sender.name if ctx.sender is not None else
           ctx.message.sender_name or texts.ROLE_NAMES[Role.TENANT])
    await tenant.report_possible_fever(ctx.session, node=ctx.node, name=who, value=value,
                                       now=ctx.now(), zone=ctx.zone)
    text = texts.Tenant.MAYBE_FEVER.format(
        name=pii.mask_name(who),
        value=texts.Tenant.MAYBE_FEVER_VALUE.format(value=value) if value else "")
    return Reply(text, await _landlord_mentions(ctx))


@router.command(Temperature, tiers=_health_tiers)
async def on_temperature(cmd: Temperature, ctx: Context) -> Reply:
    """体温 36.6 — 居家观察期间每日报体温（房东代报：体温 姓名 36.6）"""
    assert ctx.node is not None
    if _in_enterprise(ctx):
        return await unit_handlers.on_worker_temperature(cmd, ctx)
    threshold = ctx.settings.tenants.fever_threshold
    try:
        result = await tenant.record_temperature(
            ctx.session, node=ctx.node, cmd=cmd, sender=ctx.sender,
            as_landlord=Role.LANDLORD in ctx.roles, now=ctx.now(), zone=ctx.zone,
            fever_threshold=threshold, inbound_id=ctx.inbound_id)
    except UserError as exc:
        # A fever is never dropped for want of a registration: the people who follow up hear it.
        if cmd.value >= threshold and Role.LANDLORD not in ctx.roles:
            reply = await _possible_fever(ctx, name=cmd.name, value=cmd.value)
            return Reply(f"{reply.text}（{exc.text}）", reply.mentions)
        raise
    name = pii.mask_name(result.tenant.name)
    if result.fever:
        text = texts.Tenant.TEMP_FEVER.format(
            name=name, value=result.value, threshold=ctx.settings.tenants.fever_threshold)
        return Reply(text, await _landlord_mentions(ctx))
    return Reply(texts.Tenant.TEMP_OK.format(
        name=name, value=result.value, until=tenant.local_date(result.stay.watch_until, ctx.zone)))


@router.command(HealthMention, tiers=_health_tiers, quiet=True)
async def on_health_mention(cmd: HealthMention, ctx: Context) -> Reply:
    """发烧、咳嗽等情况 — 如实告知，房东和网格员会跟进；报体温请发：体温 36.5"""
    threshold = ctx.settings.tenants.fever_threshold
    if cmd.fever or (cmd.value is not None and cmd.value >= threshold):
        if _in_enterprise(ctx):
            return await unit_handlers.worker_possible_fever(ctx, value=cmd.value)
        return await _possible_fever(ctx, name=cmd.name, value=cmd.value)
    return Reply(texts.Tenant.HEALTH_HINT)
