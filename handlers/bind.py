"""绑定 / 绑定群: a contact id gets a role at a node, a room gets bound to a node, by invite code."""

from __future__ import annotations

import logging

from bot import texts
from bot.grammar import BindGroup, BindPerson
from bot.router import Context, Router
from bot.services import chain
from bot.services import invite as invites

router = Router(name=__name__)
log = logging.getLogger(__name__)


async def _silenced(ctx: Context) -> bool:
    """Too many wrong codes from this contact within the hour: its codes are not checked."""
    msg = ctx.message
    until = await invites.silenced_until(
        ctx.session, transport=msg.transport, contact_id=msg.sender_id, now=ctx.now(),
        limit=ctx.settings.invites.wrong_per_hour)
    if until is not None:
        log.info("invite code from %s:%s ignored (too many wrong codes) until %s",
                 msg.transport, msg.sender_id, until.isoformat())
    return until is not None


async def _wrong(ctx: Context, exc: chain.WrongInviteCode) -> str:
    """Count the wrong code (once per message) and answer it, without repeating it."""
    msg = ctx.message
    await invites.record_wrong_code(
        ctx.session, transport=msg.transport, contact_id=msg.sender_id,
        message_id=msg.message_id, now=ctx.now(), limit=ctx.settings.invites.wrong_per_hour)
    return exc.text


@router.command(BindPerson, needs_group=False)
async def on_bind_person(cmd: BindPerson, ctx: Context) -> str | None:
    """绑定 邀请码 — 用指挥长发的邀请码登记身份，例：绑定 A7K2Q9"""
    msg = ctx.message
    if await _silenced(ctx):
        return None
    try:
        binding = await chain.redeem_person_invite(
            ctx.session, code=cmd.code, transport=msg.transport, contact_id=msg.sender_id,
            display_name=msg.sender_name, known=ctx.sender, now=ctx.now())
    except chain.WrongInviteCode as exc:
        return await _wrong(ctx, exc)
    return texts.Bind.PERSON_OK.format(name=binding.person.name, node=binding.node.name,
                                       role=texts.ROLE_NAMES[binding.role])


@router.command(BindGroup, needs_group=False)
async def on_bind_group(cmd: BindGroup, ctx: Context) -> str | None:
    """绑定群 邀请码 — 把本群绑定到作战单元，例：绑定群 B8M3R4"""
    msg = ctx.message
    if await _silenced(ctx):
        return None
    try:
        group = await chain.redeem_group_invite(
            ctx.session, code=cmd.code, transport=msg.transport, room_id=msg.room_id,
            title=msg.room_topic, now=ctx.now(), account=msg.account)
    except chain.WrongInviteCode as exc:
        return await _wrong(ctx, exc)
    return texts.Bind.GROUP_OK.format(node=group.node.name, tier=texts.TIER_NAMES[group.node.tier])
