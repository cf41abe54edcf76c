"""Notices down the chain: targets, the outbox rows, acknowledgements, relays, progress,
reminders and escalation."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import ack_texts, pii, texts
from bot.config import NoticeSettings, PacingSettings
from bot.domain import HeldRole, UserError
from bot.grammar import normalise
from bot.hot import Hot
from bot.services import ack, outbox
from bot.services.chain import commanders, commanding_role, subtree_select
from models import (
    Contact,
    Group,
    Membership,
    Node,
    NodeKind,
    Notice,
    NoticeProgress,
    NoticeRead,
    OutboxMessage,
    OutboxStatus,
    Role,
)
from models.base import insert_for

# Words that name a kind of group in 通知 房东群 …; 房东群 is the team member + landlords group.
KIND_WORDS: dict[str, tuple[NodeKind, ...]] = {
    "社区群": (NodeKind.COMMUNITY,),
    "小组群": (NodeKind.TEAM,),
    "作战小组群": (NodeKind.TEAM,),
    "房东群": (NodeKind.TEAM_LANDLORDS,),
    "租客群": (NodeKind.LANDLORD_TENANTS,),
    "商户群": (NodeKind.SHOP_ROW,),
    "铺长群": (NodeKind.SHOP_ROW,),
    "企业群": (NodeKind.ENTERPRISE,),
    "车间群": (NodeKind.WORKGROUP,),
    "专班群": (NodeKind.PROJECT,),
}

def responsible_role(node: Node, settings: NoticeSettings) -> Role:
    """Who acknowledges a notice for this node's group (configurable per tier)."""
    if node.tier in settings.responsible:
        return Role(settings.responsible[node.tier])
    return commanding_role(node)


def tag(notice_id: int, urgent: bool) -> str:
    """The tag every delivered text starts with, e.g. 【通知#27】."""
    return texts.Notice.TAG_URGENT.format(id=notice_id) if urgent else (
        texts.Notice.TAG.format(id=notice_id))


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most `limit` characters, cut at a line break or sentence end when possible."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(rest.rfind(sep, 0, limit) for sep in ("\n", "。", "；", "，", " "))
        cut = cut + 1 if cut > limit // 2 else limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


def render_parts(*, text: str, notice_id: int | None, urgent: bool, resend: bool,
                 limit: int) -> list[str]:
    """The texts one outbox row sends: tagged for a notice, marked 补发 when resent, split."""
    marker = texts.Notice.RESEND if resend else ""
    if notice_id is None:
        body = marker + text
        prefix = ""
    else:
        prefix = tag(notice_id, urgent)
        body = marker + text
    room = limit - len(prefix) - 8  # room for the tag and the (1/2) marker
    chunks = split_text(body, room)
    if len(chunks) == 1:
        return [prefix + chunks[0]]
    n = len(chunks)
    return [f"{prefix}({i}/{n}){chunk}" for i, chunk in enumerate(chunks, 1)]


# Platforms put the mentioned names in front of a text that mentions someone.
_LEADING_MENTIONS = re.compile(r"^(?:@[^\s\u2005@]+[\u2005 ]+)+")


def echo_body(text: str) -> str:
    """An echoed text without the @names the platform put in front of it."""
    return _LEADING_MENTIONS.sub("", text)


