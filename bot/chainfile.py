"""Chain files (TOML, YAML or XLSX): nodes, their groups, people and roles; import and print the
tree."""

from __future__ import annotations

import gc
import re
import tomllib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot import pii
from bot.channels.registry import CHANNEL_TRANSPORT
from bot.services import chain, locks, people, personal
from models import (
    Building,
    Contact,
    Enterprise,
    EnterpriseStatus,
    Flat,
    Group,
    Membership,
    Node,
    NodeKind,
    Person,
    Role,
    Shop,
)


class ChainFileError(Exception):
    """The chain file cannot be imported; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The items of a chain file are slotted dataclasses with tuples (a city's file holds 200,000
# of them: a BaseModel with lists costs about 2.5x the memory); validated by pydantic alike.
_ITEM = ConfigDict(extra="forbid")


@dataclass(slots=True, config=_ITEM)
class PersonSpec:
    """A person: `key` is how nodes refer to them; contacts are 'id' or 'transport:id'."""

    key: str
    name: str
    mobile: str | None = None
    contacts: tuple[str, ...] = ()

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, value: str | None) -> str | None:
        if value is not None and not pii.is_mobile(value):
            raise ValueError("not an 11-digit mainland mobile number")
        return value


@dataclass(slots=True, config=_ITEM)
class GroupSpec:
    """A chat room bound to the node, and the channels that send to it.

    `channel` (or its older name `account`) is the group's binding: a WeChat account's name,
    or a [[channels]] name (an official robot); "" is the transport's only account. `fallback`
    is where failover moves it. A WeChat group that a robot also posts to keeps its WeChat
    room and transport (`channel = "wecom-jd"`, `fallback = "main"`); a group that exists only
    on an official platform has `transport = "channel"` and `room` = the channel's name for a
    webhook robot (one webhook is one group) or the platform's chat id for an app bot."""

    room: str
    title: str
    transport: str | None = None
    account: str = ""
    channel: str = ""
    fallback: str = ""

    @model_validator(mode="after")
    def _binding(self) -> GroupSpec:
        if self.channel and self.account and self.channel != self.account:
            raise ValueError("channel and account name the same binding: give one")
        if self.transport == CHANNEL_TRANSPORT and not (self.channel or self.account):
            raise ValueError(f'a group with transport "{CHANNEL_TRANSPORT}" exists only on an '
                             "official channel: name it (channel = …)")
        if self.fallback and self.fallback == self.binding:
            raise ValueError("fallback is the group's own channel")
        return self

    @property
    def binding(self) -> str:
        """The channel that sends to the group."""
        return self.channel or self.account


@dataclass(slots=True, config=_ITEM)
class BuildingSpec:
    """A building of a landlord's node and its flats."""

    name: str
    flats: tuple[str, ...] = ()


class EnterpriseSpec(_Strict):
    """An enterprise's file (一企一档); `liaison` is a person key. Its workshops and dorms are
    nodes of kind workgroup below it."""

    address: str = ""
    liaison: str | None = None
    headcount: int = Field(0, ge=0)
    status: EnterpriseStatus = EnterpriseStatus.CLOSED


@dataclass(slots=True, config=_ITEM)
class NodeSpec:
    """A node; `parent` is the key (or name) of a node listed before it."""

    name: str
    kind: NodeKind
    key: str | None = None
    parent: str | None = None
    groups: tuple[GroupSpec, ...] = ()
    roles: dict[Role, tuple[str, ...]] = Field(default_factory=dict)
    buildings: tuple[BuildingSpec, ...] = ()
    shops: tuple[str, ...] = ()
    enterprise: EnterpriseSpec | None = None


class ChainSpec(_Strict):
    """A whole chain file."""

    transport: str = "sim"
    people: list[PersonSpec] = Field(default_factory=list)
    nodes: list[NodeSpec]


try:
    from python_calamine import CalamineError as _CalamineError
except ImportError:  # pragma: no cover - a dependency, but the other formats need not wait
    class _CalamineError(Exception):  # type: ignore[no-redef]
        """Stands in when python-calamine is missing."""

# The XLSX layout: one sheet per list, a header row naming the columns.
XLSX_ROLE_COLUMNS = tuple(str(r) for r in Role)


