"""Inbound messages -> dedupe -> context -> parse -> authorise -> handler -> reply.

Messages that arrive together are handled in one transaction (one commit, one fsync), each in
its own SAVEPOINT so a failing message rolls back alone; replies leave only after the commit.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import itertools
import json
import logging
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Table,
    TextClause,
    bindparam,
    cast,
    event,
    insert,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.expression import ColumnElement

from bot import hot, store, texts
from bot.config import Settings
from bot.domain import HeldRole, UserError
from bot.grammar import Command, ParseError, as_written, normalise, parse
from bot.grammar.normalise import scrub
from bot.router import Context, Dispatcher, HandlerSpec, Later, Reply
from bot.services import people
from bot.services.notice import digest, echo_body
from bot.transports.base import IncomingMessage
from models import Contact, Echo, Group, InboundMessage, Membership, Node, Person

log = logging.getLogger(__name__)

SendReply = Callable[[IncomingMessage, Reply], Awaitable[None]]
WriteReplies = Callable[[AsyncSession, list[tuple[IncomingMessage, Reply]]], Awaitable[None]]
Answer = Reply | Later | None
# Answers worked out after their batch (Later) at once; more wait for a turn, so long reads
# never take every connection of a pool the batches need.
LATER_AT_ONCE = 2
# SQLSTATEs with which PostgreSQL ends a transaction for what another one did at the same
# time (a deadlock it broke, a serialisation conflict): nothing is wrong with the messages.
# A handler's statement that gets one has the whole batch run again (TRANSIENT_TRIES times
# in all, after a short random pause) instead of answering that message INTERNAL_ERROR; a
# 收到 lost so would have left its group "silent" and escalated to the commanders.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
TRANSIENT_TRIES = 3
TRANSIENT_PAUSE = 0.05  # seconds, at most, times the attempt


def transient(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error that only says another transaction was in the way;
    None for any other error."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state if state in TRANSIENT_SQLSTATES else None


@dataclass(frozen=True, slots=True)
class Queued(Reply):
    """A reply already written to the outbox in the command's transaction."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message worth a database visit: a command, or a command with bad arguments."""

    message: IncomingMessage
    command: Command | None
    error: ParseError | None

    @property
    def name(self) -> str:
        if self.command is not None:
            return type(self.command).__name__
        return f"!{self.error.command if self.error else '?'}"


# Free text other people read (notice content, feedback, answers, report details, reasons).
PROSE_FIELDS = ("text", "detail", "reason")


def scrubbed(message: IncomingMessage) -> IncomingMessage:
    """The message with NUL, controls, bidi/zero-width characters and lone surrogates dropped
    from its text, sender name and room topic, before anything parses or stores them."""
    text, name, topic = (scrub(message.text), scrub(message.sender_name),
                         scrub(message.room_topic))
    if (text, name, topic) == (message.text, message.sender_name, message.room_topic):
        return message
    return dataclasses.replace(message, text=text, sender_name=name, room_topic=topic)


def recorded_echo(message: IncomingMessage) -> bool:
    """The bot's own message worth an Echo row: only tagged texts (notices, alerts) can be in
    the outbox; replies are not."""
    return message.is_self and echo_body(message.text).startswith("【")


def preparse(message: IncomingMessage, bot_names: Sequence[str]) -> Parsed | None:
    """Pure first step: None for chatter and the bot's own echoes (they never are commands)."""
    if message.is_self:
        return None
    raw = message.text
    if len(raw) <= SHORT_TEXT and not any(ch.isnumeric() for ch in raw):
        command, error = _parse_short(raw, tuple(bot_names))
    else:
        command, error = _parse_text(raw, tuple(bot_names))
    if command is None and error is None:
        return None
    return Parsed(scrubbed(message), command, error)


def _parse_text(raw: str, bot_names: tuple[str, ...]) -> tuple[Command | None, ParseError | None]:
    """What a message's text is: a command, a botched command (its error), or neither."""
    text = normalise(scrub(raw), bot_names=bot_names)
    try:
        command = parse(text, normalised=True)
    except ParseError as exc:
        return None, exc
    if command is None:
        return None, None
    kept = normalise(scrub(raw), bot_names=bot_names, keep_punctuation=True)
    prose = {name: as_written(value, parsed=text, kept=kept) for name in PROSE_FIELDS
             if isinstance(value := getattr(command, name, None), str)}
    return (command.model_copy(update=prose) if prose else command), None


# Most chat is a few short phrases said again and again (收到, 好的, [图片], 辛苦了): what the
# parser made of such a text is kept (commands are frozen, parsing is pure), so saying it
# again costs a look-up instead of every family's steps. Only short texts without any digit
# or numeral are kept: never a mobile, an ID number or a temperature.
SHORT_TEXT = 12
_parse_short = functools.lru_cache(maxsize=4096)(_parse_text)


def forget_parsed() -> None:
    """Empty the short-text cache (benches time parsing from cold)."""
    _parse_short.cache_clear()


