"""通知, 预览, 收到, relays and 进度: notices down the chain and how far they got."""

from __future__ import annotations

from bot import texts
from bot.domain import UserError
from bot.grammar import Ack, Progress, Relay, SendNotice
from bot.permission import GROUP_COMMANDER, PARENT_COMMANDER
from bot.router import Context, Router
from bot.services import notice as notices

router = Router(name=__name__)

# Relays count only from whoever brings the notice into this group: its commander, or the
# commander one tier up who sits in it.
RELAYING = GROUP_COMMANDER | PARENT_COMMANDER


async def read_targets(ctx: Context, text: str, down_to_tier: int | None
                       ) -> tuple[notices.Scope, str, notices.Preview]:
    """The scope a notice's first word names, its text, and the groups it reaches; a notice
    that would reach no group is refused."""
    assert ctx.node is not None
    scope, text = await notices.read_scope(ctx.session, origin=ctx.node, text=text,
                                           down_to_tier=down_to_tier)
    look = await notices.preview(ctx.session, origin=ctx.node, scope=scope)
    if look.total == 0:
        raise UserError(texts.Notice.NO_TARGETS)
    return scope, text, look


@router.command(SendNotice, allow=GROUP_COMMANDER)
async def on_send_notice(cmd: SendNotice, ctx: Context) -> str:
    """通知 [到3级|节点名|房东群] 内容 — 向下级各群发通知（紧急通知 更快提醒；预览 通知 … 只看范围）"""
    assert ctx.node is not None and ctx.group is not None and ctx.sender is not None
    scope, text, look = await read_targets(ctx, cmd.text, cmd.down_to_tier)
    if cmd.preview:
        return notices.preview_text(look, ctx.settings.pacing)
    notice, count = await notices.create(
        ctx.session, origin=ctx.node, origin_group_id=ctx.group.id, sender_id=ctx.sender.id,
        text=text, urgent=cmd.urgent, scope=scope, now=ctx.now(),
        settings=ctx.settings.notices)
    return notices.queued_text(notice, count, look, ctx.settings.pacing)


# Seen in any group the bot is in, bound or not: 收到 #27 also acknowledges for the writer's
# own group where its channel cannot see who writes there (a group robot).
@router.command(Ack, quiet=True, needs_group=False)
async def on_ack(cmd: Ack, ctx: Context) -> None:
    """收到 [#27] — 确认收到通知（本群负责人回复计为本群确认；机器人收不到回复的群，负责人在任一群回复“收到 #编号”）"""
    # Silent either way: a busy group does not need a bot answering every 收到.
    person_id = ctx.sender.id if ctx.sender else None
    if ctx.node is not None and ctx.group is not None:
        await notices.acknowledge(
            ctx.session, group=ctx.group, node=ctx.node, person_id=person_id, roles=ctx.roles,
            notice_id=cmd.notice_id, now=ctx.now(), settings=ctx.settings.notices)
    if cmd.notice_id is not None and person_id is not None:
        await notices.acknowledge_elsewhere(
            ctx.session, person_id=person_id, memberships=ctx.memberships,
            notice_id=cmd.notice_id, exclude_group_id=ctx.group.id if ctx.group else None,
            now=ctx.now(), settings=ctx.settings.notices)


@router.command(Relay, allow=RELAYING, quiet=True)
async def on_relay(cmd: Relay, ctx: Context) -> None:
    """【通知#27】… — 指挥长转发的通知原文，本群不再重复发送"""
    assert ctx.group is not None
    await notices.relay(ctx.session, group=ctx.group, notice_id=cmd.notice_id,
                        text=ctx.message.text, now=ctx.now())


@router.command(Progress, allow=GROUP_COMMANDER, reads_others=True)
async def on_progress(cmd: Progress, ctx: Context) -> str:
    """进度 [27] — 查看通知的送达和确认情况（不写编号为您最近的一条）"""
    assert ctx.sender is not None and ctx.node is not None
    if cmd.notice_id is None:
        notice = await notices.latest_by_sender(ctx.session, sender_id=ctx.sender.id)
        if notice is None:
            return texts.Notice.PROGRESS_NONE
    else:
        notice = await notices.visible_to(ctx.session, notice_id=cmd.notice_id,
                                          person_id=ctx.sender.id)
    p = await notices.progress(ctx.session, notice=notice)
    modes = await notices.ack_modes(ctx.session, notice=notice, settings=ctx.settings.notices)
    return "\n".join(notices.progress_lines(p, modes=modes))
