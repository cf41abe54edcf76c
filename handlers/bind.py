"""绑定 / 绑定群: a contact id gets a role at a node, a room gets bound to a node, by invite code."""

from __future__ import annotations

from bot import texts
from bot.grammar import BindGroup, BindPerson
from bot.router import Context, Router
from bot.services import chain

router = Router(name=__name__)


@router.command(BindPerson, needs_group=False)
async def on_bind_person(cmd: BindPerson, ctx: Context) -> str:
    """绑定 邀请码 — 用指挥长发的邀请码登记身份，例：绑定 A7K2Q9"""
    msg = ctx.message
    binding = await chain.redeem_person_invite(
        ctx.session, code=cmd.code, transport=msg.transport, contact_id=msg.sender_id,
        display_name=msg.sender_name, known=ctx.sender, now=ctx.now())
    return texts.Bind.PERSON_OK.format(name=binding.person.name, node=binding.node.name,
                                       role=texts.ROLE_NAMES[binding.role])


@router.command(BindGroup, needs_group=False)
async def on_bind_group(cmd: BindGroup, ctx: Context) -> str:
    """绑定群 邀请码 — 把本群绑定到作战单元，例：绑定群 B8M3R4"""
    msg = ctx.message
    group = await chain.redeem_group_invite(
        ctx.session, code=cmd.code, transport=msg.transport, room_id=msg.room_id,
        title=msg.room_topic, now=ctx.now(), account=msg.account)
    return texts.Bind.GROUP_OK.format(node=group.node.name, tier=texts.TIER_NAMES[group.node.tier])
