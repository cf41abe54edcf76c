"""Hot statements: prebuilt Core statements that the busiest commands run straight on the
driver.

Executing a statement through SQLAlchemy costs about 45 µs of CPU (its execution context,
parameter and result set-up) where SQLite itself takes 1-2 µs; a busy hour's commands
(readings, 收到, returns) run a few such statements each, so that overhead was a fifth of a
command's cost (bench/inbound.py). A `Hot` statement is compiled by SQLAlchemy once per
dialect (the SQL and the parameters' type processing are SQLAlchemy's own), then each call
puts its parameters in order and hands them to the driver: on SQLite the inline connection's
sqlite3 call (bot.store.InlineSQLite.hot, which hands the loop back as every statement
does), on PostgreSQL asyncpg's, inside the transaction SQLAlchemy's adapter keeps.

What a hot statement may be (checked when it is first compiled, so a misuse fails in every
test that runs it, never quietly):
- a Core statement (a select, an insert optionally returning, an update) without expanding (IN)
  parameters;
- its rows come back as plain tuples, each column processed as SQLAlchemy would (a
  UTCDateTime made aware), a column without processing (integers, text) as the driver
  gave it;
- it writes none of the identity tables (person, contact, membership, chat_group, node),
  unless made with `identity=True` and each call declares the identity rows it writes
  (IDENTITY_ROWS' form): whoever caches who is who (bot.pipeline.Lookups) learns of
  other writes through session events, which a hot statement does not fire, so it is told
  of these through the session's `info[IDENTITY_WRITES]`.
Like any Core statement run through a session, it does not autoflush; listeners of the
connection's `before_cursor_execute` see it (with no cursor and no context), the engine's
other events do not.

A list parameter goes through `WithList` (a statement per dialect, and on PostgreSQL per
length). Rows of a mapped class's columns become the objects a query would have loaded
through `loaded` (the pipeline's look-ups of rooms and senders).
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Text, bindparam, exc, func, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, class_mapper
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement, Executable
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from bot.store import InlineSQLite
from models import Contact, Group, Membership, Node, Person

log = logging.getLogger(__name__)
# Who is who: the tables whose rows the pipeline's look-ups cache (bot.pipeline.Lookups).
IDENTITY_TABLES = frozenset(model.__tablename__
                            for model in (Person, Contact, Membership, Group, Node))
_REQUIRED = object()
# An execution option of Core INSERTs into the identity tables: the identity rows a
# statement writes, for whoever caches who is who (the pipeline's look-ups drop just those
# entries): {"contacts": [(transport, contact_id)], "roles": [person_id]}. A hot statement
# takes the same declaration as its `identity_rows`.
IDENTITY_ROWS = "tierbot_identity_rows"
# session.sync_session.info key: a callable told the identity rows a hot statement writes.
IDENTITY_WRITES = "tierbot_identity_writes"
# The tables a statement's SQL writes (its CTEs' too).
_WRITES = re.compile(r'\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+("?\w+"?)', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for one dialect: its SQL and, in order, each parameter's name,
    the value it has when the call gives none (a literal of the statement), and its bind
    processor; then each result column's processor (None: no column needs one)."""

    sql: str
    params: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    results: tuple[Callable[[Any], Any] | None, ...] | None = None

    def processed(self, rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        if self.results is None:
            return rows
        return [tuple(value if process is None else process(value)
                      for value, process in zip(row, self.results, strict=True))
                for row in rows]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, default, process in self.params:
            value = values.get(name, default)
            if value is _REQUIRED:
                raise KeyError(f"a hot statement's parameter {name!r} was not given")
            out.append(value if process is None else process(value))
        return tuple(out)


class Hot:
    """A Core statement run straight on the driver (see the module's rules)."""

    __slots__ = ("statement", "identity", "_plans", "__weakref__")

    def __init__(self, statement: Executable, *, identity: bool = False):
        self.statement = statement
        self.identity = identity
        self._plans: dict[str, _Plan] = {}
        _MADE.add(self)

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self.statement, dialect,
                                                        identity=self.identity)
        return plan

    async def rows(self, session: AsyncSession, params: Mapping[str, Any] | None = None, *,
                   identity_rows: dict[str, Any] | None = None) -> Sequence[tuple[Any, ...]]:
        """Run it in the session's transaction; its rows (none for a plain insert).
        `identity_rows`: what a statement made with identity=True writes (required)."""
        if self.identity:
            if identity_rows is None:
                raise TypeError("a hot statement writing identity rows must declare them")
            forget = session.sync_session.info.get(IDENTITY_WRITES)
            if forget is not None:
                forget(identity_rows)
        conn, raw = await connection(session)
        plan = self._plan(conn.dialect)
        args = plan.args(params or {})
        sync = conn.sync_connection
        if sync is not None and sync.dispatch.before_cursor_execute:
            # Whoever watches the connection's statements sees this one too (the pipeline's
            # WriteWatch, which must know a handler wrote; the benches' counts); no cursor.
            sync.dispatch.before_cursor_execute(sync, None, plan.sql, args, None, False)
        driver = raw.driver_connection
        try:
            if isinstance(driver, InlineSQLite):
                return plan.processed(await driver.hot(plan.sql, args))
            if conn.dialect.driver == "asyncpg":
                return plan.processed(await _asyncpg_rows(raw.dbapi_connection, plan.sql,
                                                          args))
        except conn.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy handles it: wrapped (callers catch sqlalchemy.exc.IntegrityError)
            # and, when the connection is gone (a database restart), the connection and the
            # pool's older ones invalidated, so a retry gets a new one.
            if sync is not None:
                await greenlet_spawn(sync._handle_dbapi_exception, error, plan.sql, args,
                                     None, None)
            raise exc.DBAPIError.instance(plan.sql, args, error,
                                          conn.dialect.loaded_dbapi.Error) from error
        # Another driver (the SQLite reader's aiosqlite): the usual way.
        options = {IDENTITY_ROWS: identity_rows} if identity_rows is not None else {}
        return [tuple(row) for row in await session.execute(
            self.statement, dict(params or {}), execution_options=options)]

    async def scalar(self, session: AsyncSession, params: Mapping[str, Any] | None = None, *,
                     identity_rows: dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = await self.rows(session, params, identity_rows=identity_rows)
        return rows[0][0] if rows else None


# Every hot statement alive, and what makes those made on demand (per dialect name), for
# `warm`. The makers' caches keep theirs (a statement per key); a statement made for one
# call (a test's) goes when it does.
_MADE: weakref.WeakSet[Hot] = weakref.WeakSet()
_MAKERS: list[Callable[[str], object]] = []


def makes(maker: Callable[[str], object]) -> Callable[[str], object]:
    """Register `maker(dialect_name)`, which makes (and caches) hot statements otherwise
    made on first use, so that `warm` compiles them too."""
    _MAKERS.append(maker)
    return maker


def warm(dialect: Dialect) -> int:
    """Compile every hot statement for `dialect` now; the number compiled. A statement is
    compiled on its first call otherwise, inside a batch, holding the event loop: 1-3 ms
    each, 10-13 ms for the pipeline's first statement of a size (bench/inbound.py --steps:
    the longest steps of a run at 500 msg/s were those, one per size). BotApp.start calls it
    before the first message is taken."""
    for maker in list(_MAKERS):
        maker(dialect.name)
    compiled = 0
    for statement in list(_MADE):
        if dialect.name not in statement._plans:
            try:
                statement._plan(dialect)
            except Exception:  # a misuse: its own call raises it again, where it is made
                log.debug("hot statement not compiled", exc_info=True)
                continue
            compiled += 1
    return compiled


class _JSONList(TypeDecorator[list[Any]]):
    """A list parameter passed to SQLite as one JSON array (see WithList)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value), ensure_ascii=False)


Member = Callable[[ColumnElement[Any] | InstrumentedAttribute[Any]], ColumnElement[bool]]


# Lists this long or shorter have their statements compiled by `warm` (the pipeline looks
# rooms and senders up 32 at a time, bot.pipeline.PRIME_CHUNK).
WARM_LIST = 32


def list_size(length: int) -> int:
    """The parameters a list of `length` members takes on PostgreSQL (see WithList): the
    next power of two, at least 1."""
    return 1 << (max(length, 1) - 1).bit_length()


def in_list(column: ColumnElement[Any] | InstrumentedAttribute[Any], name: str, size: int
            ) -> ColumnElement[bool]:
    """PostgreSQL's `column IN ($n, ...)` of `size` parameters `name_0`, `name_1`, ..."""
    return column.in_([bindparam(f"{name}_{i}", type_=column.type) for i in range(size)])


def list_params(name: str, values: Sequence[Any], size: int) -> dict[str, Any]:
    """The values of in_list's parameters: the list padded to `size` with its last member
    (an empty list: one NULL, which matches nothing)."""
    padded = list(values) or [None]
    padded += padded[-1:] * (size - len(padded))
    return {f"{name}_{i}": v for i, v in enumerate(padded)}


WARM_SIZES = tuple(1 << k for k in range(list_size(WARM_LIST).bit_length()))


class WithList:
    """A hot statement with one list parameter, `name` (a hot statement has no expanding
    IN): `build(member)` makes the statement, `member(column)` being `column IN (the
    list)`. SQLite gets the list as one JSON array (json_each). PostgreSQL gets a parameter
    per member, `IN ($2, $3, ...)`, in a statement per length (padded to a power of two
    with the last member again, not with NULLs: a custom plan for fewer real members looks
    cheaper than the generic one, and PostgreSQL would plan every execution again, as it
    did an `= ANY($2)` of an array: 0.35-0.7 ms of its time for a look-up of senders)."""

    __slots__ = ("_build", "_name", "_hot")

    def __init__(self, build: Callable[[Member], Executable], name: str):
        self._build = build
        self._name = name
        self._hot: dict[tuple[str, int], Hot] = {}
        makes(self._warm)

    def _warm(self, dialect: str) -> None:
        """The statements of every list length up to WARM_LIST (see `warm`)."""
        for size in WARM_SIZES if dialect == "postgresql" else (0,):
            self._statement(dialect, size)

    def _statement(self, dialect: str, size: int) -> Hot:
        found = self._hot.get((dialect, size))
        if found is None:
            name = self._name

            def member(column: ColumnElement[Any] | InstrumentedAttribute[Any]
                       ) -> ColumnElement[bool]:
                if dialect == "postgresql":
                    return in_list(column, name, size)
                return column.in_(select(literal_column("value")).select_from(
                    func.json_each(bindparam(name, type_=_JSONList))))

            found = self._hot[(dialect, size)] = Hot(self._build(member))
        return found

    async def rows(self, session: AsyncSession, params: Mapping[str, Any]
                   ) -> Sequence[tuple[Any, ...]]:
        """Run it; params[name] is the list (any length, empty too)."""
        dialect = session.bind.dialect.name
        if dialect != "postgresql":
            return await self._statement(dialect, 0).rows(session, params)
        values = params[self._name]
        size = list_size(len(values))
        return await self._statement(dialect, size).rows(session, {
            **params, **list_params(self._name, values, size)})


T = TypeVar("T")
# Per mapped class: its column attributes' keys, and where its primary key is among them.
_SHAPES: dict[type[Any], tuple[tuple[str, ...], tuple[int, ...]]] = {}


def columns(model: type[Any]) -> tuple[Any, ...]:
    """A mapped class's columns, in the order `loaded` takes their values."""
    return tuple(prop.columns[0] for prop in class_mapper(model).column_attrs)


def loaded(session: AsyncSession, model: type[T], values: Sequence[Any]) -> T:
    """The object a query would give for a row of `model`'s columns (`columns(model)`, in
    that order) that a hot statement read: the one the session already has under that
    primary key (its expired attributes set from the row, as loading does), or a new
    persistent one, clean, its relationships not loaded. It skips what loading through the
    ORM costs per statement (compile cache, execution context, loading steps)."""
    mapper = class_mapper(model)
    shape = _SHAPES.get(model)
    if shape is None:
        keys = tuple(prop.key for prop in mapper.column_attrs)
        shape = _SHAPES[model] = (keys, tuple(
            keys.index(mapper.get_property_by_column(c).key) for c in mapper.primary_key))
    keys, primary = shape
    sync = session.sync_session
    identity = mapper.identity_key_from_primary_key(tuple(values[i] for i in primary))
    found = sync.identity_map.get(identity)
    if found is not None:
        state = instance_state(found)
        for key in state.expired_attributes.intersection(keys):
            set_committed_value(found, key, values[keys.index(key)])
        return cast(T, found)
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(zip(keys, values, strict=True))  # as loaded: no history to flush
    instance_state(obj).key = identity
    sync.add(obj)  # persistent, in the identity map
    return cast(T, obj)


# session.sync_session.info key: a callable told that a hot statement just run, which whoever
# watches the connection's statements counted as a write (the pipeline's WriteWatch), changed
# no row (an INSERT ... SELECT that found nothing to insert).
WROTE_NOTHING = "tierbot_wrote_nothing"


def wrote_nothing(session: AsyncSession) -> None:
    """The statement just run changed no row: whoever counts writes may take it back."""
    tell = session.sync_session.info.get(WROTE_NOTHING)
    if tell is not None:
        tell()


# session.sync_session.info key: (root transaction, innermost SAVEPOINT or None, their
# connection, the pooled connection).
_CONNECTION = "tierbot_hot_connection"


async def connection(session: AsyncSession) -> tuple[AsyncConnection, Any]:
    """The session's connection and its pooled DBAPI connection, beginning the transaction
    (SQLite: BEGIN IMMEDIATE) if none is open. Asked through the session, the pair costs 20
    µs of CPU (a greenlet switch), more than SQLite takes to run the statement; a
    transaction keeps one connection until it ends, so it is kept for as long as the same
    transaction and SAVEPOINT are the session's."""
    sync_session = session.sync_session
    kept = sync_session.info.get(_CONNECTION)
    if kept is not None and kept[0] is sync_session.get_transaction() \
            and kept[1] is sync_session.get_nested_transaction():
        return kept[2], kept[3]
    # Through the session: it also emits the SAVEPOINT of a begin_nested() not yet used.
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    sync_session.info[_CONNECTION] = (sync_session.get_transaction(),
                                      sync_session.get_nested_transaction(), conn, raw)
    return conn, raw


async def _asyncpg_rows(adapted: Any, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """On SQLAlchemy's asyncpg adapter, as its cursor does: one statement at a time on the
    connection, in the transaction it starts on first use (asyncpg errors as the adapter's)."""
    async with adapted._execute_mutex:
        if not adapted._started:
            await adapted._start_transaction()
        try:
            return [tuple(r) for r in await adapted._connection.fetch(sql, *args)]
        except Exception as error:
            adapted._handle_exception(error)
            raise  # _handle_exception always raises


def _compile(statement: Executable, dialect: Dialect, *, identity: bool) -> _Plan:
    compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
    if compiled.positiontup is None:
        raise TypeError(f"{dialect.name}: a hot statement needs a positional paramstyle")
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise TypeError("a hot statement has no parameters rendered at execution "
                        "(expanding IN lists, literal_execute)")
    written = {name.strip('"') for name in _WRITES.findall(compiled.string)}
    if written & IDENTITY_TABLES and not identity:
        raise TypeError(f"a hot statement may not write {', '.join(sorted(written))}: "
                        "the pipeline's look-ups would not learn of it")
    binds = compiled.binds
    processors = compiled._bind_processors
    params: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
    for name in compiled.positiontup:
        bind = binds[name]
        process = processors.get(name)
        if process is not None and not callable(process):
            raise TypeError(f"a hot statement has no tuple parameter ({name})")
        params.append((name, _REQUIRED if bind.required else bind.effective_value, process))
    results = tuple(column.type._cached_result_processor(dialect, None)
                    for column in getattr(statement, "exported_columns", ()))
    return _Plan(compiled.string, tuple(params),
                 results if any(p is not None for p in results) else None)