class Lookups:
    """Who sent each message and which group it came from, for a whole batch at once.

    `prime` resolves every room of a batch with one query, and every sender with their roles
    with another (a sender looked up alone gets their roles with them too, so a message of
    its own costs two look-ups, not three); on PostgreSQL the first PRIME_CHUNK of each come
    in the batch's first statement, with its dedupe rows (`opening`, `take_opening`: one round
    trip for the three). A handler may change what they are (a tenant registering attaches
    their contact id and grants a role; 绑定群 binds a room), so every flush that touches a
    Contact, a Membership or a Group drops the entries it may have changed, and a failed
    message (its savepoint rolled back) drops whatever it left expired; a dropped entry is
    looked up again, alone, when a later message of the batch needs it.
    The entries live for one transaction.
    """

    def __init__(self, session: AsyncSession):
        self.session = session
        self.groups: dict[tuple[str, str], Group | None] = {}
        self.senders: dict[tuple[str, str], Person | None] = {}
        self.roles: dict[int, list[HeldRole]] = {}
        self._sync = session.sync_session
        self._listening = False

    def close(self) -> None:
        if self._listening:
            event.remove(self._sync, "after_flush", self._after_flush)
            event.remove(self._sync, "do_orm_execute", self._on_execute)
            self._sync.info.pop(hot.IDENTITY_WRITES, None)
            self._listening = False

    def clear(self) -> None:
        self.groups.clear()
        self.senders.clear()
        self.roles.clear()

    def _after_flush(self, session: Any, _context: Any) -> None:
        dirty = [o for o in session.dirty if session.is_modified(o, include_collections=False)]
        for obj in (*session.new, *dirty, *session.deleted):
            if isinstance(obj, Contact):
                self.senders.pop((obj.transport, obj.contact_id), None)
                # A contact moved between people: drop whatever names the old person too.
                if obj not in session.new:
                    self.senders.clear()
            elif isinstance(obj, Membership):
                self.roles.pop(obj.person_id, None)
                if obj not in session.new:
                    self.roles.clear()
            elif isinstance(obj, Group):
                self.groups.pop((obj.transport, obj.room_id), None)
                if obj not in session.new:
                    self.groups.clear()
            elif isinstance(obj, Node) and obj not in session.new:
                # A node's parent changed: the parents carried by held roles may be stale.
                self.roles.clear()

    def _on_execute(self, state: Any) -> None:
        # Bulk UPDATE/DELETE/INSERT statements bypass the flush: be safe, forget everything.
        if not state.is_select:
            if state.is_insert and self._forget_inserted(state):
                return
            tables = {m.local_table.name for m in getattr(state, "all_mappers", ())}
            if not tables:
                # A Core INSERT/UPDATE/DELETE on a Table (an outbox row of a fever alert)
                # names its table; text() and the like name none and still clear.
                name = getattr(getattr(state.statement, "table", None), "name", None)
                tables = {name} if isinstance(name, str) else set()
            if not tables or tables & hot.IDENTITY_TABLES:
                self.clear()

    def _forget_inserted(self, state: Any) -> bool:
        """A Core INSERT that declares the identity rows it writes (people.IDENTITY_ROWS, a
        tenant's return below the ORM): drop just the entries they change (a new contact's
        sender, a person's roles); a new person row changes none. False: no declaration,
        the caller decides."""
        rows = state.execution_options.get(people.IDENTITY_ROWS)
        if rows is None:
            return False
        self._forget_rows(rows)
        return True

    def _forget_rows(self, rows: dict[str, Any]) -> None:
        """Drop the entries that declared identity rows change (see people.IDENTITY_ROWS);
        also told by hot statements (bot.hot), which no session event sees."""
        for transport, contact_id in rows.get("contacts", ()):
            self.senders.pop((transport, contact_id), None)
        for person_id in rows.get("roles", ()):
            self.roles.pop(person_id, None)

    def forget_expired(self) -> None:
        """After a savepoint rolled back: drop entries whose objects it expired or expunged."""
        def stale(obj: Any) -> bool:
            if obj is None:
                return False
            state = sa_inspect(obj)
            return state.detached or bool(state.expired_attributes)

        for key in [k for k, g in self.groups.items() if stale(g) or (g and stale(g.node))]:
            del self.groups[key]
        for key in [k for k, p in self.senders.items() if stale(p)]:
            del self.senders[key]

    async def prime(self, items: Sequence[Parsed], share: LoopShare | None = None) -> None:
        """Resolve the rooms, and the senders with their roles, of these messages (one query
        each per PRIME_CHUNK of them, the loop handed back between: loading a few hundred
        rows as objects takes tens of milliseconds)."""
        if len(items) < 2:
            return  # one message looks its room, sender and roles up as it goes
        if not self._listening:
            event.listen(self._sync, "after_flush", self._after_flush)
            event.listen(self._sync, "do_orm_execute", self._on_execute)
            self._sync.info[hot.IDENTITY_WRITES] = self._forget_rows
            self._listening = True
        rooms: dict[str, set[str]] = {}
        contacts: dict[str, set[str]] = {}
        for item in items:
            m = item.message
            if (m.transport, m.room_id) not in self.groups:
                rooms.setdefault(m.transport, set()).add(m.room_id)
            if (m.transport, m.sender_id) not in self.senders:
                contacts.setdefault(m.transport, set()).add(m.sender_id)
        share = share or LoopShare()
        for transport, all_rooms in rooms.items():
            for room_ids in _chunks(sorted(all_rooms)):
                await share.turn()
                await self._groups(transport, room_ids)
        for transport, all_contacts in contacts.items():
            for contact_ids in _chunks(sorted(all_contacts)):
                await share.turn()
                await self._senders(transport, contact_ids)

    async def _groups(self, transport: str, room_ids: Sequence[str]) -> None:
        """The groups bound to these rooms, with their nodes (one query)."""
        self._take_groups(transport, room_ids, await _GROUPS_BY_ROOMS.rows(
            self.session, {"transport": transport, "room_ids": room_ids}))

    def _take_groups(self, transport: str, room_ids: Sequence[str],
                     rows: Sequence[Sequence[Any]]) -> None:
        """What a look-up of these rooms found (_groups_by_rooms' rows)."""
        for room_id in room_ids:
            self.groups[(transport, room_id)] = None
        session = self.session
        for row in rows:
            group = hot.loaded(session, Group, row[:_GROUP_WIDTH])
            set_committed_value(group, "node", hot.loaded(session, Node, row[_GROUP_WIDTH:]))
            self.groups[(transport, group.room_id)] = group

    async def _senders(self, transport: str, contact_ids: Sequence[str]) -> None:
        """Who these contact ids are, and their roles (one query)."""
        self._take_senders(transport, contact_ids, await people.senders_and_roles(
            self.session, transport=transport, contact_ids=contact_ids))

    def _take_senders(self, transport: str, contact_ids: Sequence[str],
                      found: dict[str, tuple[Person, list[HeldRole]]]) -> None:
        """What a look-up of these contact ids found (people.senders_and_roles' answer)."""
        for contact_id in contact_ids:
            person, roles = found.get(contact_id, (None, None))
            self.senders[(transport, contact_id)] = person
            if person is not None and roles is not None:
                self.roles[person.id] = roles

    def opening(self, items: Sequence[Parsed]) -> tuple[str, list[str], list[str]] | None:
        """What the batch's first statement resolves on PostgreSQL (see _opening): the
        transport and up to PRIME_CHUNK of these messages' rooms and senders not known yet;
        None when there is nothing to resolve or more than one transport."""
        transports = {item.message.transport for item in items}
        if len(transports) != 1:
            return None
        (transport,) = transports
        rooms = sorted({item.message.room_id for item in items
                        if (transport, item.message.room_id) not in self.groups})
        contacts = sorted({item.message.sender_id for item in items
                           if (transport, item.message.sender_id) not in self.senders})
        if not rooms or not contacts:
            return None
        return transport, rooms[:PRIME_CHUNK], contacts[:PRIME_CHUNK]

    def take_opening(self, transport: str, room_ids: Sequence[str], contact_ids: Sequence[str],
                   rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The first statement's rows (_opening's): the rooms' and senders' parts taken as
        their own look-ups' rows; the dedupe part's rows returned (id, transport, message
        id), as _RECORD_PG's."""
        parts: tuple[list[tuple[Any, ...]], ...] = ([], [], [])
        for row in rows:
            parts[row[0]].append(row[_OPENED_AT[row[0]]:_OPENED_AT[row[0] + 1]])
        self._take_groups(transport, room_ids, parts[1])
        self._take_senders(transport, contact_ids,
                           people.senders_from_rows(self.session, parts[2]))
        return parts[0]

    async def group(self, transport: str, room_id: str) -> Group | None:
        key = (transport, room_id)
        if key not in self.groups:
            await self._groups(transport, [room_id])
        return self.groups[key]

    async def sender(self, transport: str, contact_id: str) -> Person | None:
        key = (transport, contact_id)
        if key not in self.senders:
            await self._senders(transport, [contact_id])
        return self.senders[key]

    async def held(self, person: Person | None) -> list[HeldRole]:
        if person is None:
            return []
        if person.id not in self.roles:
            self.roles[person.id] = await people.held_roles(self.session, person_id=person.id)
        return self.roles[person.id]


