"""房东上报 and 我的租客: a landlord's reports and tenant list, in their tier-5 or tier-4 group."""

from __future__ import annotations

from bot import pii, texts
from bot.domain import UserError
from bot.grammar import LandlordReport, MyTenants
from bot.permission import LANDLORD
from bot.router import Context, Router
from bot.services import points, report, tenant
from models import Node, ReportKind, Role

router = Router(name=__name__)

LANDLORD_TIERS = {4, 5}


def _landlord_node_ids(ctx: Context) -> list[int]:
    assert ctx.node is not None
    if ctx.node.tier == 5:
        return [ctx.node.id]
    return [m.node_id for m in ctx.memberships
            if m.role == Role.LANDLORD and m.parent_id == ctx.node.id]


async def landlord_node(ctx: Context) -> Node:
    """The landlord's own tier-5 node (here, or the one below this tier-4 group)."""
    ids = _landlord_node_ids(ctx)
    if len(ids) != 1:
        raise UserError(texts.Report.WHICH_NODE)
    if ctx.node is not None and ctx.node.id == ids[0]:
        return ctx.node
    node = await ctx.session.get(Node, ids[0])
    assert node is not None
    return node


@router.command(LandlordReport, tiers=LANDLORD_TIERS, allow=LANDLORD)
async def on_landlord_report(cmd: LandlordReport, ctx: Context) -> str:
    """房东上报 消毒/代办/违规/调解/返回 [说明] — 房东上报，例：房东上报 代办 帮302租客买菜"""
    assert ctx.sender is not None
    node = await landlord_node(ctx)
    kind = ReportKind(cmd.kind)
    date = tenant.local_date(ctx.now(), ctx.zone)
    if kind == ReportKind.DISINFECT and await report.reported_on_day(
            ctx.session, node=node, kind=kind, now=ctx.now(), zone=ctx.zone):
        return texts.Report.DISINFECT_AGAIN.format(date=date)
    detail = pii.mask_text(cmd.detail)
    await report.add_report(ctx.session, landlord=ctx.sender, node=node, kind=kind,
                            detail=detail, inbound_id=ctx.inbound_id, now=ctx.now())
    await points.on_report(ctx.session, inbound_id=ctx.inbound_id,  # the 12-point rules
                           settings=ctx.settings.points, now=ctx.now(), zone=ctx.zone)
    return texts.Report.OK[kind].format(detail=detail or texts.Report.NO_DETAIL, date=date)


@router.command(MyTenants, tiers=LANDLORD_TIERS, allow=LANDLORD, reads_others=True)
async def on_my_tenants(cmd: MyTenants, ctx: Context) -> str:
    """我的租客 — 查看您的租客和居家观察情况（已隐去号码）"""
    ids = _landlord_node_ids(ctx)
    rows = await tenant.tenant_lines(ctx.session, node_ids=ids)
    if not rows:
        return texts.Tenant.LIST_EMPTY
    now = ctx.now()
    lines = []
    for index, row in enumerate(rows, 1):
        if row.fever and row.watch_until > now:
            status = texts.Tenant.STATUS_FEVER.format(value=row.last_reading or 0.0)
        elif row.watch_until > now:
            status = texts.Tenant.STATUS_WATCH.format(
                until=tenant.local_date(row.watch_until, ctx.zone))
        else:
            status = texts.Tenant.STATUS_DONE
        lines.append(texts.Tenant.LIST_LINE.format(
            index=index, name=pii.mask_name(row.name), mobile=row.mobile_mask or "",
            origin=row.origin or texts.Tenant.ORIGIN_UNKNOWN, status=status))
    watching = sum(1 for r in rows if r.watch_until > now)
    node_name = ctx.node.name if ctx.node is not None and len(ids) == 1 and ctx.node.tier == 5 \
        else texts.ROLE_NAMES[Role.LANDLORD]
    header = texts.Tenant.LIST_HEADER.format(node=node_name, count=len(rows), watching=watching)
    return "\n".join([header, *lines])