def digest(text: str) -> str:
    """How an echo is matched to the send that caused it (leading @names ignored). The text
    is masked first, as the outbound seam masks what it sends, so a text stored unmasked still
    matches its echo."""
    return hashlib.sha1(pii.mask_text(echo_body(text)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Scope:
    """Which groups below the origin a notice goes to."""

    down_to_tier: int | None = None
    subtree: Node | None = None
    kinds: tuple[NodeKind, ...] | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.down_to_tier is not None:
            out["down_to_tier"] = self.down_to_tier
        if self.subtree is not None:
            out["subtree"] = self.subtree.id
        if self.kinds is not None:
            out["kinds"] = [str(k) for k in self.kinds]
        return out


async def _tree(session: AsyncSession) -> tuple[dict[int, Any], dict[int | None, list[int]]]:
    # Plain rows (id, parent, tier, kind, name), not ORM objects: ten times cheaper for a
    # city-sized chain, and read-only here.
    nodes = {n.id: n for n in await session.execute(
        select(Node.id, Node.parent_id, Node.tier, Node.kind, Node.name))}
    children: dict[int | None, list[int]] = defaultdict(list)
    for node in nodes.values():
        children[node.parent_id].append(node.id)
    return nodes, children


def _below(children: dict[int | None, list[int]], root: int, *, include_root: bool) -> list[int]:
    out, todo = [], [root]
    while todo:
        current = todo.pop()
        if current != root or include_root:
            out.append(current)
        todo.extend(children.get(current, ()))
    return out


async def read_scope(session: AsyncSession, *, origin: Node, text: str,
                     down_to_tier: int | None) -> tuple[Scope, str]:
    """Split 通知's content into a scope (a node name or a kind word first) and the text."""
    head, _, rest = text.partition(" ")
    if rest.strip():
        if head in KIND_WORDS:
            return Scope(down_to_tier, None, KIND_WORDS[head]), rest.strip()
        nodes, children = await _tree(session)
        below = set(_below(children, origin.id, include_root=False))
        for node_id in below:
            if nodes[node_id].name == head:
                return Scope(down_to_tier, await session.get(Node, node_id), None), rest.strip()
    return Scope(down_to_tier, None, None), text


async def scope_from_json(session: AsyncSession, data: dict[str, object]) -> Scope:
    """The Scope a stored notice or schedule was made with."""
    subtree = None
    if isinstance(data.get("subtree"), int):
        subtree = await session.get(Node, data["subtree"])
    kinds = data.get("kinds")
    tier = data.get("down_to_tier")
    return Scope(tier if isinstance(tier, int) else None, subtree,
                 tuple(NodeKind(k) for k in kinds) if isinstance(kinds, list) else None)


@dataclass(frozen=True, slots=True)
class Target:
    """A group a notice goes to."""

    group_id: int
    title: str
    account: str
    node_id: int
    tier: int


async def targets(session: AsyncSession, *, origin: Node, scope: Scope) -> list[Target]:
    """Every group below the origin (or in the named subtree) that the scope admits."""
    nodes, children = await _tree(session)
    if scope.subtree is not None:
        ids = _below(children, scope.subtree.id, include_root=True)
    else:
        ids = _below(children, origin.id, include_root=False)
    wanted = {i for i in ids
              if (scope.down_to_tier is None or nodes[i].tier <= scope.down_to_tier)
              and (scope.kinds is None or nodes[i].kind in scope.kinds)}
    if not wanted:
        return []
    rows = await session.execute(
        select(Group.id, Group.title, Group.account, Group.node_id).order_by(Group.id))
    return [Target(gid, title, account, node_id, nodes[node_id].tier)
            for gid, title, account, node_id in rows if node_id in wanted]


async def create(
    session: AsyncSession, *, origin: Node, origin_group_id: int | None, sender_id: int | None,
    text: str, urgent: bool, scope: Scope, now: datetime, schedule_id: int | None = None,
    fire_at: datetime | None = None, settings: NoticeSettings | None = None,
) -> tuple[Notice, int]:
    """Store the notice and one pending outbox row per target group, in the caller's
    transaction. With a schedule, (schedule, fire time) is unique: a second call returns the
    notice already made, with 0 new rows."""
    # Stored masked: what is stored, digested for echo matching and sent is one text.
    values = dict(sender_id=sender_id, origin_node_id=origin.id, origin_group_id=origin_group_id,
                  text=pii.mask_text(text), urgent=urgent, scope=scope.as_json(), target_count=0,
                  missed=False, schedule_id=schedule_id, fire_at=fire_at, created_at=now)
    if schedule_id is not None:
        # Look first (a skipped insert would still use up a notice number on PostgreSQL);
        # the unique constraint below guards against a concurrent run.
        existing = (await session.execute(select(Notice).where(
            Notice.schedule_id == schedule_id, Notice.fire_at == fire_at))).scalar_one_or_none()
        if existing is not None:
            return existing, 0
        dialect_insert = insert_for(session)
        notice_id = (await session.execute(
            dialect_insert(Notice).values(**values)
            .on_conflict_do_nothing(index_elements=["schedule_id", "fire_at"])
            .returning(Notice.id))).scalar_one_or_none()
        if notice_id is None:
            existing = (await session.execute(select(Notice).where(
                Notice.schedule_id == schedule_id, Notice.fire_at == fire_at))).scalar_one()
            return existing, 0
        notice = await session.get(Notice, notice_id)
        assert notice is not None
    else:
        notice = Notice(**values)
        session.add(notice)
        await session.flush()
    # One INSERT … SELECT over the subtree (a recursive CTE): the database makes the rows,
    # nothing per group passes through Python, all in the notice's transaction.
    await outbox.queue_notice(session, notice_id=notice.id, urgent=urgent, now=now,
                              targets=_targets_select(origin=origin, scope=scope))
    # Counted, not taken from rowcount (drivers differ on INSERT … SELECT): the counters
    # the outbox's trigger just kept, a row per tier instead of the notice's rows.
    rows = int((await session.execute(select(func.coalesce(func.sum(NoticeProgress.total), 0))
                                       .where(NoticeProgress.notice_id == notice.id))
                ).scalar_one())
    notice.target_count = rows
    # Groups that cannot acknowledge in chat get the link (or the WeChat reply) with it.
    await ack.attach_suffixes(session, notice=notice, now=now,
                              settings=settings or NoticeSettings())
    await session.flush()
    return notice, rows


def _targets_select(*, origin: Node, scope: Scope) -> Select[Any]:
    """The groups a scope admits below the origin, as SQL (the subtree one tier at a time,
    see `chain.subtree_select`)."""
    root = scope.subtree if scope.subtree is not None else origin
    stmt = (select(Group.id).join(Node, Node.id == Group.node_id)
            .where(Group.node_id.in_(subtree_select(root.id, root.tier)))
            .order_by(Group.id))
    if scope.subtree is None:
        stmt = stmt.where(Group.node_id != origin.id)
    if scope.down_to_tier is not None:
        stmt = stmt.where(Node.tier <= scope.down_to_tier)
    if scope.kinds is not None:
        stmt = stmt.where(Node.kind.in_([str(k) for k in scope.kinds]))
    return stmt


@dataclass(frozen=True, slots=True)
class PreviewLine:
    """Groups per tier in a preview."""

    tier: int
    groups: int


@dataclass(frozen=True, slots=True)
class Preview:
    """What a notice would do, without sending it."""

    per_tier: list[PreviewLine]
    per_account: dict[str, int]
    total: int


async def preview(session: AsyncSession, *, origin: Node, scope: Scope) -> Preview:
    """How many groups per tier and per sending account a notice would reach."""
    found = await targets(session, origin=origin, scope=scope)
    tiers: dict[int, int] = defaultdict(int)
    accounts: dict[str, int] = defaultdict(int)
    for t in found:
        tiers[t.tier] += 1
        accounts[t.account] += 1
    return Preview([PreviewLine(t, n) for t, n in sorted(tiers.items())], dict(accounts),
                   len(found))


async def latest_by_sender(session: AsyncSession, *, sender_id: int) -> Notice | None:
    """The sender's most recent notice."""
    return (await session.execute(
        select(Notice).where(Notice.sender_id == sender_id, Notice.missed.is_(False))
        .order_by(Notice.id.desc()).limit(1))).scalar_one_or_none()


def _ack_row(*, named: bool, responsible: bool) -> Select[tuple[int]]:
    """The delivery a 收到 in a group answers: the named notice's, or else the newest one
    delivered (or possibly so: in flight, waiting to be resent after a crash or a failed
    attempt; a 收到 naming the notice counts whatever the row's state); for the group's
    responsible person only one not yet acknowledged."""
    # The row's id only, on the table (no ORM loading: most often nothing is found); the row
    # itself is loaded when there is one.
    c = outbox.TABLE.c
    stmt = select(c.id).where(c.group_id == bindparam("group_id"), c.notice_id.is_not(None))
    if named:
        stmt = stmt.where(c.notice_id == bindparam("notice_id"))
    else:
        stmt = stmt.where(or_(
            c.status == OutboxStatus.SENT, c.status == OutboxStatus.SENDING,
            and_(c.status == OutboxStatus.PENDING, or_(c.resend.is_(True), c.attempts > 0))))
    if responsible:
        stmt = stmt.where(c.acked_at.is_(None))
    return stmt.order_by(c.notice_id.desc()).limit(1)


# Built once (a statement keeps its compiled form and cache key): every 收到 in every group
# asks one of these, most often finding nothing.
_ACK_ROW = {(named, responsible): Hot(_ack_row(named=named, responsible=responsible))
            for named in (False, True) for responsible in (False, True)}


async def acknowledge(
    session: AsyncSession, *, group: Group, node: Node, person_id: int | None,
    roles: frozenset[Role], notice_id: int | None, now: datetime, settings: NoticeSettings,
) -> str | None:
    """收到 in a target group: the responsible person's counts for the group, anyone else's
    is a read. Returns "ack", "read", or None when no notice is open here."""
    if person_id is None:
        return None
    responsible = responsible_role(node, settings) in roles
    params: dict[str, int] = {"group_id": group.id}
    if notice_id is not None:
        params["notice_id"] = notice_id
    row_id = await _ACK_ROW[notice_id is not None, responsible].scalar(session, params)
    if row_id is None:
        return None
    row = await session.get(OutboxMessage, row_id)
    assert row is not None
    assert row.notice_id is not None
    if row.status != OutboxStatus.SENT:
        # The group has it: no resend, and a sender still holding the row will find it
        # settled (its mark only updates rows still `sending`).
        row.status, row.sent_at, row.error = OutboxStatus.SENT, now, None
    if responsible:
        row.acked_at = now
        row.acked_by_id = person_id
        row.acked_via = ack.VIA_CHAT
        return "ack"
    dialect_insert = insert_for(session)
    await session.execute(dialect_insert(NoticeRead).values(
        notice_id=row.notice_id, group_id=group.id, person_id=person_id, at=now
    ).on_conflict_do_nothing(index_elements=["notice_id", "group_id", "person_id"]))
    return "read"


async def acknowledge_elsewhere(
    session: AsyncSession, *, person_id: int, memberships: Iterable[HeldRole], notice_id: int,
    exclude_group_id: int | None, now: datetime, settings: NoticeSettings,
) -> list[Group]:
    """收到 #id seen anywhere the bot is (any group, bound or not): counts for each group of
    that notice whose channel cannot report who wrote 收到 in it, where the writer holds the
    responsible role at the group's node (their platform contact id says who they are; a
    display name or a typed name never does). Returns the groups acknowledged now."""
    here = {m.node_id: m.role for m in memberships}
    if not here:
        return []
    rows = (await session.execute(
        select(OutboxMessage, Group, Node).join(Group, Group.id == OutboxMessage.group_id)
        .join(Node, Node.id == Group.node_id)
        .where(OutboxMessage.notice_id == notice_id, OutboxMessage.acked_at.is_(None),
               Group.node_id.in_(list(here)))
        .order_by(OutboxMessage.id))).tuples().all()
    done: list[Group] = []
    held = {(m.node_id, m.role) for m in memberships}
    for row, group, node in rows:
        if group.id == exclude_group_id or ack.capabilities_for(group.account).ack_in_chat:
            continue
        if (node.id, responsible_role(node, settings)) not in held:
            # Another member of that group: a read, as in the group itself.
            await session.execute(insert_for(session)(NoticeRead).values(
                notice_id=notice_id, group_id=group.id, person_id=person_id, at=now
            ).on_conflict_do_nothing(index_elements=["notice_id", "group_id", "person_id"]))
            continue
        if row.status != OutboxStatus.SENT:
            row.status, row.sent_at, row.error = OutboxStatus.SENT, now, None
        row.acked_at, row.acked_by_id, row.acked_via = now, person_id, ack.VIA_WECHAT
        done.append(group)
    return done


async def ack_modes(session: AsyncSession, *, notice: Notice, settings: NoticeSettings
                    ) -> dict[int, tuple[str, ...]]:
    """Per tier, the ways its groups acknowledge this notice (by their channels' capabilities:
    in the group, by the link, by a WeChat reply), for 进度. Empty when no send-only channel
    is declared: then every group acknowledges in the group."""
    if not ack.send_only_accounts():
        return {}
    pairs = await session.execute(
        select(Node.tier, Group.account).select_from(OutboxMessage)
        .join(Group, Group.id == OutboxMessage.group_id).join(Node, Node.id == Group.node_id)
        .where(OutboxMessage.notice_id == notice.id).distinct())
    out: dict[int, list[str]] = defaultdict(list)
    for tier, account in pairs.tuples():
        for mode in ack.ack_modes(ack.capabilities_for(account),
                                  link=bool(settings.ack_link_base)):
            if mode not in out[tier]:
                out[tier].append(mode)
    order = (ack_texts.MODE_CHAT, ack_texts.MODE_LINK, ack_texts.MODE_WECHAT)
    return {tier: tuple(sorted(modes, key=order.index)) for tier, modes in out.items()}


_TAG_AT_START = re.compile(r"^\s*【(?:紧急)?通知#[0-9]+】")
# A re-post may carry a little more than the notice (a 补发 marker, a forwarder's "请落实").
RELAY_SLACK = 12


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", normalise(text))


def is_the_notice(notice_text: str, posted: str) -> bool:
    """Whether a tagged re-post really is the notice (its whole text), not any text after a
    tag (【紧急通知#1】随便写点什么 must not stop the notice reaching the group)."""
    body = _squeeze(notice_text)
    rest = _squeeze(_TAG_AT_START.sub("", echo_body(posted), count=1))
    rest = rest.replace(_squeeze(texts.Notice.RESEND), "", 1)
    return bool(body) and body in rest and len(rest) <= len(body) + RELAY_SLACK


async def visible_to(session: AsyncSession, *, notice_id: int, person_id: int) -> Notice:
    """A notice for 进度: its sender's, or one sent from a node this person commands."""
    notice = await session.get(Notice, notice_id)
    if notice is None or notice.missed:
        raise UserError(texts.Notice.PROGRESS_UNKNOWN.format(id=notice_id))
    if notice.sender_id != person_id:
        origin = await session.get(Node, notice.origin_node_id)
        assert origin is not None
        if person_id not in {p.id for p in await commanders(session, node=origin)}:
            raise UserError(texts.Notice.PROGRESS_NOT_YOURS)
    return notice


async def relay(session: AsyncSession, *, group: Group, notice_id: int, text: str,
                now: datetime) -> bool:
    """A commander re-posted the tagged notice here: it counts as delivered, no second send.
    Only the notice's own text counts (the caller checked who posted it)."""
    notice = await session.get(Notice, notice_id)
    if notice is None or not is_the_notice(notice.text, text):
        return False
    result = await session.execute(
        update(OutboxMessage).where(
            OutboxMessage.notice_id == notice_id, OutboxMessage.group_id == group.id,
            OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SENT, relayed=True, sent_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(slots=True)
class TierProgress:
    """One tier's line in 进度."""

    tier: int
    total: int = 0
    delivered: int = 0
    acked: int = 0
    # The first silent groups' titles (at most MISSING_SHOWN) and how many are silent.
    missing: list[str] = field(default_factory=list)
    silent: int = 0


@dataclass(slots=True)
class Progress:
    """How far a notice has got."""

    notice: Notice
    tiers: list[TierProgress]
    reads: int
    failed: int

    @property
    def total(self) -> int:
        return sum(t.total for t in self.tiers)

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.tiers)

    @property
    def acked(self) -> int:
        return sum(t.acked for t in self.tiers)


MISSING_SHOWN = 5


# The aggregate NoticeProgress stands for (the rebuild after a bulk load made with the
# triggers off; migration 0017_pgreads has its own copy as its backfill).
REBUILD_PROGRESS = """
INSERT INTO notice_progress (notice_id, tier, total, sent, failed, acked, first_id)
SELECT o.notice_id, n.tier, count(*),
       sum(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END),
       sum(CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END), count(o.acked_at), min(o.id)
FROM outbox_message o JOIN chat_group g ON g.id = o.group_id JOIN node n ON n.id = g.node_id
WHERE o.notice_id IS NOT NULL
GROUP BY o.notice_id, n.tier
"""

# Each count the sum of the tier's shards (migration 0022_counter_shards).
_PROGRESS = (select(NoticeProgress.tier, func.sum(NoticeProgress.total),
                    func.sum(NoticeProgress.sent), func.sum(NoticeProgress.failed),
                    func.sum(NoticeProgress.acked), func.min(NoticeProgress.first_id))
             .where(NoticeProgress.notice_id == bindparam("notice_id"))
             .group_by(NoticeProgress.tier)
             .having(func.sum(NoticeProgress.total) > 0)
             .order_by(NoticeProgress.tier))


def _silent(*, dense: bool, sqlite: bool) -> Select[tuple[str]]:
    """The first silent groups of a tier, in the order the rows were queued. A tier with few
    silent groups starts from its nodes (the tier's index); one where they are many walks the
    notice's rows by id from the tier's first row, where the next few silent ones are near.
    On SQLite `+ 0` keeps the planner from the other way (from 100,000 tier-5 nodes); on
    PostgreSQL it would hide the columns' statistics (then a parallel scan of every row)."""
    o = OutboxMessage
    if dense and sqlite:
        where = [o.id >= bindparam("first_id"), (o.notice_id + 0) == bindparam("notice_id"),
                 (Node.tier + 0) == bindparam("tier")]
    elif dense:
        where = [o.id >= bindparam("first_id"), o.notice_id == bindparam("notice_id"),
                 Node.tier == bindparam("tier")]
    else:
        where = [o.notice_id == bindparam("notice_id"), Node.tier == bindparam("tier")]
    return (select(Group.title).select_from(o).join(Group, Group.id == o.group_id)
            .join(Node, Node.id == Group.node_id).where(o.acked_at.is_(None), *where)
            .order_by(o.id).limit(MISSING_SHOWN))


_SILENT = {(dense, sqlite): _silent(dense=dense, sqlite=sqlite)
           for dense in (False, True) for sqlite in (False, True)}
# Dense: at most this many of the notice's rows per silent row of the tier, so the walk to
# the first MISSING_SHOWN is short.
DENSE_SPREAD = 50
_READS = select(func.count(NoticeRead.id)).where(NoticeRead.notice_id == bindparam("notice_id"))


async def progress(session: AsyncSession, *, notice: Notice) -> Progress:
    """Delivered and acknowledged, tier by tier, with the first groups still silent. The
    counts are NoticeProgress's (kept by triggers on the outbox: a notice to every group of
    a city has 100,000 rows)."""
    tiers: dict[int, TierProgress] = {}
    firsts: dict[int, int | None] = {}
    failed = 0
    for tier, total, delivered, failures, acked, first_id in await session.execute(
            _PROGRESS, {"notice_id": notice.id}):
        tiers[tier] = TierProgress(tier, total, delivered, acked, silent=total - acked)
        firsts[tier] = first_id
        failed += failures
    rows = sum(line.total for line in tiers.values())
    sqlite = session.get_bind().dialect.name == "sqlite"
    for line in tiers.values():
        if line.silent:
            first = firsts[line.tier]
            params = {"notice_id": notice.id, "tier": line.tier}
            dense = first is not None and line.silent * DENSE_SPREAD >= rows
            if first is not None and dense:
                params["first_id"] = first
            line.missing = list((await session.execute(_SILENT[dense, sqlite], params)
                                 ).scalars())
    reads = (await session.execute(_READS, {"notice_id": notice.id})).scalar_one()
    return Progress(notice, [tiers[t] for t in sorted(tiers)], reads, failed)


async def _responsible_contacts(
    session: AsyncSession, node_ids: Iterable[int], nodes: dict[int, Node],
    settings: NoticeSettings,
) -> dict[int, list[str]]:
    ids = set(node_ids)
    if not ids:
        return {}
    out: dict[int, list[str]] = defaultdict(list)
    rows = await session.execute(
        select(Membership.node_id, Membership.role, Contact.contact_id)
        .join(Contact, Contact.person_id == Membership.person_id)
        .where(Membership.node_id.in_(ids)).order_by(Membership.id))
    for node_id, role, contact_id in rows:
        if role == responsible_role(nodes[node_id], settings):
            out[node_id].append(contact_id)
    return out


async def remind_and_escalate(session: AsyncSession, *, now: datetime,
                              settings: NoticeSettings) -> tuple[int, int]:
    """Queue reminders in silent groups and escalations to their parents (once each).
    Returns (reminders, escalations) written."""
    def due(minutes: float, urgent_minutes: float, column: Any) -> ColumnElement[bool] | None:
        clauses = []
        if minutes > 0:
            clauses.append(and_(OutboxMessage.urgent.is_(False),
                                OutboxMessage.sent_at <= now - timedelta(minutes=minutes)))
        if urgent_minutes > 0:
            clauses.append(and_(OutboxMessage.urgent.is_(True),
                                OutboxMessage.sent_at <= now - timedelta(minutes=urgent_minutes)))
        if not clauses:
            return None
        return and_(column.is_(None), or_(*clauses))

    base = and_(OutboxMessage.notice_id.is_not(None), OutboxMessage.status == OutboxStatus.SENT,
                OutboxMessage.acked_at.is_(None))
    remind = due(settings.remind_after_minutes, settings.urgent_remind_after_minutes,
                 OutboxMessage.reminded_at)
    escalate = due(settings.escalate_after_minutes, settings.urgent_escalate_after_minutes,
                   OutboxMessage.escalated_at)
    nodes, _ = await _tree(session)
    groups: dict[int | None, Group] = {
        g.id: g for g in (await session.execute(select(Group))).scalars()}
    reminded = escalated = 0
    if remind is not None:
        rows = list((await session.execute(
            select(OutboxMessage).where(base, remind).order_by(OutboxMessage.id))).scalars())
        contacts = await _responsible_contacts(
            session, {groups[r.group_id].node_id for r in rows}, nodes, settings)
        drafts = []
        for row in rows:
            group = groups[row.group_id]
            head = tag(row.notice_id or 0, row.urgent)
            # Where 收到 in the group is not seen, the reminder carries the link again.
            suffix = ack.suffix_for(group, notice_id=row.notice_id or 0, now=now,
                                    settings=settings)
            text = (ack_texts.REMINDER.format(tag=head) + suffix if suffix
                    else texts.Notice.REMINDER.format(tag=head))
            drafts.append(outbox.Draft(group.id, text, contacts.get(group.node_id, []),
                                       row.urgent))
            row.reminded_at = now
        reminded = await outbox.queue_many(session, drafts=drafts, source="reminder", now=now)
    if escalate is not None:
        rows = list((await session.execute(
            select(OutboxMessage).where(base, escalate).order_by(OutboxMessage.id))).scalars())
        parents = {nodes[groups[r.group_id].node_id].parent_id for r in rows} - {None}
        contacts = await _responsible_contacts(
            session, [p for p in parents if p is not None], nodes, settings)
        by_node: dict[int, list[Group]] = defaultdict(list)
        for g in groups.values():
            by_node[g.node_id].append(g)
        drafts = []
        for row in rows:
            group = groups[row.group_id]
            parent = nodes[group.node_id].parent_id
            row.escalated_at = now
            if parent is None:
                continue
            silent = texts.duration((now - (row.sent_at or now)).total_seconds())
            drafts += [outbox.Draft(pg.id, texts.Notice.ESCALATION.format(
                tag=tag(row.notice_id or 0, row.urgent), group=group.title, duration=silent),
                contacts.get(parent, []), row.urgent) for pg in by_node.get(parent, [])]
        escalated = await outbox.queue_many(session, drafts=drafts, source="escalation", now=now)
    await session.flush()
    return reminded, escalated


def summarise_accounts(per_account: dict[str, int]) -> str:
    """'默认账号 12 个群' / 'a1 500 个群、a2 500 个群' for previews."""
    return "、".join(texts.Notice.ACCOUNT_LINE.format(
        account=name or texts.Notice.DEFAULT_ACCOUNT, groups=n)
        for name, n in sorted(per_account.items()))


def eta_seconds(per_account: dict[str, int], *, min_gap: float, jitter: float,
                hourly_cap: int, daily_cap: int) -> float:
    """Time for the slowest account to send its share at the current pacing."""
    worst = 0.0
    for n in per_account.values():
        seconds = max(0, n - 1) * (min_gap + jitter / 2)
        # The caps, not the gap, bound a large share.
        if n > hourly_cap:
            seconds = max(seconds, (n // hourly_cap) * 3600.0)
        if n > daily_cap:
            seconds = max(seconds, (n // daily_cap) * 86400.0)
        worst = max(worst, seconds)
    return worst


def titles(names: Sequence[str], limit: int = 5, count: int | None = None) -> str:
    """'A、B、C 等12个群' for lists of silent groups (`count`: how many there are, when
    `names` holds only the first ones)."""
    shown = "、".join(names[:limit])
    total = len(names) if count is None else count
    if total > limit:
        shown += texts.Notice.MORE_GROUPS.format(n=total)
    return shown


# --- what 通知, 预览 and 进度 say; the chat and the console show the same words --------------

def eta_text(per_account: dict[str, int], pacing: PacingSettings) -> str:
    """How long sending takes at the current pacing, in words (约 3 分钟)."""
    return texts.duration(eta_seconds(
        per_account, min_gap=pacing.min_gap_seconds, jitter=pacing.jitter_seconds,
        hourly_cap=pacing.hourly_cap, daily_cap=pacing.daily_cap))


def tiers_text(lines: Sequence[PreviewLine]) -> str:
    """'3级 2 个群，4级 5 个群'"""
    return "，".join(texts.Notice.QUEUED_TIER.format(tier=line.tier, n=line.groups)
                    for line in lines)


def preview_text(look: Preview, pacing: PacingSettings) -> str:
    """预览 通知 …'s answer: the groups per tier and account, and how long sending takes."""
    return texts.Notice.PREVIEW.format(
        groups=look.total, tiers=tiers_text(look.per_tier),
        accounts=summarise_accounts(look.per_account), eta=eta_text(look.per_account, pacing))


def queued_text(notice: Notice, count: int, look: Preview, pacing: PacingSettings) -> str:
    """通知's answer once the notice is stored and queued."""
    return texts.Notice.QUEUED.format(
        tag=tag(notice.id, notice.urgent), groups=count, tiers=tiers_text(look.per_tier),
        eta=eta_text(look.per_account, pacing), id=notice.id)


def progress_lines(p: Progress, *, modes: Mapping[int, tuple[str, ...]] | None = None
                   ) -> list[str]:
    """进度's answer: a head line, then one line per tier with its silent groups, and how the
    tier acknowledges (`ack_modes`) once some group does other than in the group itself."""
    head = texts.Notice.PROGRESS_HEAD.format(
        tag=tag(p.notice.id, p.notice.urgent), delivered=p.delivered, total=p.total,
        acked=p.acked, reads=p.reads)
    if p.failed:
        head += texts.Notice.PROGRESS_FAILED.format(failed=p.failed)
    lines = [head]
    modes = modes or {}
    mixed = any(m != (ack_texts.MODE_CHAT,) for m in modes.values())
    for t in p.tiers:
        line = texts.Notice.PROGRESS_TIER.format(tier=t.tier, delivered=t.delivered,
                                                 total=t.total, acked=t.acked)
        if mixed and t.tier in modes:
            line += ack_texts.PROGRESS_MODES.format(
                modes=ack_texts.MODES_JOIN.join(modes[t.tier]))
        if t.silent:
            line += texts.Notice.PROGRESS_MISSING.format(
                names=titles(t.missing, count=t.silent))
        lines.append(line)
    return lines


async def follow_ups(session: AsyncSession, *, notice_ids: Sequence[int]
                     ) -> dict[int, tuple[int, int]]:
    """Per notice: how many of its groups were reminded, and how many escalated upward."""
    o = OutboxMessage
    rows = await session.execute(
        select(o.notice_id, func.count(o.reminded_at), func.count(o.escalated_at))
        .where(o.notice_id.in_(list(notice_ids))).group_by(o.notice_id))
    return {int(nid): (int(r), int(e)) for nid, r, e in rows if nid is not None}