# Rows a batch's look-ups or dedupe INSERT handle per statement, the loop handed back
# between statements (a few milliseconds of work each); hot.warm compiles the look-ups'
# statements of every length up to it.
PRIME_CHUNK = hot.WARM_LIST

# Run hot, the objects built from its columns (hot.loaded): through the ORM this look-up,
# made for every batch, cost 350-379 us of CPU for three rooms on SQLite and 599-637 on
# PostgreSQL, against 203-215 and 426-442.
_GROUP_WIDTH = len(hot.columns(Group))


def _groups_by_rooms(member: hot.Member) -> Select[Any]:
    return (select(*hot.columns(Group), *hot.columns(Node))
            .join_from(Group, Node, Node.id == Group.node_id)
            .where(Group.transport == bindparam("transport"), member(Group.room_id)))


_GROUPS_BY_ROOMS = hot.WithList(_groups_by_rooms, "room_ids")


def _chunks(values: Sequence[Any], size: int = PRIME_CHUNK) -> list[list[Any]]:
    return [list(values[i:i + size]) for i in range(0, len(values), size)]


ECHO_TABLE: Table = Echo.__table__  # type: ignore[assignment]
INBOUND_TABLE: Table = InboundMessage.__table__  # type: ignore[assignment]
# The dedupe rows (Handling._record): one statement for all rows, whatever their number, run
# as a hot statement (bot.hot). Built with SQLAlchemy's insert, an ON CONFLICT statement has no
# cache key: run the usual way it was compiled again for every batch (0.3 ms of CPU). SQLite
# takes the rows as one JSON array (json_each; "WHERE true" keeps its parser from reading
# ON CONFLICT as a join's ON), PostgreSQL as a column each (unnest).
_RECORDED = ("transport", "message_id", "room_id", "sender_id", "command")
_RECORD_SQLITE = hot.Hot(text(
    f"INSERT INTO inbound_message ({', '.join(_RECORDED)}, received_at) "
    f"SELECT {', '.join(f'value ->> {i}' for i in range(len(_RECORDED)))}, :received_at "
    "FROM json_each(:rows) WHERE true "
    "ON CONFLICT (transport, message_id) DO NOTHING RETURNING id, transport, message_id"
).bindparams(bindparam("received_at", type_=INBOUND_TABLE.c.received_at.type),
             bindparam("rows")))
_RECORD_PG = hot.Hot(text(
    f"INSERT INTO inbound_message ({', '.join(_RECORDED)}, received_at) "
    f"SELECT u.*, :received_at FROM unnest({', '.join(f':{c}s' for c in _RECORDED)}) "
    f"AS u({', '.join(_RECORDED)}) "
    "ON CONFLICT (transport, message_id) DO NOTHING RETURNING id, transport, message_id"
).bindparams(bindparam("received_at", type_=INBOUND_TABLE.c.received_at.type),
             *(bindparam(f"{c}s", type_=ARRAY(INBOUND_TABLE.c[c].type)) for c in _RECORDED)))

# PostgreSQL: a batch's first statement is _RECORD_PG, _GROUPS_BY_ROOMS and people's
# senders-and-roles look-up together, one round trip instead of three (each cost 245 µs of
# wall and 150-190 µs of CPU on a machine where system calls are dear). See _opening.
_OPENED_PARTS = (
    (INBOUND_TABLE.c.id, INBOUND_TABLE.c.transport, INBOUND_TABLE.c.message_id),
    (*hot.columns(Group), *hot.columns(Node)),
    people.SENDER_AND_ROLE_COLUMNS,
)
_OPENINGS: dict[int, hot.Hot] = {}
# Where each part's columns start in a row of _opening (after `part`), and where they end.
_OPENED_AT = tuple(itertools.accumulate(map(len, _OPENED_PARTS), initial=1))


def _opening(size: int) -> hot.Hot:
    """The statement for up to `size` rooms and senders (each list padded to `size` with
    its last member, as hot.WithList does): a UNION ALL of the three parts' rows, each part's
    columns in places of their own (NULLs of their types in the other parts' rows), `part`
    telling the rows apart; a sender's roles in the order of their memberships."""
    found = _OPENINGS.get(size)
    if found is not None:
        return found
    recorded = _RECORD_PG.statement
    assert isinstance(recorded, TextClause)
    rec = recorded.columns(*_OPENED_PARTS[0]).cte("rec")
    sources = (
        select(*rec.c).select_from(rec),
        _groups_by_rooms(lambda column: hot.in_list(column, "room_ids", size)),
        people.senders_and_roles_of(lambda column: hot.in_list(column, "contact_ids", size)),
    )
    arms = []
    for part, source in enumerate(sources):
        values = iter(source.selected_columns)
        row: list[ColumnElement[Any]] = [literal_column(str(part), Integer)]
        for other, columns in enumerate(_OPENED_PARTS):
            row += [next(values) if other == part else cast(null(), column.type)
                    for column in columns]
        arms.append(source.order_by(None).with_only_columns(
            *(column.label(f"c{k}") for k, column in enumerate(row))))
    last = _OPENED_AT[-1] - 1  # the membership's id, the roles' order
    found = _OPENINGS[size] = hot.Hot(union_all(*arms).order_by(
        literal_column("c0"), literal_column(f"c{last}")))
    return found


