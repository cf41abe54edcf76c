"""The demo's console chat: pick a group and a speaker, type lines, see what the bot says."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from importlib import resources
from typing import TextIO

from sqlalchemy import select, update

from bot import chainfile, pii
from bot.app import BotApp
from bot.channels.base import Capabilities
from bot.channels.sim import SimOfficialChannel
from bot.clock import OffsetClock
from bot.services import chain, watchdog
from bot.transports.sim import SimTransport
from models import Contact, Group, InviteKind, Node, Person, Role
from schedules.jobs import check_notices, watch_accounts

ROLE_WORDS = {
    "指挥长": Role.COMMANDER, "组员": Role.MEMBER, "作战小组成员": Role.MEMBER,
    "书记": Role.SECRETARY, "房东": Role.LANDLORD, "租客": Role.TENANT, "铺长": Role.CAPTAIN,
    "联络员": Role.LIAISON, "专班负责人": Role.PROJECT_LEAD,
    **{r.value: r for r in Role},
}
CONSOLE_HELP = """console commands:
  /groups             list the groups          /people        list the people
  /in NAME            speak in this group      /as NAME       speak as this person
                                               (a new name is a new contact)
  /invite NODE ROLE   issue a person invite    /invite NODE 群 issue a group invite
  /newgroup TITLE     a new, unbound group     /time +3h      move the clock (m, h, d)
  /leave              the speaker leaves this group (the bot tells their commander)
  /accounts           the sending accounts' health (the watchdog runs once)
  /quit               leave
  $CODE in a line is replaced by the last invite code issued."""


# The demo's official channel: a simulated staff robot (WeCom-like limits) that, unlike a
# webhook robot, sees its groups (like a DingTalk or Feishu app bot), so 收到 and 进度 typed in
# the staff groups still reach the bot.
DEMO_CHANNEL = "sim-official"
DEMO_CAPABILITIES = Capabilities(receive=True, ack_in_chat=True, mention_user=True,
                                 mention_all=True, markdown=True, cards=False)
# Tiers on the official channel: the staff (subdistrict, community, combat team); landlords
# and tenants (tiers 4-5) stay on WeChat, where no official robot can post.
STAFF_TIERS = (1, 2, 3)


def demo_channel() -> SimOfficialChannel:
    """The demo's simulated official channel."""
    return SimOfficialChannel(DEMO_CHANNEL, capabilities=DEMO_CAPABILITIES)


async def bind_staff_to_channel(app: BotApp, channel: str = DEMO_CHANNEL) -> int:
    """Put the staff tiers' groups on `channel`, the WeChat account as their fallback (what a
    chain file says with `channel = …, fallback = …` per group). Returns the groups moved."""
    async with app.session() as session, session.begin():
        staff = select(Node.id).where(Node.tier.in_(STAFF_TIERS)).scalar_subquery()
        result = await session.execute(
            update(Group).where(Group.node_id.in_(staff), Group.account == "")
            .values(account=channel, fallback_account=""))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def load_demo_chain(app: BotApp, *, units: bool = False) -> bool:
    """Load the demo chain into an empty store; False when the store already had a chain.
    units: with the demo's enterprise and key project (bot/demo/units.toml)."""
    async with app.session() as session, session.begin():
        if not await chain.is_empty(session):
            return False
        for name in ("chain.toml", "units.toml") if units else ("chain.toml",):
            text = resources.files("bot.demo").joinpath(name)
            with resources.as_file(text) as path:
                spec = chainfile.load(path)
            await chainfile.import_chain(session, spec, now=app.now())
    return True


