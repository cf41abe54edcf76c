"""The chat simulator in the browser: every group of the chain side by side, speak as anyone,
see every bot message arrive where it goes, move the clock. Served by `tierbot demo --web`
(local only by default) and, for superusers, inside the console; both drive a BotApp whose
transport is the simulated chat (bot/transports/sim.py) and whose clock can be moved.

The page (page.html) polls GET messages?after=N; what it sends is JSON with the page's
token in the X-Sim-Token header: a page of another site can neither read that token nor send
JSON across origins without a preflight, so it cannot speak in the simulator."""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.app import BotApp
from bot.transports.sim import SimTransport
from models import Contact, Group, Membership, Node, Person
from schedules.jobs import check_notices

# A new speaker's contact id: the simulator's own prefix, so it never meets an imported one.
NEW_CONTACT = "sim-web-{n}"
MAX_TEXT = 2000
MAX_LOG = 5000


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the simulated chat: said by someone, or sent by the bot."""

    id: int
    room: str
    who: str  # the speaker's name; "" for the bot (the page names it)
    text: str
    bot: bool
    at: str  # the simulated clock, local time, "MM-DD HH:MM"


class Say(BaseModel):
    """Speak in a group as a person (by contact id), or as a new person (by name)."""

    room: str = Field(min_length=1, max_length=200)
    contact: str = Field("", max_length=200)
    name: str = Field("", max_length=50)
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Move(BaseModel):
    """Move the clock forward by minutes (up to 30 days)."""

    minutes: int = Field(ge=1, le=30 * 24 * 60)


class Simulator:
    """The simulator's state over one BotApp: the log of what was said and sent (in memory,
    bounded), the names of new speakers."""

    def __init__(self, app: BotApp):
        if not isinstance(app.transport, SimTransport):
            raise ValueError("the simulator needs the simulated chat (transport sim)")
        self.app = app
        self.transport: SimTransport = app.transport
        self.token = secrets.token_urlsafe(24)
        self.log: list[Entry] = []
        self._ids = itertools.count(1)
        self._new: dict[str, str] = {}  # contact id -> name of speakers made here
        self._names: dict[str, str] = {}
        previous = self.transport.printer

        def printer(room_id: str, text: str, mentions: Sequence[str]) -> None:
            at = " ".join(f"@{self._names.get(m, m)}" for m in mentions)
            self._add(room_id, "", f"{at} {text}" if at else text, bot=True)
            if previous is not None:
                previous(room_id, text, mentions)

        self.transport.printer = printer

    def _add(self, room: str, who: str, text: str, *, bot: bool) -> Entry:
        now = self.app.now().astimezone(self.app.settings.zone)
        entry = Entry(next(self._ids), room, who, text, bot, f"{now:%m-%d %H:%M}")
        self.log.append(entry)
        del self.log[:-MAX_LOG]
        return entry

    def now_text(self) -> str:
        """The simulated time, local."""
        return f"{self.app.now().astimezone(self.app.settings.zone):%Y-%m-%d %H:%M}"

    async def state(self) -> dict[str, Any]:
        """The groups of the simulated chat with their members, and everyone who can speak."""
        async with self.app.session() as session:
            people = {cid: name for cid, name in await session.execute(
                select(Contact.contact_id, Person.name)
                .join(Person, Person.id == Contact.person_id)
                .where(Contact.transport == self.transport.name).order_by(Person.id))}
            people.update(self._new)
            self._names = dict(people)
            by_node: dict[int, list[str]] = {}
            for node_id, cid in await session.execute(
                    select(Membership.node_id, Contact.contact_id)
                    .join(Contact, Contact.person_id == Membership.person_id)
                    .where(Contact.transport == self.transport.name)
                    .order_by(Membership.id)):
                by_node.setdefault(node_id, []).append(cid)
            groups = []
            for group, node in (await session.execute(
                    select(Group, Node).join(Node, Node.id == Group.node_id)
                    .where(Group.transport == self.transport.name)
                    .order_by(Node.tier, Node.id, Group.id))).tuples():
                # The commanders of the tier above sit in this group too (指挥长下沉).
                members = list(dict.fromkeys(by_node.get(node.id, []) + by_node.get(
                    node.parent_id or 0, [])))
                groups.append({"room": group.room_id, "title": group.title,
                               "node": node.name, "tier": node.tier,
                               "members": [{"contact": c, "name": people.get(c, c)}
                                           for c in members]})
        return {"groups": groups, "now": self.now_text(),
                "people": [{"contact": c, "name": n} for c, n in people.items()]}

    def since(self, after: int) -> list[dict[str, Any]]:
        """The log after entry `after`."""
        return [asdict(e) for e in self.log if e.id > after]

    async def say(self, said: Say) -> Entry:
        """Deliver one message and wait until the bot has answered everything it caused."""
        contact = said.contact
        if contact and contact not in self._names:
            await self.state()  # a speaker imported since the page was loaded
        name = self._names.get(contact)
        if not contact:
            name = said.name.strip()
            if not name:
                raise ValueError("a new speaker needs a name")
            contact = NEW_CONTACT.format(n=len(self._new) + 1)
            self._new[contact] = name
            self._names[contact] = name
        elif name is None:
            raise ValueError(f"no such speaker {contact!r}")
        entry = self._add(said.room, name, said.text, bot=False)
        await self.transport.inject(self.transport.message(
            said.room, contact, said.text, sender_name=name))
        await self.app.idle()
        return entry

    async def move(self, minutes: int) -> str:
        """Move the clock; what the scheduler would have done meanwhile (reminders and
        escalations of notices) runs, and its messages arrive."""
        advance: Callable[[timedelta], Any] | None = getattr(self.app.clock, "advance", None)
        if advance is None:
            raise ValueError("this clock cannot be moved")
        advance(timedelta(minutes=minutes))
        await check_notices(self.app)
        await self.app.idle()
        return self.now_text()


def page(sim: Simulator, *, base: str, csrf: str = "") -> str:
    """The simulator's page for a mount point (`base` ends without a slash); `csrf`: the
    console session's token, sent back on each POST as the console requires."""
    html = resources.files("bot.simulator").joinpath("page.html").read_text(encoding="utf-8")
    return (html.replace("__BASE__", base).replace("__TOKEN__", sim.token)
            .replace("__CSRF__", csrf))