@hot.makes
def _warm_openings(dialect: str) -> None:
    """_opening's statements of every size the pipeline uses (see hot.warm)."""
    if dialect == "postgresql":
        for size in hot.WARM_SIZES:
            _opening(size)


def authorise(spec: HandlerSpec, ctx: Context) -> str | None:
    """None when the route's declaration lets this sender use the command here; otherwise the
    refusal, naming where and by whom it is used (the same declaration 帮助 reads)."""
    if spec.allowed(ctx):
        return None
    command = ctx.command
    keyword = getattr(command, "keyword", "") or type(command).__name__
    if getattr(command, "landlord_form", False):
        keyword = texts.Permission.LANDLORD_FORM_KEYWORD
    if spec.needs_group and ctx.node is None:
        return texts.General.GROUP_NOT_BOUND
    if not spec.in_place(ctx):
        tiers = spec.tiers_for(ctx)
        assert tiers is not None
        where = "、".join(texts.TIER_NAMES[t] for t in sorted(tiers))
        return texts.General.WRONG_GROUP.format(command=keyword, where=where)
    assert spec.allow is not None
    refusal = texts.General.NOT_PERMITTED.format(command=keyword, who=spec.allow.describe(ctx))
    if not ctx.memberships:
        refusal += texts.General.ASK_INVITE
    return refusal


class LoopShare:
    """Hands the event loop back between steps of a long run of work (a batch's parsing and
    handlers), at most every TURN seconds, so other chats, the sender and timers never wait
    for a whole batch. Whoever else wants the database still waits for the batch's
    connection (SQLite has one); what the batch reads and writes is its own until it commits.
    """

    TURN = 0.001

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def turn(self) -> None:
        """Yield to the loop if this run has had it for TURN seconds or more."""
        if time.perf_counter() - self._since >= self.TURN:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
            store.turn_taken()

    def restart(self) -> None:
        """A new run of work starts now (the loop has just had its turn)."""
        self._since = time.perf_counter()


# (transport, room id) -> (group id, account) of the rooms the task's last batch resolved
# (Handling.rooms): a context variable, so each lane (a task) sees its own batch's.
_ROOMS: contextvars.ContextVar[dict[tuple[str, str], tuple[int, str]]] = \
    contextvars.ContextVar("tierbot_batch_rooms", default={})  # noqa: B039 (never mutated)