def _cells(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a mobile or a key typed as a number
    return str(value).strip()


def _split(value: str) -> list[str]:
    return [part for part in re.split(r"[,，、;；\s]+", value) if part]


def _rows(book: Any, name: str) -> Iterator[dict[str, str]]:
    """The rows of a sheet as dicts by header, one at a time (none if there is no sheet)."""
    for _number, row in _numbered_rows(book, name):
        yield row


def _numbered_rows(book: Any, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    """_rows with each row's number as the spreadsheet shows it (the header is row 1)."""
    if name not in book.sheet_names:
        return
    rows = iter(book.get_sheet_by_name(name).iter_rows())
    first = next(rows, None)
    if first is None:
        return
    header = [_cells(h).lower() for h in first]
    for number, row in enumerate(rows, start=2):
        if any(_cells(v) for v in row):
            yield number, {h: _cells(v) for h, v in zip(header, row, strict=False) if h}


def xlsx_row_numbers(path: Path) -> dict[str, list[int]]:
    """The sheet row of each item of a workbook's `people` and `nodes` lists, in order (the
    import preview names rows, not list indexes)."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return {name: [n for n, _ in _numbered_rows(book, name)] for name in ("people", "nodes")}


def _xlsx_parts(path: Path) -> Iterator[Part]:
    """A workbook as parts, row by row: the same items a TOML/YAML file gives. Sheets:
    `people` (key, name, mobile, contacts), `nodes` (key, name, kind, parent, one column per
    role holding person keys, shops), `groups` (node, room, title, transport, account or channel,
    fallback),
    optional `chain` (transport). Lists in a cell are separated by commas, 、 or spaces."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    top: dict[str, Any] = {"people": [], "nodes": []}
    for row in _rows(book, "chain"):
        if row.get("transport"):
            top["transport"] = row["transport"]
    for r in _rows(book, "people"):
        yield "people", {k: v for k, v in {
            "key": r.get("key", ""), "name": r.get("name", ""), "mobile": r.get("mobile") or None,
            "contacts": _split(r.get("contacts", ""))}.items() if v is not None}
    groups: dict[str, list[dict[str, str]]] = {}
    for r in _rows(book, "groups"):
        group = {"room": r.get("room", ""), "title": r.get("title", ""),
                 "account": r.get("account", ""), "channel": r.get("channel", ""),
                 "fallback": r.get("fallback", "")}
        if r.get("transport"):
            group["transport"] = r["transport"]
        groups.setdefault(r.get("node", ""), []).append(group)
    for r in _rows(book, "nodes"):
        node: dict[str, Any] = {"name": r.get("name", ""), "kind": r.get("kind", "")}
        if r.get("key"):
            node["key"] = r["key"]
        if r.get("parent"):
            node["parent"] = r["parent"]
        roles = {role: _split(r[role]) for role in XLSX_ROLE_COLUMNS if r.get(role)}
        if roles:
            node["roles"] = roles
        if r.get("shops"):
            node["shops"] = _split(r["shops"])
        found = groups.get(r.get("key") or r.get("name", ""))
        if found:
            node["groups"] = found
        yield "nodes", node
    yield "top", top


try:
    # A Rust TOML parser, about 3x tomllib (pure Python) on a city's file. Only for the pieces:
    # a file that fails is read again whole by tomllib, whose message names the line.
    import rtoml as _rtoml

    _toml_loads: Callable[[str], dict[str, Any]] = _rtoml.loads
    # TomlParsingError is a ValueError, as are the value errors rtoml may raise beside it.
    _TOML_ERRORS: tuple[type[Exception], ...] = (ValueError,)
except ImportError:  # pragma: no cover - a dependency, but tomllib reads the same files
    _toml_loads = tomllib.loads
    _TOML_ERRORS = (tomllib.TOMLDecodeError,)


class _Resplit(Exception):
    """The TOML file could not be read in pieces: read it whole."""


# A `[[people]]` or `[[nodes]]` header: where one item of a list starts.
_ITEM_HEADER = re.compile(r"^\s*\[\[\s*(people|nodes)\s*\]\]\s*(#.*)?$")
# Items parsed per piece of a TOML file.
_ITEMS_PER_PIECE = 2000
_LISTS = ("people", "nodes")

Part = tuple[str, Any]


def _toml_parts(path: Path) -> Iterator[Part]:
    """A TOML chain file read in pieces of a few thousand `[[people]]`/`[[nodes]]` items, so
    the whole parsed file is never in memory at once: ("top", the keys before the first item)
    then (list name, item) in file order. Anything a piece cannot hold for certain (another
    table after the items, a multi-line string cut at a header) raises _Resplit."""
    lines: list[str] = []
    section: str | None = None
    items = 0

    def parse(piece: list[str], name: str | None) -> Iterator[Part]:
        try:
            data = _toml_loads("".join(piece))
        except _TOML_ERRORS:
            raise _Resplit from None
        if name is None:
            if any(k in data for k in _LISTS):
                raise _Resplit  # lists written inline (people = [...]): read whole
            yield "top", data
            return
        if set(data) != {name}:
            raise _Resplit
        for item in data[name]:
            yield name, item

    with path.open(encoding="utf-8") as stream:
        for line in stream:
            found = _ITEM_HEADER.match(line)
            if found:
                if lines and (section is None or found.group(1) != section
                              or items >= _ITEMS_PER_PIECE):
                    yield from parse(lines, section)
                    lines, items = [], 0
                section = found.group(1)
                items += 1
            lines.append(line)
    if lines or section is None:
        yield from parse(lines, section)


# libyaml's C parser when PyYAML has it (about 10x the pure-Python one).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)


class _YamlItems:
    """A YAML chain file as parts, straight from the parser's events: the items of the
    top-level `people` and `nodes` lists one at a time, then ("top", the other keys). Plain
    dicts, lists and scalars are built from the events (PyYAML's constructor would first build
    a node object for every value, and that costs about ten times the parse); plain scalars are
    resolved by the same implicit resolvers as yaml.safe_load (ints, booleans, nulls, dates).
    What this light builder does not do (anchors and aliases, explicit tags, merge keys, a key
    that is a list, a second document, a top level that is not a mapping, a list given twice)
    raises _Resplit, and the file is read whole by yaml.safe_load. A syntax error does too, so
    its message (line and column) is the whole loader's."""

    def __init__(self) -> None:
        from yaml import events
        from yaml.nodes import ScalarNode

        self.events = events
        self.node = ScalarNode
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()
        self.first = set(yaml.resolver.Resolver.yaml_implicit_resolvers)
        self.str_tag = yaml.resolver.Resolver.DEFAULT_SCALAR_TAG

    def scalar(self, event: Any) -> Any:
        """A scalar's value as yaml.safe_load gives it."""
        if event.anchor is not None or event.tag is not None:
            raise _Resplit
        value = event.value
        if not event.implicit[0] or (value[:1] not in self.first and None not in self.first):
            return value  # quoted, a block scalar, or no implicit type starts that way
        tag = self.resolver.resolve(self.node, value, event.implicit)
        if tag == self.str_tag:
            return value
        construct = yaml.constructor.SafeConstructor.yaml_constructors.get(tag)
        if construct is None or tag == "tag:yaml.org,2002:merge":
            raise _Resplit
        return construct(self.constructor, self.node(tag, value))

    def value(self, event: Any, get: Callable[[], Any]) -> Any:
        """The value that starts with `event`, its later events taken from `get`."""
        kind = type(event)
        ev = self.events
        if kind is ev.ScalarEvent:
            return self.scalar(event)
        if kind is ev.AliasEvent or event.anchor is not None or event.tag is not None:
            raise _Resplit
        if kind is ev.MappingStartEvent:
            mapping: dict[Any, Any] = {}
            while True:
                event = get()
                if type(event) is ev.MappingEndEvent:
                    return mapping
                key = self.value(event, get)
                if isinstance(key, dict | list):
                    raise _Resplit
                mapping[key] = self.value(get(), get)
        if kind is ev.SequenceStartEvent:
            items: list[Any] = []
            while True:
                event = get()
                if type(event) is ev.SequenceEndEvent:
                    return items
                items.append(self.value(event, get))
        raise _Resplit

    def parts(self, path: Path) -> Iterator[Part]:
        """The file's items, then its top level."""
        ev = self.events
        with path.open(encoding="utf-8") as stream:
            loader = _YAML_LOADER(stream)
            try:
                get = loader.get_event
                get()  # the stream's start
                if type(get()) is ev.StreamEndEvent:  # else the document's start
                    yield "top", {}
                    return
                event = get()
                if type(event) is not ev.MappingStartEvent or event.anchor is not None \
                        or event.tag is not None:
                    raise _Resplit
                top: dict[Any, Any] = {}
                streamed: list[str] = []
                while True:
                    event = get()
                    if type(event) is ev.MappingEndEvent:
                        break
                    key = self.value(event, get)
                    if key in _LISTS and (key in top or key in streamed):
                        raise _Resplit  # given twice: the whole loader keeps the last
                    event = get()
                    if key in _LISTS and type(event) is ev.SequenceStartEvent \
                            and event.anchor is None and event.tag is None:
                        streamed.append(key)
                        while True:
                            event = get()
                            if type(event) is ev.SequenceEndEvent:
                                break
                            yield key, self.value(event, get)
                        continue
                    if isinstance(key, dict | list):
                        raise _Resplit
                    top[key] = self.value(event, get)
                get()  # the document's end
                if type(get()) is not ev.StreamEndEvent:
                    raise _Resplit  # more than one document: the whole loader says so
            except yaml.YAMLError:
                raise _Resplit from None
            finally:
                loader.dispose()
        yield "top", {**top, **{k: [] for k in streamed}}


def _yaml_parts(path: Path) -> Iterator[Part]:
    """A YAML chain file item by item (_YamlItems)."""
    return _YamlItems().parts(path)


def _dict_parts(raw: Any) -> Iterator[Part]:
    """A file read whole, as parts; each item is let go once it has been handed out."""
    if not isinstance(raw, dict):
        yield "top", raw
        return
    lists = {k: raw[k] for k in _LISTS if isinstance(raw.get(k), list)}
    yield "top", {**raw, **{k: [] for k in lists}}
    raw.clear()
    for name, items in lists.items():
        items.reverse()
        while items:
            yield name, items.pop()


def _share_keys(node: NodeSpec, person_keys: dict[str, str], node_keys: dict[str, str]) -> None:
    """Point the node's parent and role holders at the strings of the keys read before."""
    if node.parent is not None:
        node.parent = node_keys.get(node.parent, node.parent)
    if node.roles:
        node.roles = {role: tuple(person_keys.get(k, k) for k in holders)
                      for role, holders in node.roles.items()}
    node_keys.setdefault(node.name, node.name)
    if node.key is not None:
        node_keys.setdefault(node.key, node.key)


# Items read between two progress reports.
_READ_STEP = 5000


def _validate(parts: Iterator[Part], progress: Progress | None = None) -> ChainSpec:
    """Validate item by item (the raw item is dropped as soon as it is a model), then the
    top level; every problem is reported with its place (people.3.mobile). `progress`
    ("reading", items so far, 0) every few thousand items."""
    top: Any = {}
    found: dict[str, list[Any]] = {"people": [], "nodes": []}
    models: dict[str, TypeAdapter[Any]] = {"people": _PEOPLE, "nodes": _NODES}
    index = {"people": 0, "nodes": 0}
    problems: list[str] = []
    # A parent or a role holder is the same string as the key it names (a city's file repeats
    # 200,000 keys: 11 MB as copies).
    person_keys: dict[str, str] = {}
    node_keys: dict[str, str] = {}
    for name, item in parts:
        if name == "top":
            top = item
            continue
        try:
            valid = models[name].validate_python(item)
        except ValidationError as exc:
            problems.extend(_describe(exc, prefix=(name, index[name])))
        else:
            if name == "people":
                person_keys.setdefault(valid.key, valid.key)
            else:
                _share_keys(valid, person_keys, node_keys)
            found[name].append(valid)
        index[name] += 1
        if progress is not None and (index["people"] + index["nodes"]) % _READ_STEP == 0:
            progress("reading", index["people"] + index["nodes"], 0)
    del person_keys, node_keys
    if isinstance(top, dict):
        top = {**top, **{name: [] for name, n in index.items() if n}}
    try:
        head = ChainSpec.model_validate(top)
    except ValidationError as exc:
        problems[:0] = _describe(exc)
        head = None
    if problems or head is None:
        raise ValidationErrors("; ".join(problems), problems=problems)
    return ChainSpec.model_construct(transport=head.transport, people=found["people"],
                                     nodes=found["nodes"])


_PEOPLE: TypeAdapter[PersonSpec] = TypeAdapter(PersonSpec)
_NODES: TypeAdapter[NodeSpec] = TypeAdapter(NodeSpec)


class ValidationErrors(Exception):
    """Problems found while validating a chain file (joined, each with its place)."""

    def __init__(self, text: str, *, problems: Sequence[str] = ()):
        super().__init__(text)
        self.problems = list(problems)


def _describe(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[str]:
    return [f"{'.'.join(str(p) for p in (*prefix, *e['loc']))}: {e['msg']}"
            for e in exc.errors()]


def check(path: Path) -> tuple[ChainSpec | None, list[str]]:
    """load, but a file that does not validate gives its problems one by one ("people.3.mobile:
    …"), not an exception; a file that cannot be read at all is still a ChainFileError."""
    try:
        return load(path), []
    except ChainFileError as exc:
        if isinstance(exc.__context__, ValidationErrors):
            return None, exc.__context__.problems
        raise


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while a file's items are built: they make no
    cycles, and every full collection would walk all the items built so far (a fifth of the
    CPU time of reading 100,000 people)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(path: Path, *, progress: Progress | None = None) -> ChainSpec:
    """Read and validate a chain file (.toml, .yaml, .yml or .xlsx). Every format is read item
    by item and each item validated as it comes, so a city's file never sits in memory twice
    (parsed and validated). `progress("reading", items, 0)` as the items come."""
    with _gc_paused():
        return _load(path, progress)


def _load(path: Path, progress: Progress | None) -> ChainSpec:
    try:
        if path.suffix == ".xlsx":
            return _validate(_xlsx_parts(path), progress)
        if path.suffix == ".toml":
            try:
                return _validate(_toml_parts(path), progress)
            except _Resplit:
                return _validate(_dict_parts(tomllib.loads(path.read_text(encoding="utf-8"))),
                                 progress)
        if path.suffix in (".yaml", ".yml"):
            try:
                return _validate(_yaml_parts(path), progress)
            except _Resplit:
                return _validate(_dict_parts(_yaml_load(path.read_text(encoding="utf-8"))),
                                 progress)
        raise ChainFileError(f"{path}: use a .toml, .yaml or .yml file, or an .xlsx workbook")
    except OSError as exc:
        raise ChainFileError(f"{path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, _CalamineError) as exc:
        raise ChainFileError(f"{path}: not valid: {exc}") from None
    except ValidationErrors as exc:
        raise ChainFileError(f"{path}: {exc}") from None


Progress = Callable[[str, int, int], None]
# Rows per INSERT statement and per IN (...) look-up.
_CHUNK = 2000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Ids:
    """Ids of rows to be written, known only after their bulk insert: a row is named by a
    negative placeholder until then (-1, -2, …: the real id is at index -ref - 1 of an array,
    a tenth of what a dict of 200,000 ids costs)."""

    def __init__(self) -> None:
        self.real = array("q")  # 8 bytes an id, not an int object each
        self._count = 0

    def placeholder(self) -> int:
        self._count += 1
        return -self._count

    def settle(self, refs: Sequence[int], real: Sequence[int]) -> None:
        """The placeholders `refs` are the rows `real`."""
        self.real.extend(repeat(0, self._count - len(self.real)))
        for ref, row_id in zip(refs, real, strict=True):
            self.real[-ref - 1] = row_id

    def __call__(self, ref: int) -> int:
        return ref if ref > 0 else self.real[-ref - 1]


async def _new_ids(session: AsyncSession, table: Any, n: int) -> list[int]:
    """Ids for n rows to be written with explicit ids (no RETURNING round trip): from the
    table's sequence on PostgreSQL; past the largest id on SQLite, whose write lock the
    import's transaction holds (BEGIN IMMEDIATE), so no other writer can take them."""
    if n == 0:
        return []
    if _is_pg(session):
        return list((await session.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n})).scalars())
    top = (await session.execute(select(func.max(table.c.id)))).scalar_one_or_none() or 0
    return list(range(top + 1, top + 1 + n))


def _is_pg(session: AsyncSession) -> bool:
    bind: Any = session.bind
    return bool(bind.dialect.name == "postgresql")


async def _write(session: AsyncSession, model: Any, columns: Sequence[str],
                 rows: Iterable[tuple[Any, ...]]) -> int:
    """Write rows (tuples in `columns` order) in batches with Core, below the ORM: COPY on
    PostgreSQL, the driver's executemany on SQLite. Values pass the columns' own bind
    processing (UTC datetimes); a value that is the same object as the row before's (the
    import's one `now`) is processed once. Returns the rows written."""
    table = model.__table__
    conn = await session.connection()
    dialect = conn.dialect
    procs = [(i, proc) for i, c in enumerate(columns)
             if (proc := table.c[c].type.dialect_impl(dialect).bind_processor(dialect))
             is not None]
    last_in: list[Any] = [None] * len(columns)
    last_out: list[Any] = [None] * len(columns)
    pg = dialect.name == "postgresql"
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    written = 0
    for batch in _batches(rows, _CHUNK):
        if procs:
            for k, row in enumerate(batch):
                values = list(row)
                for i, proc in procs:
                    value = values[i]
                    if value is None:
                        continue
                    if value is last_in[i]:
                        values[i] = last_out[i]
                    else:
                        last_in[i], last_out[i] = value, proc(value)
                        values[i] = last_out[i]
                batch[k] = tuple(values)
        if pg:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                table.name, records=batch, columns=list(columns))
        else:
            await conn.exec_driver_sql(sql, batch)  # type: ignore[arg-type]
        written += len(batch)
    return written


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Above this many new roles SQLite's row triggers that keep points_total are held off and the
# table is rebuilt set-based afterwards (PostgreSQL's triggers are per statement already).
_BULK_ROLES = 1000


async def _write_roles(session: AsyncSession, rows: Iterable[tuple[Any, ...]], *,
                       at_most: int) -> int:
    """Write membership rows (at most `at_most` of them); returns how many."""
    columns = ("person_id", "node_id", "role", "created_at")
    if _is_pg(session) or at_most < _BULK_ROLES:
        return await _write(session, Membership, columns, rows)
    from bot.services import points, stats

    held = list((await session.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name = 'membership'"))).all())
    for name, _ in held:
        await session.execute(text(f'DROP TRIGGER "{name}"'))
    written = await _write(session, Membership, columns, rows)
    for _, sql in held:
        await session.execute(text(sql))
    await points.rebuild_totals(session)
    await stats.rebuild_figures(session)
    return written


async def _contact_owners(session: AsyncSession, spec: ChainSpec) -> dict[tuple[str, str], int]:
    """The people who hold the file's contact ids already, by (transport, id)."""
    owner: dict[tuple[str, str], int] = {}
    by_transport: dict[str, set[str]] = {}
    for pspec in spec.people:
        for tr, cid in _pairs(pspec.contacts, spec.transport):
            by_transport.setdefault(tr, set()).add(cid)
    for tr, cids in by_transport.items():
        for chunk in _chunks(sorted(cids)):
            for cid, person_id in await session.execute(
                    select(Contact.contact_id, Contact.person_id).where(
                        Contact.transport == tr, Contact.contact_id.in_(chunk))):
                owner[(tr, cid)] = person_id
    return owner


def _pairs(contacts: Sequence[str], transport: str) -> list[tuple[str, str]]:
    """A person's contact ids as (transport, id): 'id' is on the file's transport."""
    return [(c.split(":", 1)[0], c.split(":", 1)[1]) if ":" in c else (transport, c)
            for c in contacts]


async def import_chain(session: AsyncSession, spec: ChainSpec, *, now: datetime,
                       progress: Progress | None = None) -> dict[str, int]:
    """Create what the file describes; existing nodes (same name and parent) are reused.

    People are found as before one by one would find them (by a contact id, else by mobile,
    else, known only by name, the record an earlier import made), nodes by name and parent,
    groups by room; what exists is read in bulk first, what is new is written in bulk
    (thousands of rows per statement), so 100,000 people take seconds. `progress(stage, done,
    total)` is called as the stages advance. The file's lists are walked again where a second
    walk is cheaper in memory than a table kept for all of them."""
    def step(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    # Nothing in chat that looks people up by mobile (or checks before it writes) runs beside
    # the look-ups and creations below (bot/services/locks.py).
    await locks.hold_bulk(session)
    ids = _Ids()
    transport = spec.transport
    # --- people --------------------------------------------------------------------------
    contact_owner = await _contact_owners(session, spec)
    step("people: looked up", 0, len(spec.people))
    # Mobiles are matched by their blind index (nothing stored is decrypted), a chunk at a time
    # (the indexes of 100,000 mobiles are 11 MB of strings).
    mobile_owner: dict[str, int] = {}
    for chunk in _chunks(sorted({p.mobile for p in spec.people if p.mobile})):
        mobile_of = {personal.blind_index("mobile", m): m for m in chunk}
        for bidx, person_id in await session.execute(
                select(Person.mobile_bidx, func.min(Person.id))
                .where(Person.mobile_bidx.in_(list(mobile_of))).group_by(Person.mobile_bidx)):
            mobile_owner[mobile_of[bidx]] = person_id
    bare_names = sorted({p.name for p in spec.people if not p.contacts and not p.mobile})
    name_owner: dict[str, int] = {}
    for chunk in _chunks(bare_names):
        for name, person_id in await session.execute(
                select(Person.name, func.min(Person.id)).where(
                    Person.name.in_(chunk), ~personal.has_number("mobile"),
                    ~Person.id.in_(select(Contact.person_id))).group_by(Person.name)):
            name_owner[name] = person_id
    del bare_names
    persons: dict[str, int] = {}
    new_people: list[PersonSpec] = []
    new_contacts: list[tuple[int, str, str]] = []
    for pspec in spec.people:
        if pspec.key in persons:
            raise ChainFileError(f"people: key {pspec.key!r} appears twice")
        pairs = _pairs(pspec.contacts, transport)
        found = next((contact_owner[pair] for pair in pairs if pair in contact_owner), None)
        if found is not None:
            persons[pspec.key] = found
            continue
        if pspec.mobile:
            found = mobile_owner.get(pspec.mobile)
        elif not pairs:
            found = name_owner.get(pspec.name)
        if found is None:
            found = ids.placeholder()  # new people are -1, -2, … in order
            new_people.append(pspec)
            if pspec.mobile:
                mobile_owner[pspec.mobile] = found
            elif not pairs:
                name_owner[pspec.name] = found
        persons[pspec.key] = found
        for tr, cid in pairs:
            contact_owner[(tr, cid)] = found
            new_contacts.append((found, tr, cid))
    del contact_owner, mobile_owner, name_owner
    ids.settle(range(-1, -len(new_people) - 1, -1),
               await _new_ids(session, Person.__table__, len(new_people)))
    # Ids are known before the insert, so each mobile is sealed to its row as it is written
    # (blind index and mask beside it); the plain number is stored nowhere.
    await _write(session, Person, ("id", "name", "created_at", *personal.MOBILE_COLUMNS),
                 ((ids(-n), p.name, now, *personal.new_person_mobile(ids(-n), p.mobile))
                  for n, p in enumerate(new_people, start=1)))
    del new_people
    step("people", len(spec.people), len(spec.people))
    await _write(session, Contact, ("person_id", "transport", "contact_id", "created_at"),
                 ((ids(ref), tr, cid, now) for ref, tr, cid in new_contacts))
    step("contacts", len(new_contacts), len(new_contacts))
    del new_contacts
    # --- nodes -----------------------------------------------------------------------------
    existing: dict[tuple[str, int | None], tuple[int, int]] = {
        (name, parent): (node_id, tier) for node_id, name, parent, tier in await session.execute(
            select(Node.id, Node.name, Node.parent_id, Node.tier))}
    nodes: dict[str, tuple[int, int]] = {}  # key or name -> (id or placeholder, tier)
    levels: dict[int, list[tuple[int, str, str, int | None]]] = {}
    planned: list[int] = []
    listed_again: set[int] = set()  # new nodes the file lists more than once
    counts = {"nodes": 0, "groups": 0, "roles": 0, "people": len(persons)}
    for nspec in spec.nodes:
        parent = None
        if nspec.parent is not None:
            parent = nodes.get(nspec.parent)
            if parent is None:
                raise ChainFileError(f"node {nspec.name!r}: parent {nspec.parent!r} is not "
                                     "listed before it")
        parent_ref = parent[0] if parent else None
        here = existing.get((nspec.name, parent_ref))
        if here is None:
            try:
                tier = chain.tier_under(name=nspec.name, kind=nspec.kind,
                                        parent_tier=parent[1] if parent else None)
            except ValueError as exc:
                raise ChainFileError(str(exc)) from None
            ref = ids.placeholder()
            levels.setdefault(tier, []).append((ref, nspec.name, nspec.kind.value, parent_ref))
            here = existing[(nspec.name, parent_ref)] = (ref, tier)
            counts["nodes"] += 1
        elif here[0] < 0:
            listed_again.add(here[0])
        nodes[nspec.key or nspec.name] = nodes[nspec.name] = here
        planned.append(here[0])
    del existing, nodes
    # Every role names a person of the file: checked before anything of the nodes is written.
    for nspec in spec.nodes:
        for role, keys in nspec.roles.items():
            for key in keys:
                if key not in persons:
                    raise ChainFileError(f"node {nspec.name!r}: role {role}: unknown person "
                                         f"{key!r}")
    # Parents first: one bulk insert per tier.
    refs = [ref for tier in sorted(levels) for ref, _, _, _ in levels[tier]]
    ids.settle(refs, await _new_ids(session, Node.__table__, len(refs)))
    del refs
    done = 0
    for tier in sorted(levels):
        done += await _write(session, Node,
                             ("id", "name", "kind", "tier", "parent_id", "created_at"),
                             ((ids(ref), name, kind, tier,
                               ids(parent) if parent is not None else None, now)
                              for ref, name, kind, parent in levels[tier]))
        step("nodes", done, counts["nodes"])
    del levels
    # --- groups and roles -----------------------------------------------------------------
    rooms = [(g.transport or transport, g.room) for n in spec.nodes for g in n.groups]
    bound: set[tuple[str, str]] = set()
    for tr in {tr for tr, _ in rooms}:
        for chunk in _chunks(sorted({room for t, room in rooms if t == tr})):
            bound.update((tr, room) for room in (await session.execute(select(Group.room_id).where(
                Group.transport == tr, Group.room_id.in_(chunk)))).scalars())
    del rooms
    new_groups: list[tuple[Any, ...]] = []
    for nspec, ref in zip(spec.nodes, planned, strict=True):
        for gspec in nspec.groups:
            tr = gspec.transport or transport
            if (tr, gspec.room) not in bound:
                bound.add((tr, gspec.room))
                new_groups.append((ids(ref), tr, gspec.room, gspec.title, gspec.binding,
                                   gspec.fallback, now))
    del bound
    counts["groups"] = await _write(
        session, Group, ("node_id", "transport", "room_id", "title", "account",
                         "fallback_account", "created_at"), new_groups)
    del new_groups
    step("groups", counts["groups"], counts["groups"])
    # A role may exist already only on a node that existed, or on a new node the file lists
    # twice: only those are checked against a set (a set of every new role would be the
    # largest table of the import).
    held = {(p, n, r) for p, n, r in await session.execute(
        select(Membership.person_id, Membership.node_id, Membership.role))}

    def new_roles() -> Iterator[tuple[Any, ...]]:
        for nspec, ref in zip(spec.nodes, planned, strict=True):
            node_id = ids(ref)
            seen = held if ref > 0 or ref in listed_again else set()
            for role, keys in nspec.roles.items():
                for key in keys:
                    person_id = ids(persons[key])
                    if (person_id, node_id, role) not in seen:
                        seen.add((person_id, node_id, role))
                        yield person_id, node_id, str(role), now

    counts["roles"] = await _write_roles(
        session, new_roles(),
        at_most=sum(len(keys) for n in spec.nodes for keys in n.roles.values()))
    step("roles", counts["roles"], counts["roles"])
    for nspec, ref in zip(spec.nodes, planned, strict=True):
        if nspec.buildings or nspec.shops:
            node = await session.get(Node, ids(ref))
            assert node is not None
            await _buildings_and_shops(session, nspec, node, now=now)
        if nspec.enterprise is not None:
            await _enterprise_file(session, nspec, ids(ref), persons={
                k: ids(v) for k, v in persons.items()}, now=now)
    return counts


async def _enterprise_file(session: AsyncSession, nspec: NodeSpec, node_id: int, *,
                           persons: dict[str, int], now: datetime) -> None:
    """Create or update the enterprise's file (一企一档) from the chain file."""
    espec = nspec.enterprise
    assert espec is not None
    if nspec.kind != NodeKind.ENTERPRISE:
        raise ChainFileError(f"node {nspec.name!r}: an enterprise file needs kind enterprise")
    if espec.liaison is not None and espec.liaison not in persons:
        raise ChainFileError(f"node {nspec.name!r}: enterprise liaison: unknown person "
                             f"{espec.liaison!r}")
    file = (await session.execute(
        select(Enterprise).where(Enterprise.node_id == node_id))).scalar_one_or_none()
    if file is None:
        file = Enterprise(node_id=node_id, created_at=now)
        session.add(file)
    file.address, file.headcount, file.status = espec.address, espec.headcount, espec.status
    file.liaison_id = persons[espec.liaison] if espec.liaison else None
    file.updated_at = now
    await session.flush()


async def _buildings_and_shops(session: AsyncSession, nspec: NodeSpec, node: Node, *,
                               now: datetime) -> None:
    if nspec.buildings:
        landlords = await people.holders(session, node_id=node.id, role=Role.LANDLORD)
        if not landlords:
            raise ChainFileError(f"node {nspec.name!r}: buildings need a landlord role here")
        for bspec in nspec.buildings:
            building = (await session.execute(select(Building).where(
                Building.node_id == node.id, Building.name == bspec.name))).scalar_one_or_none()
            if building is None:
                building = Building(node_id=node.id, landlord_id=landlords[0].id,
                                    name=bspec.name, created_at=now)
                session.add(building)
                await session.flush()
                session.add_all(Flat(building_id=building.id, label=f) for f in bspec.flats)
    existing = set((await session.execute(
        select(Shop.name).where(Shop.node_id == node.id))).scalars())
    session.add_all(Shop(node_id=node.id, name=s, created_at=now)
                    for s in nspec.shops if s not in existing)
    await session.flush()


async def render_tree(session: AsyncSession) -> str:
    """The chain as an indented tree with each node's groups and commanders."""
    nodes = await chain.all_nodes(session)
    groups: dict[int, list[Group]] = {}
    for group in (await session.execute(select(Group).order_by(Group.id))).scalars():
        groups.setdefault(group.node_id, []).append(group)
    roles: dict[int, list[tuple[str, str]]] = {}
    for node_id, role, name in await session.execute(
        select(Membership.node_id, Membership.role, Person.name)
        .join(Person, Person.id == Membership.person_id).order_by(Membership.id)
    ):
        roles.setdefault(node_id, []).append((role, name))
    children: dict[int | None, list[Node]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node)
    contacts = (await session.execute(select(Contact.id))).all()
    lines: list[str] = []

    def walk(node: Node, depth: int) -> None:
        lead = chain.commanding_role(node)
        heads = [n for r, n in roles.get(node.id, []) if r == lead]
        others = len([1 for r, _ in roles.get(node.id, []) if r != lead])
        lines.append(f"{'  ' * depth}{node.name} [#{node.id} tier {node.tier} {node.kind}] "
                     f"{lead}: {', '.join(heads) or '-'}"
                     + (f"; +{others} others" if others else ""))
        for g in groups.get(node.id, []):
            lines.append(f"{'  ' * depth}  · group {g.title} ({g.transport}:{g.room_id})")
        for child in children.get(node.id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    lines.append(f"{len(nodes)} nodes, {sum(map(len, groups.values()))} groups, "
                 f"{len(contacts)} contact ids")
    return "\n".join(lines)