def router(sim: Simulator, *, base: str, dependencies: Sequence[Any] = ()) -> APIRouter:
    """The page and its JSON endpoints, mounted at `base` (dependencies: the console's login
    for its superusers; none for the local demo)."""
    r = APIRouter(prefix=base, dependencies=list(dependencies), include_in_schema=False)

    def checked(x_sim_token: Annotated[str, Header()] = "") -> None:
        if not hmac.compare_digest(x_sim_token.encode(), sim.token.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong X-Sim-Token")

    @r.get("/", response_class=HTMLResponse)
    async def sim_page(request: Request) -> str:
        # Inside the console, get_viewer has left the viewer (and its CSRF token) here.
        viewer = getattr(request.state, "viewer", None)
        return page(sim, base=base, csrf=getattr(viewer, "csrf", ""))

    @r.get("/sim.js")
    async def sim_script() -> Response:
        script = resources.files("bot.simulator").joinpath("sim.js").read_text(encoding="utf-8")
        return Response(script, media_type="text/javascript")

    @r.get("/state")
    async def sim_state() -> dict[str, Any]:
        return await sim.state()

    @r.get("/messages")
    async def sim_messages(after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        return {"messages": sim.since(after), "now": sim.now_text()}

    @r.post("/say", dependencies=[Depends(checked)])
    async def sim_say(said: Say) -> dict[str, Any]:
        try:
            entry = await sim.say(said)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": entry.id}

    @r.post("/clock", dependencies=[Depends(checked)])
    async def sim_clock(move: Move) -> dict[str, str]:
        try:
            return {"now": await sim.move(move.minutes)}
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None

    return r