class Handling:
    """The per-message logic, usable in a shared (batched) or an own transaction."""

    @property
    def rooms(self) -> dict[tuple[str, str], tuple[int, str]]:
        """The rooms this task's last batch resolved, for the reply writer (read, never
        changed)."""
        return _ROOMS.get()

    def __init__(self, *, settings: Settings, dispatcher: Dispatcher,
                 clock_now: Callable[[], datetime],
                 on_schedule: Callable[[Any], None] | None = None):
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock_now = clock_now
        self.on_schedule = on_schedule
        self.share = LoopShare()

    async def _record(self, session: AsyncSession, items: Sequence[Parsed], now: datetime,
                      lookups: Lookups | None = None, wanted: Sequence[Parsed] = ()
                      ) -> list[int | None]:
        """One INSERT for the dedupe rows of all these messages; None for a duplicate (seen
        before, or earlier in the same list). On PostgreSQL the same statement also looks
        up the rooms and senders of `wanted` (those it can, see Lookups.opening) in `lookups`."""
        first: dict[tuple[str, str], int] = {}
        rows = []
        for index, item in enumerate(items):
            msg = item.message
            key = (msg.transport, msg.message_id)
            if key in first:
                continue
            first[key] = index
            rows.append({"transport": msg.transport, "message_id": msg.message_id,
                         "room_id": msg.room_id, "sender_id": msg.sender_id,
                         "command": item.name[:32]})
        ids: list[int | None] = [None] * len(items)
        if session.bind.dialect.name == "postgresql":
            params = {"received_at": now,
                      **{f"{column}s": [row[column] for row in rows] for column in _RECORDED}}
            opening = lookups.opening(wanted) if lookups is not None else None
            if lookups is None or opening is None:
                found = await _RECORD_PG.rows(session, params)
            else:
                transport, room_ids, contact_ids = opening
                size = hot.list_size(max(len(room_ids), len(contact_ids)))
                params |= hot.list_params("room_ids", room_ids, size)
                params |= hot.list_params("contact_ids", contact_ids, size)
                found = lookups.take_opening(
                    transport, room_ids, contact_ids,
                    await _opening(size).rows(session, {**params, "transport": transport}))
        else:
            found = await _RECORD_SQLITE.rows(session, {
                "received_at": now,
                "rows": json.dumps([[row[column] for column in _RECORDED] for row in rows],
                                   ensure_ascii=False)})
        for row_id, transport, message_id in found:
            ids[first[(transport, message_id)]] = row_id
        return ids

    def _has_handler(self, item: Parsed) -> bool:
        return item.command is not None and self.dispatcher.spec_for(item.command) is not None

    async def handle(self, session: AsyncSession, item: Parsed,
                     after_commit: list[Callable[[], None]] | None = None) -> Answer:
        """Run one message inside the caller's transaction; None means: say nothing."""
        return (await self.handle_all(session, [item], after_commit))[0]

    async def handle_all(self, session: AsyncSession, items: Sequence[Parsed],
                         after_commit: list[Callable[[], None]] | None = None, *,
                         savepoints: bool = True, run_again: bool = False) -> list[Answer]:
        """Run these messages, in order, inside the caller's transaction: one dedupe INSERT
        and one lookup of rooms, senders and roles for all, then each message's handler.
        Returns a reply (or None: say nothing, or Later: answer after the commit) per
        message.

        savepoints=True: each handler in its own SAVEPOINT, so a failing one rolls back alone.
        savepoints=False (the caller can redo the whole transaction): no SAVEPOINTs; a handler
        that fails before it wrote anything (the usual UserError: checks come first) just gets
        its answer, and one that fails after writing raises `RedoWithSavepoints`; the caller
        then rolls the transaction back and runs the same messages again with savepoints.
        run_again=True (with savepoints): a handler that fails on a `transient` error raises
        `RunAgain` instead of answering INTERNAL_ERROR; the caller rolls back and retries."""
        if not items:
            return []
        if after_commit is None:
            after_commit = []
        lookups = Lookups(session)
        handled = [self._has_handler(item) for item in items]
        ids = await self._record(session, items, self.clock_now(), lookups,
                                 [item for item, h in zip(items, handled, strict=True) if h])
        watch = None if savepoints else await WriteWatch.start(session)
        try:
            todo = [item for item, inbound_id, h in zip(items, ids, handled, strict=True)
                    if inbound_id is not None and h]
            await lookups.prime(todo, self.share)
            replies: list[Answer] = []
            for item, inbound_id in zip(items, ids, strict=True):
                await self.share.turn()
                replies.append(await self._handle_one(session, item, inbound_id, lookups,
                                                      after_commit, watch, run_again))
            return replies
        finally:
            # The rooms this batch resolved, for the reply writer (no second lookup); read
            # without loading, so an entry a rollback expired is just left out.
            _ROOMS.set({key: (g.__dict__["id"], g.__dict__["account"])
                        for key, g in lookups.groups.items()
                        if g is not None and "id" in g.__dict__ and "account" in g.__dict__})
            lookups.close()
            if watch is not None:
                watch.stop()

    async def _handle_one(self, session: AsyncSession, item: Parsed, inbound_id: int | None,
                          lookups: Lookups, after_commit: list[Callable[[], None]],
                          watch: WriteWatch | None = None, run_again: bool = False) -> Answer:
        if inbound_id is None:
            log.info("duplicate message %s ignored", item.message.message_id)
            return None
        if item.error is not None:
            return Reply(item.error.hint)
        assert item.command is not None
        msg = item.message
        spec = self.dispatcher.spec_for(item.command)
        if spec is None:
            return None
        group = await lookups.group(msg.transport, msg.room_id)
        sender = await lookups.sender(msg.transport, msg.sender_id)
        held = list(await lookups.held(sender))
        ctx = Context(session=session, message=msg, settings=self.settings,
                      clock_now=self.clock_now, group=group,
                      node=group.node if group else None, sender=sender, memberships=held,
                      inbound_id=inbound_id, specs=self.dispatcher.specs,
                      on_schedule=self.on_schedule)
        ctx.after_commit = after_commit
        ctx.command = item.command
        refusal = authorise(spec, ctx)
        if refusal is not None:
            # A command read from other words than its own (Feedback.unmarked) is no request
            # to refuse: the sender was talking.
            quiet = spec.quiet or getattr(item.command, "unmarked", False)
            return None if quiet else Reply(refusal)
        if watch is not None:
            return await self._run_unguarded(session, spec.func, item, ctx, watch)
        try:
            # A failing handler rolls back its own effects only, never the batch's.
            mark = len(ctx.after_commit)
            written = people.known_mark(session)
            async with session.begin_nested():
                result = await spec.func(item.command, ctx)
        except UserError as exc:
            del ctx.after_commit[mark:]
            people.forget_known(session, written)
            lookups.forget_expired()
            return Reply(exc.text)
        except Exception as exc:
            if run_again and (state := transient(exc)):
                raise RunAgain(msg.message_id, state) from exc
            del ctx.after_commit[mark:]
            people.forget_known(session, written)
            lookups.forget_expired()
            log.exception("handler %s failed on message %s", item.name, msg.message_id)
            return Reply(texts.General.INTERNAL_ERROR)
        if result is None:
            return None
        return result if isinstance(result, Reply | Later) else Reply(result)


    @staticmethod
    async def _run_unguarded(session: AsyncSession, func: Any, item: Parsed, ctx: Context,
                             watch: WriteWatch) -> Answer:
        """The handler without a SAVEPOINT (see handle_all, savepoints=False)."""
        mark = len(ctx.after_commit)
        writes = watch.writes
        sync = session.sync_session
        try:
            result = await func(item.command, ctx)
            if sync.new or sync.dirty or sync.deleted:
                await session.flush()  # this message's writes, before the next one starts
        except UserError as exc:
            if watch.writes != writes or sync.new or sync.dirty or sync.deleted:
                raise RedoWithSavepoints(item.message.message_id) from exc
            del ctx.after_commit[mark:]
            return Reply(exc.text)
        except Exception as exc:
            # Whatever it did (on PostgreSQL a failed statement spoils the transaction too):
            # the batch runs again with savepoints, where this message fails alone.
            raise RedoWithSavepoints(item.message.message_id) from exc
        if result is None:
            return None
        return result if isinstance(result, Reply | Later) else Reply(result)


class RunAgain(Exception):
    """A handler met a `transient` error: roll the batch back and run it again."""


class RedoWithSavepoints(Exception):
    """A handler failed after it wrote (handle_all, savepoints=False): roll back, run again."""


class WriteWatch:
    """Counts the statements other than SELECT on the session's connection, less those a
    hot statement's caller said changed no row (hot.wrote_nothing)."""

    def __init__(self, connection: Any, info: dict[Any, Any]):
        self.connection = connection
        self.info = info
        self.writes = 0

    @classmethod
    async def start(cls, session: AsyncSession) -> WriteWatch:
        # The connection the batch's hot statements then use as kept (hot.connection): asked
        # of the session again, it cost a greenlet switch per batch.
        watch = cls((await hot.connection(session))[0].sync_connection,
                    session.sync_session.info)
        event.listen(watch.connection, "before_cursor_execute", watch._count)
        watch.info[hot.WROTE_NOTHING] = watch._take_back
        return watch

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip()[:6].upper() == "SELECT":
            self.writes += 1

    def _take_back(self) -> None:
        self.writes -= 1

    def stop(self) -> None:
        event.remove(self.connection, "before_cursor_execute", self._count)
        self.info.pop(hot.WROTE_NOTHING, None)


