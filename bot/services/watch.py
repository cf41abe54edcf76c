"""People under home watch (居家观察) in a set of nodes: tenants (their latest stay) and
enterprises' workers (their cards); the console's list and who may be revealed from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import tenant
from models import Node, Person, WorkerCard, WorkerHealth


@dataclass(frozen=True, slots=True)
class Watched:
    """One person under home watch: where, until when, and the last temperature."""

    person: Person
    kind: str  # "tenant" or "worker"
    node: Node
    since: datetime | None
    until: datetime
    fever: bool
    last_temperature: float | None


async def under_watch(session: AsyncSession, *, node_ids: Select[tuple[int]], now: datetime
                      ) -> list[Watched]:
    """Everyone whose home watch has not ended at `now`, in these nodes (a query of ids):
    tenants by their latest stay (the list 我的租客 and /api/tenants read), workers by card."""
    nodes = {n.id: n for n in (await session.execute(
        select(Node).where(Node.id.in_(node_ids)))).scalars()}
    out = [Watched(person=row.tenant, kind="tenant", node=nodes[row.stay.node_id],
                   since=row.stay.arrived_at, until=row.stay.watch_until, fever=row.stay.fever,
                   last_temperature=row.last_reading)
           for row in await tenant.list_tenants(session, node_ids=node_ids)
           if row.stay.watch_until > now]
    cards = await session.execute(
        select(WorkerCard, Person).join(Person, Person.id == WorkerCard.person_id)
        .where(WorkerCard.enterprise_node_id.in_(node_ids), WorkerCard.watch_until > now)
        .order_by(WorkerCard.id))
    for card, person in cards.tuples():
        out.append(Watched(person=person, kind="worker", node=nodes[card.enterprise_node_id],
                           since=None, until=card.watch_until or now,
                           fever=card.health == WorkerHealth.FEVER,
                           last_temperature=None))
    return out


async def watched_person(session: AsyncSession, *, node_ids: Select[tuple[int]],
                         person_id: int, now: datetime) -> Person | None:
    """The person if under watch in these nodes (whom the list shows), else None."""
    for row in await under_watch(session, node_ids=node_ids, now=now):
        if row.person.id == person_id:
            return row.person
    return None
