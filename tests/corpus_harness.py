"""The understanding corpus: messages people really write, each with what a user expects.

A corpus file is tab-separated (speaker, group, message, expected) with `#` comments; the
header of the shared file documents the `expected` kinds. Speakers and groups are those of the
demo chain (bot/demo/chain.toml); a speaker the chain does not know is a contact the bot has
never seen, with that display name. This module reads the files and checks one line against
what the real pipeline did (the database and what the bot sent); tests/test_corpus.py runs it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot import texts
from bot.app import BotApp
from bot.services import people
from bot.transports.memory import MemoryTransport
from models import (
    Group,
    Membership,
    Node,
    Person,
    Role,
    TemperatureReading,
    TenantStay,
)

REPO = Path(__file__).resolve().parents[1]
OWN_CORPUS = REPO / "tests" / "corpus"
SHARED_NAME = Path("shared") / "corpus" / "understanding.tsv"
# TIERBOT_CORPUS: further corpus files or directories of *.tsv, separated by os.pathsep.
ENV_VAR = "TIERBOT_CORPUS"
DEMO_CHAIN = REPO / "bot" / "demo" / "chain.toml"
# The demo's enterprise and key project, loaded on top of the demo chain for the corpus.
DEMO_UNITS = REPO / "bot" / "demo" / "units.toml"

KINDS = ("reading", "fever", "reading-or-hint", "return", "report", "ack", "ticket", "score",
         "answer", "refusal", "hint", "silence", "checkin", "enterprise-report", "work-card",
         "worker-card")
# The corpus names report kinds in English words; the database stores ReportKind values.
REPORT_KINDS = {"disinfection": "disinfect", "disinfect": "disinfect", "errand": "errand",
                "violation": "violation", "mediation": "mediation", "return": "return"}


@dataclass(frozen=True, slots=True)
class Line:
    """One corpus line and where it comes from."""

    source: str
    number: int
    speaker: str
    group: str
    message: str
    expected: str

    @property
    def kind(self) -> str:
        return self.expected.split(" ", 1)[0]

    @property
    def args(self) -> dict[str, str]:
        """k=v arguments of the expectation; `text=` takes the rest of the line."""
        rest = self.expected.split(" ", 1)[1] if " " in self.expected else ""
        out: dict[str, str] = {}
        positional: list[str] = []
        while rest.strip():
            rest = rest.lstrip()
            m = re.match(r"(?P<k>[a-z]+)=", rest)
            if m is None:
                word, _, rest = rest.partition(" ")
                positional.append(word)  # reading V, answer N, report KIND
                continue
            key = m.group("k")
            rest = rest[m.end():]
            if key == "text":
                out[key], rest = rest, ""
            else:
                out[key], _, rest = rest.partition(" ")
        if positional:
            out[""] = " ".join(positional)
        return out

    @property
    def id(self) -> str:
        return f"{self.source}:{self.number}"


def _shared_corpus() -> Path | None:
    """<repo>/../shared/corpus/understanding.tsv (a worktree sits one level deeper)."""
    for base in (REPO.parent, REPO.parent.parent):
        path = base / SHARED_NAME
        if path.is_file():
            return path
    return None


def corpus_files() -> list[Path]:
    """The shared corpus, our own corpus files and those named by TIERBOT_CORPUS."""
    files: list[Path] = []
    shared = _shared_corpus()
    if shared is not None:
        files.append(shared)
    files += sorted(OWN_CORPUS.glob("*.tsv"))
    for item in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        path = Path(item)
        files += sorted(path.glob("*.tsv")) if path.is_dir() else [path]
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


# A message holds no tab or line break in its column; a WeChat reply that quotes a message is
# several lines (「王明：体温36.5」\n- - - - - -\n收到), so the column writes them as \n (and \t).
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def unescape(message: str) -> str:
    """The message column as sent: \\n is a line break, \\t a tab, \\\\ a backslash."""
    return re.sub(r"\\([nt\\])", lambda m: _ESCAPES[m.group(1)], message)


def read_lines(path: Path) -> Iterator[Line]:
    """The lines of one corpus file; a malformed line is an error, never skipped."""
    label = path.name if path.parent.name != "corpus" else f"{path.parent.parent.name}/{path.name}"
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cols = raw.split("\t")
        if len(cols) != 4:
            raise ValueError(f"{path}:{number}: 4 tab-separated columns expected: {raw!r}")
        speaker, group, message, expected = cols
        message = unescape(message)
        line = Line(label, number, speaker.strip(), group.strip(), message, expected.strip())
        if line.kind not in KINDS:
            raise ValueError(f"{path}:{number}: unknown expected kind {line.kind!r}")
        yield line


def all_lines() -> list[Line]:
    return [line for path in corpus_files() for line in read_lines(path)]


# --- the demo chain, by the names people know it by -------------------------------------------


@dataclass(frozen=True, slots=True)
class Cast:
    """Who is who and which room is which group, from the demo chain file."""

    transport: str
    contacts: dict[str, str]  # person name -> contact id
    rooms: dict[str, str]  # group title -> room id

    @classmethod
    def load(cls, path: Path = DEMO_CHAIN, *more: Path) -> Cast:
        contacts: dict[str, str] = {}
        rooms: dict[str, str] = {}
        transport = "sim"
        for i, each in enumerate((path, *more)):
            data = tomllib.loads(each.read_text(encoding="utf-8"))
            contacts |= {p["name"]: p["contacts"][0] for p in data["people"]
                         if p.get("contacts")}
            rooms |= {g["title"]: g["room"] for n in data["nodes"] for g in n.get("groups", ())}
            if i == 0:
                transport = data.get("transport", "sim")
        return cls(transport, contacts, rooms)

    def contact(self, speaker: str) -> str:
        """The speaker's contact id; an unknown speaker is a new contact of that name."""
        return self.contacts.get(speaker) or f"corpus-new-{speaker.encode().hex()}"


