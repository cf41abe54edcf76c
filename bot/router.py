"""Routers: handlers declare their command, where (tiers) and who (a Rule) may use it; the
pipeline dispatches, 帮助 lists and refusals explain from that one declaration."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain import HeldRole
from bot.grammar import Command
from bot.permission import Rule
from bot.transports.base import IncomingMessage
from models import Group, Node, Person, Role


@dataclass(frozen=True, slots=True)
class Reply:
    """What to say in the group the command came from, optionally mentioning contacts."""

    text: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Later:
    """A handler's answer worked out after its batch has committed, in a read-only session
    of its own (`BotApp.read_session`): a long read (统计 of a city) then holds up neither
    the other messages of the batch nor, on SQLite, the event loop. `read(session)` returns
    what a handler would (text, a Reply or None) and may raise UserError; it must not write.
    The reply goes out through the outbox like any other. What the handler wrote before
    returning is committed with the batch; a crash before the answer loses only the answer
    (the question is recorded: it is not asked again)."""

    read: Callable[[AsyncSession], Awaitable[str | Reply | None]]


@dataclass(slots=True)
class Context:
    """Everything a handler gets besides its command: one typed object."""

    session: AsyncSession
    message: IncomingMessage
    settings: Settings
    clock_now: Callable[[], datetime]
    group: Group | None
    node: Node | None
    sender: Person | None
    memberships: list[HeldRole] = field(default_factory=list)
    inbound_id: int | None = None
    # Every registered handler, so 帮助 can list what this sender may use here.
    specs: list[HandlerSpec] = field(default_factory=list)
    # Called after the transaction commits (e.g. schedule a job for a new 定时通知).
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # How the app (re)places a schedule's job; None where no scheduler runs.
    on_schedule: Callable[[Any], None] | None = None
    # The command being authorised or handled (a rule may read it, e.g. 房东上报 返回).
    command: Command | None = None

    def now(self) -> datetime:
        """The current time (aware, UTC)."""
        return self.clock_now()

    def schedule_changed(self, schedule: Any) -> None:
        """After the commit, (re)place or drop the job of this schedule."""
        if self.on_schedule is not None:
            hook = self.on_schedule
            self.after_commit.append(lambda: hook(schedule))

    @property
    def zone(self) -> ZoneInfo:
        """The users' time zone, for dates in replies."""
        return self.settings.zone

    @property
    def roles(self) -> frozenset[Role]:
        """Roles the sender holds in this group: at its node, or as landlord/captain one below."""
        if self.node is None:
            return frozenset()
        here = {m.role for m in self.memberships if m.node_id == self.node.id}
        # A landlord (or shop captain) sits in the team's tier-4 group as well as their own.
        here |= {m.role for m in self.memberships
                 if m.parent_id == self.node.id and m.role in (Role.LANDLORD, Role.CAPTAIN)}
        return frozenset(here)

    def holds(self, role: Role, *, tier: int | None = None) -> bool:
        """Whether the sender holds `role` in this group (and the group is of `tier`)."""
        if tier is not None and (self.node is None or self.node.tier != tier):
            return False
        return role in self.roles


HandlerResult = str | Reply | Later | None
C = TypeVar("C", bound=Command)
Handler = Callable[[Any, Context], Awaitable[HandlerResult]]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A registered handler and the rules for who may call it where."""

    command: type[Command]
    func: Handler
    # Where: the tiers of group it is used in (a callable: read from the settings or the
    # command's form).
    tiers: frozenset[int] | Callable[[Context], Iterable[int]] | None
    # Who: the rule the sender must pass there (None: anyone in such a group).
    allow: Rule | None
    needs_group: bool
    # Say nothing when not allowed (收到 and relays are everyday words, not requests).
    quiet: bool = False
    # The answer counts what was written in other rooms too (进度's acknowledgements, 统计's
    # returns): on PostgreSQL's lanes it waits until every message that arrived before it,
    # in any room, has been handled (Pipeline: a question never misses an earlier answer).
    reads_others: bool = False

    @property
    def usage(self) -> str:
        """The first docstring line: the command's syntax and what it does (used by 帮助)."""
        doc = inspect.getdoc(self.func) or self.command.__name__
        return doc.splitlines()[0]

    def in_place(self, ctx: Context) -> bool:
        """Whether the command belongs in this group (bound, of the right tier)."""
        if self.needs_group and ctx.node is None:
            return False
        tiers = self.tiers_for(ctx)
        return tiers is None or (ctx.node is not None and ctx.node.tier in tiers)

    def tiers_for(self, ctx: Context) -> frozenset[int] | None:
        """The tiers of group the command is used in (for this form, under these settings)."""
        if self.tiers is None or isinstance(self.tiers, frozenset):
            return self.tiers
        return frozenset(self.tiers(ctx))

    def allowed(self, ctx: Context) -> bool:
        """Whether this sender may use the command in this group."""
        return self.in_place(ctx) and (self.allow is None or self.allow(ctx))


class Router:
    """A set of handlers of one command family."""

    def __init__(self, name: str):
        self.name = name
        self.handlers: list[HandlerSpec] = []

    def command(
        self,
        command: type[C],
        *,
        tiers: Iterable[int] | Callable[[Context], Iterable[int]] | None = None,
        allow: Rule | None = None,
        needs_group: bool = True,
        quiet: bool = False,
        reads_others: bool = False,
    ) -> Callable[[Callable[[C, Context], Awaitable[HandlerResult]]], Handler]:
        """Register the decorated coroutine as the handler of `command`."""

        def register(func: Callable[[C, Context], Awaitable[HandlerResult]]) -> Handler:
            self.handlers.append(HandlerSpec(
                command=command, func=func,
                tiers=(tiers if tiers is None or callable(tiers) else frozenset(tiers)),
                allow=allow,
                needs_group=needs_group, quiet=quiet, reads_others=reads_others,
            ))
            return func

        return register


class Dispatcher:
    """Maps each command type to its handler, across all routers."""

    def __init__(self, routers: Iterable[Router]):
        self.specs: list[HandlerSpec] = []
        self._by_command: dict[type[Command], HandlerSpec] = {}
        for router in routers:
            for spec in router.handlers:
                if spec.command in self._by_command:
                    raise ValueError(f"two handlers for {spec.command.__name__}")
                self._by_command[spec.command] = spec
                self.specs.append(spec)

    def spec_for(self, command: Command) -> HandlerSpec | None:
        """The handler registered for this command's type."""
        return self._by_command.get(type(command))
