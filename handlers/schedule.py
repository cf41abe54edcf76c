"""定时通知, 每天 … 通知, 定时列表, 取消定时: notices sent later or every day."""

from __future__ import annotations

from bot import texts
from bot.grammar import ScheduleCancel, ScheduleList, ScheduleNotice
from bot.permission import GROUP_COMMANDER
from bot.router import Context, Router
from bot.services import schedule as schedules
from handlers.notice import read_targets

router = Router(name=__name__)


@router.command(ScheduleNotice, allow=GROUP_COMMANDER)
async def on_schedule_notice(cmd: ScheduleNotice, ctx: Context) -> str:
    """定时通知 明天8:00 内容 / 每天 18:00 通知 [房东群] 内容 — 定时或每天发通知"""
    assert ctx.node is not None and ctx.group is not None and ctx.sender is not None
    scope, text, look = await read_targets(ctx, cmd.text, cmd.down_to_tier)
    if cmd.daily:
        schedule = await schedules.create(
            ctx.session, creator_id=ctx.sender.id, origin=ctx.node,
            origin_group_id=ctx.group.id, text=text, urgent=cmd.urgent, scope=scope,
            now=ctx.now(), daily=True, hour=cmd.when.hour, minute=cmd.when.minute)
        template = texts.Schedule.CREATED_DAILY
    else:
        run_at = schedules.resolve_when(cmd.when, now=ctx.now(), zone=ctx.zone)
        schedule = await schedules.create(
            ctx.session, creator_id=ctx.sender.id, origin=ctx.node,
            origin_group_id=ctx.group.id, text=text, urgent=cmd.urgent, scope=scope,
            now=ctx.now(), daily=False, run_at=run_at)
        template = texts.Schedule.CREATED_ONCE
    ctx.schedule_changed(schedule)
    return template.format(id=schedule.id, when=schedules.describe(schedule, ctx.zone),
                           groups=look.total, text=schedule.text)


@router.command(ScheduleList, allow=GROUP_COMMANDER, reads_others=True)
async def on_schedule_list(cmd: ScheduleList, ctx: Context) -> str:
    """定时列表 — 查看您设定、尚未发出的定时通知"""
    assert ctx.sender is not None
    items = await schedules.active(ctx.session, creator_id=ctx.sender.id)
    if not items:
        return texts.Schedule.LIST_EMPTY
    return "\n".join([texts.Schedule.LIST_HEAD] + [
        texts.Schedule.LIST_LINE.format(id=s.id, when=schedules.describe(s, ctx.zone),
                                        text=s.text[:30]) for s in items])


@router.command(ScheduleCancel, allow=GROUP_COMMANDER)
async def on_schedule_cancel(cmd: ScheduleCancel, ctx: Context) -> str:
    """取消定时 编号 — 取消一条定时通知"""
    assert ctx.sender is not None
    schedule = await schedules.cancel(ctx.session, schedule_id=cmd.schedule_id,
                                      person_id=ctx.sender.id, now=ctx.now())
    ctx.schedule_changed(schedule)
    return texts.Schedule.CANCELLED.format(id=schedule.id)