class Console:
    """State of the console chat: where we speak, as whom, and the last invite code."""

    def __init__(self, app: BotApp, transport: SimTransport, out: TextIO):
        self.app = app
        self.transport = transport
        self.out = out
        self.rooms: dict[str, str] = {}      # room id -> title
        self.contacts: dict[str, str] = {}   # name -> contact id
        self.room: str | None = None
        self.speaker: str | None = None
        self.last_code = ""
        transport.printer = self._print_bot
        for channel in app.channels.values():
            if isinstance(channel, SimOfficialChannel):
                channel.printer = self._print_channel

    def _print_bot(self, room_id: str, text: str, mentions: Sequence[str]) -> None:
        names = {cid: name for name, cid in self.contacts.items()}
        at = " ".join(f"@{names.get(m, m)}" for m in mentions)
        body = text.replace("\n", "\n    ")
        where = self.rooms.get(room_id, room_id)
        self.out.write(f"  [{where}] 🤖 {at + ' ' if at else ''}{body}\n")
        self.out.flush()

    def _print_channel(self, channel: str, room_id: str, text: str) -> None:
        body = text.replace("\n", "\n    ")
        where = self.rooms.get(room_id, room_id)
        self.out.write(f"  [{where}] 🤖[{channel}] {body}\n")
        self.out.flush()

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    async def refresh(self) -> None:
        async with self.app.session() as session:
            for g in (await session.execute(
                    select(Group).where(Group.transport == self.transport.name))).scalars():
                self.rooms.setdefault(g.room_id, g.title)
            for name, cid in await session.execute(
                select(Person.name, Contact.contact_id)
                .join(Contact, Contact.person_id == Person.id)
                .where(Contact.transport == self.transport.name)
            ):
                self.contacts.setdefault(name, cid)

    async def handle(self, line: str) -> bool:
        """One input line; False to stop."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            return await self._command(line)
        if self.room is None or self.speaker is None:
            self.say("  (choose a group with /in and a speaker with /as first)")
            return True
        text = line.replace("$CODE", self.last_code)
        await self.transport.inject(self.transport.message(
            self.room, self.contacts[self.speaker], text, sender_name=self.speaker,
            room_topic=self.rooms.get(self.room, "")))
        await self.app.idle()
        return True

    async def _command(self, line: str) -> bool:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        await self.refresh()
        if cmd in ("/quit", "/exit"):
            return False
        if cmd == "/groups":
            for room, title in self.rooms.items():
                mark = "*" if room == self.room else " "
                self.say(f" {mark} {title}  ({room})")
        elif cmd == "/people":
            for name in self.contacts:
                self.say(f" {'*' if name == self.speaker else ' '} {name}")
        elif cmd == "/in":
            matches = [r for r, t in self.rooms.items() if arg and (arg == t or arg in t)]
            if not matches:
                self.say(f"  (no group named {arg!r}; /groups lists them)")
            else:
                self.room = matches[0]
                self.say(f"  (now in {self.rooms[self.room]})")
        elif cmd == "/as":
            if not arg:
                self.say("  (usage: /as NAME)")
            else:
                self.contacts.setdefault(arg, f"sim-new-{len(self.contacts) + 1}")
                self.speaker = arg
                self.say(f"  (speaking as {arg})")
        elif cmd == "/newgroup":
            room = f"new-{len(self.rooms) + 1}@chatroom"
            self.rooms[room] = arg or room
            self.room = room
            self.say(f"  (new unbound group {self.rooms[room]}; now in it)")
        elif cmd == "/leave":
            if self.room is None or self.speaker is None:
                self.say("  (first /in a group and /as someone)")
            else:
                await self.transport.member_left(self.room, self.contacts[self.speaker],
                                                 member_name=self.speaker)
                await self.app.idle()
                self.say(f"  ({self.speaker} left {self.rooms.get(self.room, self.room)})")
        elif cmd == "/invite":
            await self._invite(arg)
        elif cmd == "/accounts":
            await watch_accounts(self.app)
            await self.app.idle()
            async with self.app.session() as session:
                for a in await watchdog.account_health(session):
                    self.say(f"  {a.name or '(default)'}: {a.health.value}"
                             + (f" ({', '.join(a.problems)})" if a.problems else ""))
        elif cmd == "/time":
            if self._time(arg):
                # What the scheduler would have done meanwhile: reminders and escalations.
                await check_notices(self.app)
                await self.app.idle()
        else:
            self.say(CONSOLE_HELP)
        return True

    async def _invite(self, arg: str) -> None:
        node_ref, _, role_word = arg.rpartition(" ")
        async with self.app.session() as session, session.begin():
            node = await chain.find_node(session, ref=node_ref.strip())
            if node is None or not role_word:
                self.say("  (usage: /invite NODE ROLE, e.g. /invite 应天喜出租房 房东)")
                return
            group = role_word in ("群", "group")
            role = ROLE_WORDS.get(role_word)
            if not group and role is None:
                self.say(f"  (unknown role {role_word!r})")
                return
            invite = await chain.issue_invite(
                session, node=node, kind=InviteKind.GROUP if group else InviteKind.PERSON,
                role=None if group else role, now=self.app.now(),
                ttl=timedelta(days=self.app.settings.invites.ttl_days))
        self.last_code = invite.code
        self.say(f"  (invite {invite.code} for {node.name} {role_word}; $CODE = {invite.code})")

    def _time(self, arg: str) -> bool:
        clock = self.app.clock
        m = re.fullmatch(r"\+(\d+)([mhd])", arg)
        if not isinstance(clock, OffsetClock) or m is None:
            self.say("  (usage: /time +30m, +3h or +1d)")
            return False
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        now = clock.advance(timedelta(**{unit: int(m.group(1))}))
        self.say(f"  (clock now {now.astimezone(self.app.settings.zone):%Y-%m-%d %H:%M})")
        return True


async def run_console(app: BotApp, *, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout
                      ) -> None:
    """Run the console until /quit or end of input (lines from a pipe make a scripted run)."""
    assert isinstance(app.transport, SimTransport)
    console = Console(app, app.transport, out)
    await console.refresh()
    interactive = stdin.isatty()
    if interactive:
        console.say(CONSOLE_HELP)
    while True:
        if interactive:
            where = console.rooms.get(console.room or "", "-")
            out.write(f"[{where}] {console.speaker or '-'}> ")
            out.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        if not interactive and line.strip():
            console.say(f"> {pii.mask_text(line.rstrip())}")
        if not await console.handle(line):
            break
