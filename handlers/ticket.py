"""反馈, 答复, 待办: problems go one tier up and answers come back down."""

from __future__ import annotations

from bot import texts
from bot.grammar import Answer, Feedback, Todo
from bot.permission import STAFF
from bot.router import Context, Router
from bot.services import ticket as tickets
from bot.services.tenant import local_datetime

router = Router(name=__name__)

# Tickets go to tier-3 and tier-4 nodes: their commanders, team members and secretaries answer
# (a landlord also sits in the tier-4 group, but does not answer for the team): see STAFF.


@router.command(Feedback, tiers={4, 5})
async def on_feedback(cmd: Feedback, ctx: Context) -> str:
    """反馈 内容 — 向上级反映问题，例：反馈 3楼楼道灯坏了"""
    assert ctx.group is not None and ctx.node is not None
    ticket = await tickets.open_ticket(ctx.session, group=ctx.group, node=ctx.node,
                                       asker=ctx.sender, text=cmd.text, now=ctx.now())
    return texts.Ticket.OPENED.format(id=ticket.id)


@router.command(Answer, allow=STAFF)
async def on_answer(cmd: Answer, ctx: Context) -> str:
    """答复 编号 内容 — 答复下级的反馈，例：答复 12 已安排电工明天上门"""
    assert ctx.node is not None and ctx.sender is not None
    ticket = await tickets.answer(ctx.session, ticket_id=cmd.ticket_id, node=ctx.node,
                                  by=ctx.sender, text=cmd.text, now=ctx.now())
    return texts.Ticket.ANSWERED.format(id=ticket.id)


@router.command(Todo, allow=STAFF, reads_others=True)
async def on_todo(cmd: Todo, ctx: Context) -> str:
    """待办 — 查看下级发来、还没答复的反馈"""
    assert ctx.node is not None
    rows = await tickets.open_for(ctx.session, node=ctx.node)
    if not rows:
        return texts.Ticket.TODO_EMPTY
    lines = [texts.Ticket.TODO_HEAD.format(n=len(rows))]
    lines += [texts.Ticket.TODO_LINE.format(id=t.id, group=title, text=t.text[:40],
                                            when=local_datetime(t.created_at, ctx.zone))
              for t, title in rows]
    return "\n".join(lines)