# --- what happened -----------------------------------------------------------------------------


@dataclass
class World:
    """The facts a line's check needs, read from the database of the running bot."""

    app: BotApp
    transport: MemoryTransport
    cast: Cast

    async def node_of_room(self, room: str) -> Node:
        async with self.app.session() as s:
            node = (await s.execute(
                select(Node).join(Group, Group.node_id == Node.id)
                .where(Group.room_id == room))).scalar_one()
            s.expunge(node)
            return node

    async def rooms_of(self, node_id: int | None) -> list[str]:
        if node_id is None:
            return []
        async with self.app.session() as s:
            return list((await s.execute(
                select(Group.room_id).where(Group.node_id == node_id))).scalars())

    async def holders(self, node_id: int, role: Role) -> list[Person]:
        async with self.app.session() as s:
            return list((await s.execute(
                select(Person).join(Membership, Membership.person_id == Person.id)
                .where(Membership.node_id == node_id, Membership.role == role)
                .order_by(Person.id))).scalars())

    async def person(self, contact: str) -> Person | None:
        async with self.app.session() as s:
            return await people.find_by_contact(s, transport=self.cast.transport,
                                                contact_id=contact)

    async def start_home_watch(self, node: Node, now: datetime) -> None:
        """Every tenant of a tier-5 node is back and at home watch (so readings have a stay)."""
        tenants = await self.holders(node.id, Role.TENANT)
        landlords = await self.holders(node.id, Role.LANDLORD)
        async with self.app.session() as s, s.begin():
            for person in tenants:
                arrived = now - timedelta(days=1)
                s.add(TenantStay(
                    tenant_id=person.id, node_id=node.id,
                    landlord_id=landlords[0].id if landlords else None, origin="湖南长沙",
                    arrived_at=arrived, watch_until=arrived + timedelta(days=14),
                    self_reported_at=arrived, created_at=arrived))


def score_pattern() -> re.Pattern[str]:
    """A reply that states a landlord's score (ranked or not)."""
    forms = [texts.Points.SCORE, texts.Points.SCORE_UNRANKED]
    alternatives = [re.sub(r"\\\{[a-z_]+\\\}", ".+?", re.escape(f)) for f in forms]
    return re.compile("^(?:" + "|".join(alternatives) + ")")


async def latest_reading(app: BotApp) -> tuple[TemperatureReading, TenantStay, Person] | None:
    async with app.session() as s:
        row = (await s.execute(
            select(TemperatureReading, TenantStay, Person)
            .join(TenantStay, TenantStay.id == TemperatureReading.stay_id)
            .join(Person, Person.id == TenantStay.tenant_id)
            .order_by(TemperatureReading.id.desc()).limit(1))).first()
        return None if row is None else (row[0], row[1], row[2])


async def count_rows(app: BotApp, model: type) -> int:
    async with app.session() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()

