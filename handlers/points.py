"""积分, 积分明细, 申诉, 奖励 (landlords); 待核查, 核查 (the verifier); 加分/扣分, 好人候选
(commanders): the landlords' 12-point system."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii, texts
from bot.grammar import (
    AdjustPoints,
    Appeal,
    GoodPersonCandidates,
    PendingChecks,
    Reward,
    Score,
    ScoreHistory,
    Verify,
)
from bot.permission import COMMANDER_OR_SECRETARY, GROUP_COMMANDER, LANDLORD, VERIFIER
from bot.router import Context, Later, Router
from bot.services import points as pts
from models import PointsEvent

router = Router(name=__name__)

LANDLORD_TIERS = {4, 5}
COMMAND_TIERS = {1, 2, 3, 4}


def _line(ctx: Context, event: PointsEvent) -> str:
    return texts.Points.EVENT.format(
        id=event.id, date=pts.local_date(event.occurred_at, ctx.zone),
        rule=pts.rule_name(ctx.settings.points, event.rule), delta=event.delta,
        status=texts.Points.STATUS[event.status])


def _verifier_tier(ctx: Context) -> set[int]:
    """The verifier's tier (configurable)."""
    return {ctx.settings.points.verifier_tier}


@router.command(Score, tiers=LANDLORD_TIERS, allow=LANDLORD, reads_others=True)
async def on_score(cmd: Score, ctx: Context) -> Later:
    """积分 — 查看您的积分、排名和本周积分记录"""
    assert ctx.sender is not None
    settings = ctx.settings.points
    landlord_id, name, now, zone = ctx.sender.id, ctx.sender.name, ctx.now(), ctx.zone

    async def read(session: AsyncSession) -> str:
        # The rank reads a scope's standings (100,000 landlords in a city): off the batch.
        mine = await pts.standing(session, landlord_id=landlord_id, now=now, zone=zone,
                                  settings=settings)
        if mine.rank is not None and mine.scope is not None:
            head = texts.Points.SCORE.format(name=name, score=mine.score,
                                             start=settings.start_score, scope=mine.scope.name,
                                             rank=mine.rank, total=mine.total)
        else:
            head = texts.Points.SCORE_UNRANKED.format(name=name, score=mine.score,
                                                      start=settings.start_score)
        events = await pts.week_events(session, landlord_id=landlord_id, now=now, zone=zone)
        if not events:
            return f"{head}\n{texts.Points.WEEK_NONE}"
        return "\n".join([head, texts.Points.WEEK_HEAD, *(_line(ctx, e) for e in events)])

    return Later(read)


@router.command(ScoreHistory, tiers=LANDLORD_TIERS, allow=LANDLORD, reads_others=True)
async def on_score_history(cmd: ScoreHistory, ctx: Context) -> str:
    """积分明细 — 查看您最近的积分记录（编号可用于申诉）"""
    assert ctx.sender is not None
    events = await pts.history(ctx.session, landlord_id=ctx.sender.id)
    if not events:
        current = await pts.score(ctx.session, landlord_id=ctx.sender.id, now=ctx.now(),
                                  zone=ctx.zone, settings=ctx.settings.points)
        return texts.Points.HISTORY_NONE.format(score=current)
    return "\n".join([texts.Points.HISTORY_HEAD.format(n=len(events)),
                      *(_line(ctx, e) for e in events)])


@router.command(Appeal, tiers=LANDLORD_TIERS, allow=LANDLORD)
async def on_appeal(cmd: Appeal, ctx: Context) -> str:
    """申诉 编号 理由 — 对已核查的积分记录申诉，例：申诉 12 当天已消毒，忘记上报"""
    assert ctx.sender is not None
    event = await pts.appeal(ctx.session, event_id=cmd.event_id, landlord=ctx.sender,
                             reason=cmd.reason, now=ctx.now(), settings=ctx.settings.points)
    return texts.Points.APPEAL_OK.format(id=event.id)


@router.command(Reward, tiers=LANDLORD_TIERS, allow=LANDLORD, reads_others=True)
async def on_reward(cmd: Reward, ctx: Context) -> str:
    """奖励 — 查看您的积分奖励"""
    assert ctx.sender is not None
    per = ctx.settings.points.reward_per_point
    got = await pts.reward(ctx.session, landlord_id=ctx.sender.id, now=ctx.now(), zone=ctx.zone)
    return texts.Points.REWARD.format(
        name=ctx.sender.name, total=got.total_fen / 100, weeks=got.weeks, points=got.points,
        per=per, week_points=got.week_points, week_amount=got.week_points * per)


