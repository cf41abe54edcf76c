"""打卡/巡查 and 复工登记/确认/审核/列表: the shop-row captain's day and shops reopening."""

from __future__ import annotations

from bot import pii, texts
from bot.domain import UserError
from bot.grammar import (
    BareCheckin,
    ReopenConfirm,
    ReopenList,
    ReopenRegister,
    ReopenReview,
    ShopCheckin,
)
from bot.permission import COMMUNITY_REVIEWER, ROW_CAPTAIN, SHOP_ROW_GROUP, STAFF
from bot.router import Context, Reply, Router
from bot.services import chain
from bot.services import shop as shops
from models import Node, Role

router = Router(name=__name__)


async def _row_node(ctx: Context) -> Node:
    """The captain's row: this group's node, or the one row below this tier-4 group."""
    assert ctx.node is not None
    if ctx.node.tier == 5:
        return ctx.node
    ids = [m.node_id for m in ctx.memberships
           if m.role == Role.CAPTAIN and m.parent_id == ctx.node.id]
    if len(ids) != 1:
        raise UserError(texts.Shop.WHICH_ROW)
    node = await ctx.session.get(Node, ids[0])
    assert node is not None
    return node


async def _checkin(cmd: ShopCheckin, ctx: Context) -> Reply:
    node = await _row_node(ctx)
    summary = await shops.record_checkin(
        ctx.session, node=node, cmd=cmd, by=ctx.sender, now=ctx.now(), zone=ctx.zone,
        fever_threshold=ctx.settings.tenants.fever_threshold, inbound_id=ctx.inbound_id)
    return Reply(shops.summary_text(summary))


@router.command(ShopCheckin, tiers={4, 5}, allow=ROW_CAPTAIN)
async def on_shop_checkin(cmd: ShopCheckin, ctx: Context) -> Reply:
    """巡查 10家 营业3家 无异常 — 铺长每日打卡巡查（也可逐店写：3号 开门 2人 36.5 36.7）"""
    return await _checkin(cmd, ctx)


@router.command(BareCheckin, tiers={5}, allow=ROW_CAPTAIN, quiet=True)
async def on_bare_checkin(cmd: BareCheckin, ctx: Context) -> Reply:
    """3号 开门 2人 36.5 36.7 — 铺长逐店打卡（不写“巡查”也可以）"""
    return await _checkin(cmd, ctx)


@router.command(ReopenRegister, tiers={5}, allow=SHOP_ROW_GROUP)
async def on_reopen_register(cmd: ReopenRegister, ctx: Context) -> str:
    """复工登记 商位 店主 手机号 员工N人 外地返回N人 消毒用品 已承诺 — 商铺申请复工"""
    assert ctx.node is not None
    by_captain = Role.CAPTAIN in ctx.roles
    reg, shop, owner = await shops.register_reopening(
        ctx.session, node=ctx.node, cmd=cmd, by=ctx.sender, by_captain=by_captain,
        now=ctx.now(), inbound_id=ctx.inbound_id)
    form = texts.Shop.REGISTERED_BY_CAPTAIN if by_captain else texts.Shop.REGISTERED
    return form.format(id=reg.id, shop=shop.name, owner=pii.mask_name(owner.name),
                       mobile=owner.mobile_mask or "", staff=reg.staff,
                       elsewhere=reg.staff_from_elsewhere)


@router.command(ReopenConfirm, tiers={5}, allow=ROW_CAPTAIN)
async def on_reopen_confirm(cmd: ReopenConfirm, ctx: Context) -> str:
    """复工确认 编号 — 铺长确认商铺的复工登记，报社区审核"""
    assert ctx.node is not None and ctx.sender is not None
    reg, shop = await shops.confirm_reopening(ctx.session, node=ctx.node,
                                              registration_id=cmd.registration_id,
                                              by=ctx.sender, now=ctx.now())
    return texts.Shop.CONFIRMED.format(id=reg.id, shop=shop.name)


@router.command(ReopenReview, tiers={2}, allow=COMMUNITY_REVIEWER)
async def on_reopen_review(cmd: ReopenReview, ctx: Context) -> str:
    """复工审核 编号 通过|驳回 原因 — 社区审核商铺复工"""
    assert ctx.node is not None and ctx.sender is not None
    reg, shop, row = await shops.review_reopening(
        ctx.session, node=ctx.node, registration_id=cmd.registration_id, approve=cmd.approve,
        reason=cmd.reason, by=ctx.sender, now=ctx.now())
    if cmd.approve:
        return texts.Shop.APPROVED.format(id=reg.id, shop=shop.name, node=row.name)
    return texts.Shop.REJECTED.format(id=reg.id, shop=shop.name, node=row.name,
                                      reason=reg.reason)


@router.command(ReopenList, tiers={2, 3, 4, 5}, allow=STAFF | ROW_CAPTAIN, reads_others=True)
async def on_reopen_list(cmd: ReopenList, ctx: Context) -> str:
    """复工列表 — 查看待确认、待审核和已通过的复工商铺"""
    assert ctx.node is not None
    ids = chain.subtree_select(ctx.node.id, ctx.node.tier)
    rows = await shops.reopenings(ctx.session, node_ids=ids, statuses=("captain", "review",
                                                                        "approved"))
    if not rows:
        return texts.Shop.LIST_EMPTY
    counts = {s: sum(1 for r in rows if r.reg.status == s) for s in ("captain", "review",
                                                                     "approved")}
    lines = [texts.Shop.LIST_HEADER.format(node=ctx.node.name, **counts)]
    # Waiting ones first (they need someone), then the approved.
    order = {"captain": 0, "review": 1, "approved": 2}
    for row in sorted(rows, key=lambda r: (order[r.reg.status], r.reg.id)):
        lines.append(texts.Shop.LIST_LINE.format(
            id=row.reg.id, node=row.node.name, shop=row.shop.name,
            owner=pii.mask_name(row.owner.name), status=texts.Shop.STATUS[row.reg.status]))
    return "\n".join(lines)


__all__ = ["router"]