# A queued message: what preparse made of it on arrival, its arrival number (None for the
# bot's own echoes, which no question waits for) and whether it is a question that reads
# other rooms' writes (HandlerSpec.reads_others) on several lanes (see Pipeline._next_batch).
InQueue = tuple[IncomingMessage, Parsed | None, int | None, bool]


def _room_key(message: IncomingMessage) -> str:
    """A room's key in the lanes (a private chat's: its sender's)."""
    return f"{message.transport}/{message.room_id or '@' + message.sender_id}"


class Pipeline:
    """Consumes inbound messages in batches: one transaction per batch, then the replies."""

    def __init__(self, *, handling: Handling, sessions: async_sessionmaker[AsyncSession],
                 send_reply: SendReply, bot_names: Sequence[str], batch_max: int,
                 after_commit: Callable[[], None] | None = None,
                 write_replies: WriteReplies | None = None, echo_linger: float = 0.0,
                 read_sessions: async_sessionmaker[AsyncSession] | None = None,
                 lanes: int = 1):
        self.handling = handling
        # Replies go into the outbox in the command's own transaction (then `send_reply`
        # gets them as `Queued`, only to hear of them).
        self.write_replies = write_replies
        self.sessions = sessions
        # Where answers that come Later are read (BotApp.read_session).
        self.read_sessions = read_sessions or sessions
        self._later: set[asyncio.Task[None]] = set()
        self._reading: set[asyncio.Task[Any]] = set()  # of those, still reading
        self._dropping = False
        self._later_turns = asyncio.Semaphore(LATER_AT_ONCE)
        self.send_reply = send_reply
        self.bot_names = tuple(bot_names)
        self.batch_max = batch_max
        self.after_commit = after_commit
        # Seconds a batch of nothing but the bot's own echoes waits for more (see _linger).
        self.echo_linger = echo_linger
        # Each message with what preparse made of it on arrival (see submit), in its room's
        # lane: each lane runs its batches one after another, the lanes side by side.
        self._lanes: list[asyncio.Queue[InQueue]] = [
            asyncio.Queue() for _ in range(lanes)]
        # Per lane: what it has taken from its queue but left for a later batch (the rooms of
        # questions that wait, and what a full batch could not take), in arrival order; and
        # a wake-up when it may have something to do (a message, or any batch done).
        self._aside: list[list[InQueue]] = [[] for _ in range(lanes)]
        self._wakes = [asyncio.Event() for _ in range(lanes)]
        # Arrival numbers (the bot's own echoes have none): the next to give, those not yet
        # handled, and none below `_low` unhandled (see _earliest).
        self._arrivals = 0
        self._unhandled: set[int] = set()
        self._low = 0
        # The arrival numbers of the questions waiting now (see _next_batch): a batch that
        # starts before the earliest of them ends there, so that question is not held for
        # the rest of a long batch.
        self._waiting: set[int] = set()
        self._arrived = asyncio.Event()
        self._hurried = False
        # Messages submitted and handled so far (the difference: those waiting or being
        # handled), and a wake-up after each batch (see record_echoes_now); while
        # `_flushing`, no batch lingers for more echoes.
        self._submitted = 0
        self._handled = 0
        self._progress = asyncio.Event()
        self._flushing = 0

    async def submit(self, message: IncomingMessage) -> None:
        """The transport's callback: queue a message in its room's lane (see lane_of), parsed
        now, with its arrival number; a question that reads other rooms' writes is marked (see
        _next_batch). Parsing is pure and costs about 0.1 ms a message; done on arrival it
        mostly runs while the batch before waits for the database, instead of at the head of
        the next batch (where the whole batch waited for it)."""
        parsed = self._preparse(message)
        self._submitted += 1
        lane = self._lane_index(message)
        arrival = None
        question = False
        if not message.is_self:
            arrival = self._arrivals
            self._arrivals += 1
            self._unhandled.add(arrival)
            if len(self._lanes) > 1 and parsed is not None and parsed.command is not None:
                spec = self.handling.dispatcher.spec_for(parsed.command)
                question = spec is not None and spec.reads_others
        self._lanes[lane].put_nowait((message, parsed, arrival, question))
        self._wakes[lane].set()
        self._arrived.set()

    def lane_of(self, message: IncomingMessage
                ) -> asyncio.Queue[InQueue]:
        """The queue of the message's room (a private chat's: its sender's): a room's messages
        are handled in arrival order, one batch after another. Messages of two rooms in two
        lanes may be handled in either order, as those of two processes sharing a database
        are (README, "Several processes"). The bot's own messages (echoes: only the sender
        and the watchdog read them) all go to the first lane, where they wait for each other
        and share commits (see _linger)."""
        return self._lanes[self._lane_index(message)]

    def _lane_index(self, message: IncomingMessage) -> int:
        if len(self._lanes) == 1 or message.is_self:
            return 0
        return zlib.crc32(_room_key(message).encode()) % len(self._lanes)

    def _preparse(self, message: IncomingMessage) -> Parsed | None:
        """preparse, a failure logged and the message taken as chatter (a parser's bug
        costs that message its answer, not the batch it would have shared)."""
        try:
            return preparse(message, self.bot_names)
        except Exception:
            log.exception("message %s could not be parsed", message.message_id)
            return None

    def hurry(self) -> None:
        """From now on no batch waits for more echoes (stopping: record what is in hand)."""
        self._hurried = True
        self._arrived.set()

    async def record_echoes_now(self, timeout: float) -> None:
        """Until what has arrived so far is handled, no batch waits for more echoes (see
        _linger); returns when it is, or after `timeout` seconds. The sender asks this before
        it decides from the recorded echoes whether a row left `sending` went out: an echo
        this process received but kept waiting for company would be missed, and the row sent
        twice (found by tests/test_sender_model.py: a restart of the sender alone, its last
        send's echo still lingering)."""
        target = self._submitted
        if self._handled >= target:
            return
        self._flushing += 1
        self._arrived.set()
        try:
            async with asyncio.timeout(timeout):
                while self._handled < target:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            log.warning("messages received before a reconcile not handled within %.0f s",
                        timeout)
        finally:
            self._flushing -= 1

    @property
    def lanes(self) -> int:
        """How many lanes run batches side by side (see lane_of)."""
        return len(self._lanes)

    def queued(self) -> int:
        """Messages waiting in the lanes, not yet taken into a batch."""
        return sum(queue.qsize() for queue in self._lanes) + sum(map(len, self._aside))

    def has_pending(self) -> bool:
        """Whether messages wait to be handled or are being handled (or answered Later)."""
        return self._handled < self._submitted or bool(self._later)

    async def idle(self) -> None:
        """Wait until every submitted message has been handled and answered (echoes waiting
        for company included: up to `echo_linger` more; answers that come Later too)."""
        for queue in self._lanes:
            await queue.join()
        while self._later:
            await asyncio.wait(set(self._later))

    async def cancel_later(self) -> None:
        """Stopping: answers still being read are dropped (their questions are recorded;
        they write nothing); one already being written to the outbox is let finish, so no
        transaction of the writer is cut off."""
        self._dropping = True
        try:
            for task in list(self._reading):
                task.cancel()
            while self._later:
                await asyncio.wait(set(self._later))
        finally:
            self._dropping = False

    async def run(self) -> None:
        """Forever, in each lane: take what has arrived (up to batch_max), handle it, answer
        it. Cancelling it is safe only while every lane waits for messages (see
        BotApp.stop)."""
        if len(self._lanes) == 1:
            await self._run_lane(0)
            return
        lanes = [asyncio.create_task(self._run_lane(k), name=f"lane-{k}")
                 for k in range(len(self._lanes))]
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _run_lane(self, lane: int) -> None:
        queue, wake = self._lanes[lane], self._wakes[lane]
        while True:
            wake.clear()
            batch = self._next_batch(lane)
            if not batch:
                await wake.wait()
                continue
            try:
                await self._linger(batch, lane)
            except Exception:
                log.exception("waiting for more echoes failed")
            try:
                await self.process([m for m, _, _, _ in batch], [p for _, p, _, _ in batch])
            except Exception:
                log.exception("batch of %d messages failed", len(batch))
            finally:
                for _, _, arrival, _ in batch:
                    queue.task_done()
                    if arrival is not None:
                        self._unhandled.discard(arrival)
                self._handled += len(batch)
                self._progress.set()
                for other in self._wakes:  # a question there may be free to go now
                    other.set()

    def _earliest(self) -> int:
        """The arrival number of the earliest message not yet handled (or the next to come)."""
        while self._low < self._arrivals and self._low not in self._unhandled:
            self._low += 1
        return self._low

    def _next_batch(self, lane: int) -> list[InQueue]:
        """The lane's next batch: up to batch_max of what it has, in arrival order, except
        that a question that reads other rooms' writes goes only once everything that arrived
        before it, in every lane, is handled. Until then its room waits behind it, and the
        lane goes on with its other rooms' messages (it holds no transaction meanwhile). The
        earliest message not yet handled can always go (a question only waits for earlier
        ones, and a room only for its own earlier question), so no two wait for each other.
        A ready question is always its batch's first message (everything before it is
        handled), and a batch that starts before a waiting question ends where it does, so
        that question is not held for the rest of a long batch."""
        queue, source = self._lanes[lane], self._aside[lane]
        kept: list[InQueue] = []
        batch: list[InQueue] = []
        first: int | None = None  # the batch's first arrival number
        limit = min(self._waiting, default=None)
        waiting: set[str] = set()  # rooms behind a question that waits

        def place(item: InQueue) -> bool:
            """Take `item` or set it aside: False once the batch is complete."""
            nonlocal first
            message, _, arrival, question = item
            if len(batch) >= self.batch_max:
                kept.append(item)
                return False
            if arrival is None:
                batch.append(item)
                return True
            if waiting and _room_key(message) in waiting:
                kept.append(item)
                return True
            if question:
                if self._earliest() != arrival:
                    self._waiting.add(arrival)
                    waiting.add(_room_key(message))
                    kept.append(item)
                    return True
                self._waiting.discard(arrival)
            if first is not None and limit is not None and first < limit < arrival:
                kept.append(item)
                return False
            batch.append(item)
            if first is None:
                first = arrival
            return True

        for k, item in enumerate(source):
            if not place(item):
                kept.extend(source[k + 1:])
                break
        else:
            while not queue.empty():
                if not place(queue.get_nowait()):
                    break
        self._aside[lane] = kept
        return batch

    async def _linger(self, batch: list[InQueue], lane: int) -> None:
        """While the batch holds only the bot's own echoes, wait up to `echo_linger` seconds
        for more, so they share one commit (a paced broadcast echoes a send every few
        milliseconds; alone, each would be a transaction and an fsync). Any other message
        (a command, chatter) ends the wait at once and joins the batch, so no reply waits
        (a question, or any message while rooms wait behind one, is left for the next batch:
        _next_batch decides); so do a full batch and `hurry`. An echo is only proof
        that a send went out: one lost with the process before its commit leaves its row
        `sending` or `sent`, which restart reconciliation settles as it always has."""
        if self.echo_linger <= 0 or self._hurried or self._flushing:
            return
        if not all(m.is_self for m, _, _, _ in batch) or \
                not any(recorded_echo(m) for m, _, _, _ in batch):
            return  # a command to handle now, or nothing to record (replies' echoes)
        queue = self._lanes[lane]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.echo_linger
        while len(batch) < self.batch_max and not self._hurried and not self._flushing:
            if not queue.empty():
                arrived = queue.get_nowait()
                if arrived[2] is None:
                    batch.append(arrived)
                    continue
                # Any other message ends the wait: it joins the batch unless the next batch
                # must decide (a question, or rooms waiting behind one).
                if arrived[3] or self._aside[lane]:
                    self._aside[lane].append(arrived)
                else:
                    batch.append(arrived)
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                # Waiting on the event, not on the queue: a timed-out get could drop a message.
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def process(self, batch: Sequence[IncomingMessage],
                      parsed: Sequence[Parsed | None] | None = None) -> None:
        """Handle a batch: echoes recorded, chatter dropped, commands in one transaction.
        `parsed`: what preparse made of each message, when submit did it on arrival."""
        items: list[Parsed] = []
        echoes: list[IncomingMessage] = []
        share = self.handling.share
        share.restart()
        for k, message in enumerate(batch):
            if message.is_self:
                if recorded_echo(message):
                    echoes.append(message)
                continue
            if parsed is not None:
                item = parsed[k]
            else:
                await share.turn()
                item = self._preparse(message)
            if item is not None:
                items.append(item)
        if not items and not echoes:
            return
        started = time.perf_counter()
        after: list[Callable[[], None]] = []
        later: list[tuple[IncomingMessage, Later]] = []
        try:
            replies = await self._in_one_transaction(items, echoes, after, later)
        except Exception:
            # The shared commit failed: give each message its own transaction, so one
            # bad message cannot take the others down with it.
            log.exception("batch commit failed; retrying %d messages one by one", len(items))
            replies, after, later = [], [], []
            for one in [[e] for e in echoes] + [[i] for i in items]:
                try:
                    mine: list[Callable[[], None]] = []
                    mine_later: list[tuple[IncomingMessage, Later]] = []
                    if isinstance(one[0], Parsed):
                        replies += await self._in_one_transaction(one, [], mine, mine_later)  # type: ignore[arg-type]
                    else:
                        await self._in_one_transaction([], one, mine, mine_later)  # type: ignore[arg-type]
                    after += mine
                    later += mine_later
                except Exception:
                    if isinstance(one[0], Parsed):
                        log.exception("message %s failed", one[0].message.message_id)
                        replies.append((one[0].message, Reply(texts.General.INTERNAL_ERROR)))
                    else:
                        log.exception("echo %s not recorded", one[0].message_id)
        log.debug("handled %d commands, %d echoes in %.1f ms", len(items), len(echoes),
                  (time.perf_counter() - started) * 1000)
        for callback in after:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")
        # Only commands queue outbox rows: a batch of echoes alone does not wake the sender.
        if self.after_commit is not None and items:
            self.after_commit()
        for message, reply in replies:
            try:
                await self.send_reply(message, reply)
            except Exception:
                log.exception("reply to message %s could not be sent", message.message_id)
        for message, answer in later:
            task = asyncio.create_task(self._answer_later(message, answer),
                                       name=f"later-{message.message_id}")
            self._later.add(task)
            task.add_done_callback(self._later.discard)

    async def _answer_later(self, message: IncomingMessage, later: Later) -> None:
        """Work out an answer that came Later (its batch has committed), in a read session
        of its own, and send it the way every reply goes (the outbox, in its own
        transaction)."""
        reply: Reply | None
        me = asyncio.current_task()
        assert me is not None
        self._reading.add(me)
        try:
            if self._dropping:
                return
            async with self._later_turns:
                try:
                    async with self.read_sessions() as session, session.begin():
                        result = await later.read(session)
                    reply = None if result is None else \
                        result if isinstance(result, Reply) else Reply(result)
                except UserError as exc:
                    reply = Reply(exc.text)
                except Exception:
                    log.exception("the answer to message %s failed", message.message_id)
                    reply = Reply(texts.General.INTERNAL_ERROR)
        finally:
            self._reading.discard(me)
        if reply is None:
            return
        try:
            if self.write_replies is not None:
                async with self.sessions() as session, session.begin():
                    await self.write_replies(session, [(message, reply)])
                reply = Queued(reply.text, reply.mentions)
                if self.after_commit is not None:
                    self.after_commit()
            await self.send_reply(message, reply)
        except Exception:
            log.exception("reply to message %s could not be sent", message.message_id)

    async def _in_one_transaction(
        self, items: Sequence[Parsed], echoes: Sequence[IncomingMessage],
        after: list[Callable[[], None]], later: list[tuple[IncomingMessage, Later]],
    ) -> list[tuple[IncomingMessage, Reply]]:
        """The replies to send; answers that come Later are added to `later`, callbacks to
        run after the commit to `after` (both only once the transaction has committed). A
        batch that met another transaction (`transient`) is run again whole (RunAgain)."""
        if items:
            # Without savepoints first (a message alone too: its SAVEPOINT and RELEASE were
            # two round trips on PostgreSQL); should a handler fail after writing, the whole
            # transaction is rolled back and the batch runs again with them.
            mine: list[Callable[[], None]] = []
            mine_later: list[tuple[IncomingMessage, Later]] = []
            try:
                out = await self._transaction(items, echoes, mine, mine_later,
                                              savepoints=False)
            except RedoWithSavepoints as exc:
                log.info("message %s failed after writing; batch of %d again with savepoints",
                         exc.args[0], len(items))
            else:
                after += mine
                later += mine_later
                return out
        for attempt in range(1, TRANSIENT_TRIES + 1):
            mine, mine_later = [], []
            try:
                out = await self._transaction(items, echoes, mine, mine_later, savepoints=True,
                                              run_again=attempt < TRANSIENT_TRIES)
            except RunAgain as exc:
                log.warning("message %s met another transaction (SQLSTATE %s); batch of %d "
                            "again", exc.args[0], exc.args[1], len(items))
                await asyncio.sleep(random.uniform(0, TRANSIENT_PAUSE * attempt))
                continue
            after += mine
            later += mine_later
            return out
        raise AssertionError("the last attempt does not run again")

    async def _transaction(
        self, items: Sequence[Parsed], echoes: Sequence[IncomingMessage],
        after: list[Callable[[], None]], later: list[tuple[IncomingMessage, Later]], *,
        savepoints: bool, run_again: bool = False,
    ) -> list[tuple[IncomingMessage, Reply]]:
        out: list[tuple[IncomingMessage, Reply]] = []
        async with self.sessions() as session, session.begin():
            if echoes:
                now = self.handling.clock_now()
                # Core, on the table: the ORM's bulk-insert path costs more than the rows.
                await session.execute(insert(ECHO_TABLE), [
                    {"transport": e.transport, "room_id": e.room_id, "digest": digest(e.text),
                     "message_id": e.message_id, "at": now} for e in echoes])
            replies = await self.handling.handle_all(session, items, after,
                                                     savepoints=savepoints, run_again=run_again)
            for item, answer in zip(items, replies, strict=True):
                if isinstance(answer, Later):
                    later.append((item.message, answer))
                elif answer is not None:
                    out.append((item.message, answer))
            if self.write_replies is not None and out:
                for chunk in _chunks(out):
                    await self.handling.share.turn()
                    await self.write_replies(session, chunk)
                out = [(m, Queued(r.text, r.mentions)) for m, r in out]
        return out
