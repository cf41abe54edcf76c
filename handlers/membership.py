"""确认/不是, 移除, 退租: links the landlord confirms and roles taken away, by whoever grants them."""

from __future__ import annotations

from bot import pii, texts
from bot.grammar import ConfirmLink, EndTenancy, RejectLink, RemoveMember
from bot.permission import GROUP_COMMANDER, LANDLORD, PARENT_COMMANDER
from bot.router import Context, Router
from bot.services import membership

router = Router(name=__name__)

# Whoever brings people into this group: its commander, or the commander one tier up.
GRANTING = GROUP_COMMANDER | PARENT_COMMANDER


@router.command(ConfirmLink, tiers={5}, allow=LANDLORD)
async def on_confirm_link(cmd: ConfirmLink, ctx: Context) -> str:
    """确认 编号 — 房东确认新成员就是已登记的租客（关联身份）"""
    assert ctx.node is not None and ctx.sender is not None
    decision = await membership.decide_link(ctx.session, node=ctx.node,
                                            request_id=cmd.request_id, by=ctx.sender,
                                            confirm=True, now=ctx.now())
    return texts.Identity.LINK_CONFIRMED.format(name=pii.mask_name(decision.person.name))


@router.command(RejectLink, tiers={5}, allow=LANDLORD)
async def on_reject_link(cmd: RejectLink, ctx: Context) -> str:
    """不是 编号 — 房东确认新成员不是已登记的租客（按新租客登记）"""
    assert ctx.node is not None and ctx.sender is not None
    decision = await membership.decide_link(ctx.session, node=ctx.node,
                                            request_id=cmd.request_id, by=ctx.sender,
                                            confirm=False, now=ctx.now())
    return texts.Identity.LINK_REJECTED.format(name=pii.mask_name(decision.person.name))


@router.command(RemoveMember, allow=GRANTING)
async def on_remove_member(cmd: RemoveMember, ctx: Context) -> str:
    """移除 @某人 [原因] — 移除本群成员的身份（也可写登记姓名），例：移除 @王明 已搬走"""
    assert ctx.node is not None and ctx.sender is not None
    mentioned = tuple(c for c in ctx.message.mention_ids if c != ctx.message.sender_id)
    person, roles = await membership.remove_member(
        ctx.session, node=ctx.node, by=ctx.sender, by_roles=ctx.memberships,
        target=cmd.target, contact_ids=mentioned if cmd.mentioned else (),
        transport=ctx.message.transport, reason=pii.mask_text(cmd.reason), now=ctx.now())
    names = await membership.node_names(ctx.session, ids={h.node_id for h in roles})
    described = "、".join(texts.Identity.REMOVED_ROLE.format(
        node=names[h.node_id], role=texts.ROLE_NAMES[h.role]) for h in roles)
    return texts.Identity.REMOVED.format(name=pii.mask_name(person.name), roles=described)


@router.command(EndTenancy, tiers={5}, allow=GRANTING)
async def on_end_tenancy(cmd: EndTenancy, ctx: Context) -> str:
    """退租 租客姓名 [原因] — 房东为搬走的租客办理退租，例：退租 王明 已搬走"""
    assert ctx.node is not None
    person = await membership.end_tenancy(
        ctx.session, node=ctx.node, name=cmd.name, by=ctx.sender, via="chat",
        reason=pii.mask_text(cmd.reason), now=ctx.now())
    return texts.Identity.TENANCY_ENDED.format(name=pii.mask_name(person.name))
