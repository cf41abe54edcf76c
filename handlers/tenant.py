"""租客返回 and 体温: a tenant's return and home-watch readings, in the tier-5 group."""

from __future__ import annotations

from datetime import timedelta

from bot import pii, texts
from bot.domain import UserError
from bot.grammar import Temperature, TenantReturn
from bot.router import Context, Reply, Router
from bot.services import people, tenant
from models import Role

router = Router(name=__name__)

TENANT_TIERS = {5}


async def _landlord_mentions(ctx: Context) -> tuple[str, ...]:
    assert ctx.node is not None
    ids: list[str] = []
    for landlord in await people.holders(ctx.session, node_id=ctx.node.id, role=Role.LANDLORD):
        ids += await people.contact_ids(ctx.session, person_id=landlord.id,
                                        transport=ctx.message.transport)
    return tuple(ids)


@router.command(TenantReturn, tiers=TENANT_TIERS)
async def on_tenant_return(cmd: TenantReturn, ctx: Context) -> Reply:
    """租客返回 姓名 手机号 来自哪里 [到达时间] [体温] — 登记返回，例：租客返回 王明 13800138000 来自湖南长沙 2月20日凌晨4点 体温36.5"""
    assert ctx.node is not None
    is_landlord = Role.LANDLORD in ctx.roles
    if cmd.landlord_form and not is_landlord:
        raise UserError(texts.General.NOT_PERMITTED.format(command="房东上报"))
    staff = bool(ctx.memberships) and any(m.role != Role.TENANT for m in ctx.memberships)
    result = await tenant.register_return(
        ctx.session, node=ctx.node, cmd=cmd, sender=ctx.sender, on_behalf=is_landlord or staff,
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
            arrived=tenant.local_datetime(result.stay.arrived_at, ctx.zone), until=until)
    if cmd.temperature is not None:
        text += texts.Tenant.RETURN_OK_TEMPERATURE.format(value=cmd.temperature)
    if result.fever:
        text += texts.Tenant.RETURN_FEVER
    stay = result.stay
    if stay.self_reported_at is not None and stay.landlord_reported_at is None:
        # The landlord must confirm within late_return_hours or lose points: tell them now.
        points = ctx.settings.points
        rule = points.rule_for("auto:late_return")
        text += texts.Tenant.RETURN_TELL_LANDLORD.format(deadline=tenant.local_datetime(
            stay.self_reported_at + timedelta(hours=points.late_return_hours), ctx.zone))
        if rule is not None:
            text += texts.Tenant.RETURN_TELL_LANDLORD_LATE.format(points=abs(rule.delta))
        return Reply(text, await _landlord_mentions(ctx))
    if result.fever:
        return Reply(text, await _landlord_mentions(ctx))
    return Reply(text)


@router.command(Temperature, tiers=TENANT_TIERS)
async def on_temperature(cmd: Temperature, ctx: Context) -> Reply:
    """体温 36.6 — 居家观察期间每日报体温（房东代报：体温 姓名 36.6）"""
    assert ctx.node is not None
    result = await tenant.record_temperature(
        ctx.session, node=ctx.node, cmd=cmd, sender=ctx.sender,
        as_landlord=Role.LANDLORD in ctx.roles, now=ctx.now(), zone=ctx.zone,
        fever_threshold=ctx.settings.tenants.fever_threshold, inbound_id=ctx.inbound_id)
    name = pii.mask_name(result.tenant.name)
    if result.fever:
        text = texts.Tenant.TEMP_FEVER.format(
            name=name, value=result.value, threshold=ctx.settings.tenants.fever_threshold)
        return Reply(text, await _landlord_mentions(ctx))
    return Reply(texts.Tenant.TEMP_OK.format(
        name=name, value=result.value, until=tenant.local_date(result.stay.watch_until, ctx.zone)))