@router.command(PendingChecks, tiers=_verifier_tier, allow=VERIFIER, reads_others=True)
async def on_pending_checks(cmd: PendingChecks, ctx: Context) -> str:
    """待核查 — 社区书记查看待核查的房东积分记录"""
    assert ctx.node is not None
    lines, total = await pts.pending(ctx.session, verifier_node=ctx.node)
    if not lines:
        return texts.Points.PENDING_NONE
    out = [texts.Points.PENDING_HEAD.format(n=total)]
    settings = ctx.settings.points
    for line in lines:
        event = line.event
        if event.appeal_reason is not None:
            before = "approved" if event.counts else "rejected"
            out.append(texts.Points.PENDING_APPEAL.format(
                id=event.id, name=pii.mask_name(line.landlord.name),
                rule=pts.rule_name(settings, event.rule), delta=event.delta,
                status=texts.Points.STATUS[before], reason=event.appeal_reason))
        else:
            out.append(texts.Points.PENDING_LINE.format(
                id=event.id, name=pii.mask_name(line.landlord.name),
                rule=pts.rule_name(settings, event.rule), delta=event.delta,
                date=pts.local_date(event.occurred_at, ctx.zone),
                evidence=pii.mask_text(event.evidence)[:60]))
    if total > len(lines):
        out.append(texts.Points.PENDING_MORE.format(n=total - len(lines)))
    return "\n".join(out)


@router.command(Verify, tiers=_verifier_tier, allow=VERIFIER)
async def on_verify(cmd: Verify, ctx: Context) -> str:
    """核查 编号 通过 / 核查 编号 驳回 原因 — 社区书记核查房东积分"""
    assert ctx.node is not None and ctx.sender is not None
    settings = ctx.settings.points
    event, landlord = await pts.verify(
        ctx.session, event_id=cmd.event_id, verifier_node=ctx.node, by=ctx.sender,
        approve=cmd.approve, reason=cmd.reason, now=ctx.now(), zone=ctx.zone,
        settings=settings)
    name = pii.mask_name(landlord.name)
    rule = pts.rule_name(settings, event.rule)
    if cmd.approve:
        current = await pts.score(ctx.session, landlord_id=landlord.id, now=ctx.now(),
                                  zone=ctx.zone, settings=settings)
        return texts.Points.VERIFIED_OK.format(id=event.id, name=name, rule=rule,
                                               delta=event.delta, score=current)
    return texts.Points.VERIFIED_NO.format(id=event.id, name=name, rule=rule,
                                           delta=event.delta, reason=cmd.reason)


@router.command(AdjustPoints, tiers=COMMAND_TIERS, allow=GROUP_COMMANDER)
async def on_adjust_points(cmd: AdjustPoints, ctx: Context) -> str:
    """加分/扣分 @房东 分数 原因 — 指挥长为下级房东加减分（须写原因，经社区书记核查），例：扣分 @董宝明 3 瞒报租客"""
    assert ctx.node is not None and ctx.sender is not None
    settings = ctx.settings.points
    target = await pts.find_landlord(ctx.session, root=ctx.node, name=cmd.target,
                                     mention_ids=ctx.message.mention_ids,
                                     transport=ctx.message.transport)
    reason = pii.mask_text(cmd.reason)
    event, rule = await pts.adjust(
        ctx.session, by=ctx.sender, target=target, delta=cmd.delta, reason=reason,
        inbound_id=ctx.inbound_id, now=ctx.now(), zone=ctx.zone, settings=settings)
    if event is None:
        return texts.Points.ADJUST_CAPPED.format(name=target.person.name, rule=rule.name,
                                                 cap=rule.weekly_cap)
    if event.counts:
        current = await pts.score(ctx.session, landlord_id=target.person.id, now=ctx.now(),
                                  zone=ctx.zone, settings=settings)
        return texts.Points.ADJUST_OK.format(id=event.id, name=target.person.name,
                                             rule=rule.name, delta=event.delta, reason=reason,
                                             score=current)
    return texts.Points.ADJUST_OK_PENDING.format(id=event.id, name=target.person.name,
                                                 rule=rule.name, delta=event.delta,
                                                 reason=reason)


@router.command(GoodPersonCandidates, tiers={1, 2, 3}, allow=COMMANDER_OR_SECRETARY,
                reads_others=True)
async def on_good_person_candidates(cmd: GoodPersonCandidates, ctx: Context) -> str:
    """好人候选 — 查看本年度多次上五好房东红榜的好人候选"""
    assert ctx.node is not None
    year = ctx.now().astimezone(ctx.zone).year
    threshold = ctx.settings.points.good_person_threshold
    found = await pts.good_person_candidates(ctx.session, root=ctx.node, year=year,
                                             threshold=threshold)
    if not found:
        return texts.Points.GOOD_NONE.format(year=year, n=threshold)
    return "\n".join([texts.Points.GOOD_HEAD.format(year=year, n=threshold), *(
        texts.Points.GOOD_LINE.format(index=i, name=c.name, node=c.node, count=c.count)
        for i, c in enumerate(found, 1))])
