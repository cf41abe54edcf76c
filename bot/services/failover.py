"""Failover: groups move from a failing account to their fallback binding (and back once it
has recovered), or by hand (`tierbot groups move`); their pending outbox rows follow.

Rows are re-pointed in the database with conditions, never by a sender: only `pending` rows
change account, so a row another process has marked `sending` (under its lease) is left to
that holder, which settles it; a retry it leaves pending is re-pointed at the next run. A
re-pointed row that had an attempt keeps its `attempt_at`, and the new account's claim looks
for the echo of that attempt before sending: what was echoed is not sent twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import chain
from models import Group, OutboxMessage, OutboxStatus

# Ids per statement (PostgreSQL's bind limit is far above; SQLite's is 32,766).
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Moved:
    """What a move did: groups rebound, pending rows re-pointed, the accounts they went to,
    and groups that had no usable fallback."""

    groups: int = 0
    rows: int = 0
    targets: tuple[str, ...] = ()
    stranded: int = 0


async def repoint_pending(session: AsyncSession, *, group_ids: Sequence[int], to: str,
                          only_from: Sequence[str] | None = None) -> int:
    """Pending rows of these groups (those on `only_from` accounts, if given) go out through
    `to`; rows `sending` are left to their holder. Returns rows changed."""
    changed = 0
    for i in range(0, len(group_ids), CHUNK):
        where = [OutboxMessage.group_id.in_(group_ids[i:i + CHUNK]),
                 OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.account != to]
        if only_from is not None:
            where.append(OutboxMessage.account.in_(only_from))
        result = await session.execute(
            update(OutboxMessage).where(*where)
            .values(account=to).execution_options(synchronize_session=False))
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


async def fail_over(session: AsyncSession, *, account: str, down: set[str],
                    aliases: Sequence[str] = ()) -> Moved:
    """The groups on `account` (or on one of its `aliases`: "" for the default account) with a
    fallback that is not down move to it (the two swap, `moved_from` records the primary);
    their pending rows follow. The unnamed account ("") is not failed over: `moved_from` could
    not record it (name the accounts in the configuration to use failover)."""
    if not account:
        return Moved()
    names = [account, *aliases]
    groups = (await session.execute(
        select(Group.id, Group.fallback_account).where(Group.account.in_(names))
        .order_by(Group.id))).all()
    by_target: dict[str, list[int]] = {}
    stranded = 0
    for group_id, fallback in groups:
        if not fallback or fallback in names or fallback in down:
            stranded += 1
            continue
        by_target.setdefault(fallback, []).append(group_id)
    rows = 0
    for target, ids in by_target.items():
        for i in range(0, len(ids), CHUNK):
            await session.execute(
                update(Group).where(Group.id.in_(ids[i:i + CHUNK]), Group.account.in_(names))
                .values(account=target, fallback_account=account, moved_from=account)
                .execution_options(synchronize_session=False))
        rows += await repoint_pending(session, group_ids=ids, to=target)
    # Rows of groups moved at an earlier run that were `sending` then and have come back
    # pending on the failing account since (a retry, a release): they follow now.
    if not account:
        return Moved(groups=sum(len(v) for v in by_target.values()), rows=rows,
                     targets=tuple(sorted(by_target)), stranded=stranded)
    moved = (await session.execute(
        select(Group.id, Group.account).where(Group.moved_from == account)
        .order_by(Group.id))).all()
    by_current: dict[str, list[int]] = {}
    for group_id, current in moved:
        if current not in names and current not in down:
            by_current.setdefault(current, []).append(group_id)
    for current, ids in by_current.items():
        rows += await repoint_pending(session, group_ids=ids, to=current, only_from=names)
    return Moved(groups=sum(len(v) for v in by_target.values()), rows=rows,
                 targets=tuple(sorted(by_target)), stranded=stranded)


async def fail_back(session: AsyncSession, *, account: str) -> Moved:
    """The groups failover moved away from `account` come back (the bindings swap again,
    `moved_from` cleared); their pending rows follow. The unnamed account ("") cannot be
    recorded in `moved_from` ("" there means "not moved"): nothing to do for it."""
    if not account:
        return Moved()
    groups = (await session.execute(
        select(Group.id, Group.account).where(Group.moved_from == account)
        .order_by(Group.id))).all()
    by_current: dict[str, list[int]] = {}
    for group_id, current in groups:
        by_current.setdefault(current, []).append(group_id)
    rows = 0
    for current, ids in by_current.items():
        for i in range(0, len(ids), CHUNK):
            await session.execute(
                update(Group).where(Group.id.in_(ids[i:i + CHUNK]),
                                    Group.moved_from == account)
                .values(account=account, fallback_account=current, moved_from="")
                .execution_options(synchronize_session=False))
        rows += await repoint_pending(session, group_ids=ids, to=account)
    return Moved(groups=len(groups), rows=rows, targets=(account,) if groups else ())


async def move_groups(session: AsyncSession, *, source: str, target: str,
                      node_id: int | None = None, default: str = "") -> Moved:
    """By hand: every group on `source` (or moved away from it by failover), in the subtree
    of `node_id` if given, is bound to `target` for good (`moved_from` cleared). A fallback
    that was `target` becomes the account the group left; one that failover set to `source`
    becomes the account the group was moved to. Pending rows follow. Groups naming "" are on
    the `default` account."""
    names = [source, ""] if source and source == default else [source]
    stmt = select(Group).where(Group.account.in_(names) | (Group.moved_from == source))
    if node_id is not None:
        stmt = stmt.where(Group.node_id.in_(chain.subtree_select(node_id)))
    groups = (await session.execute(stmt.order_by(Group.id))).scalars().all()
    for group in groups:
        left = group.account or default
        if group.moved_from == source and group.fallback_account == source:
            group.fallback_account = left
        if group.fallback_account == target:
            group.fallback_account = left if left != target else ""
        group.account, group.moved_from = target, ""
    await session.flush()
    rows = await repoint_pending(session, group_ids=[g.id for g in groups], to=target)
    return Moved(groups=len(groups), rows=rows, targets=(target,) if groups else ())
