"""Two batches at once, as the pipelines of two `tierbot run` processes sharing one
PostgreSQL database run them (bench/LANES.md): the first is held inside its handler, right
after its look-up, while the second runs. On SQLite the second waits for the one connection;
on PostgreSQL it must wait for the mobile's lock (people.lock_mobile), or both would find no
one and make two people and two stays for one mobile."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.crypto import blind_index
from bot.services import people
from bot.transports.memory import MemoryTransport
from models import LandlordReport, Person, TenantStay
from tests.conftest import DemoChain, count

GUARD = 30.0
MOBILE = "13812340000"


async def test_a_tenant_and_the_landlord_reporting_one_return_at_once_make_one_stay(
        bot, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    held, go = asyncio.Event(), asyncio.Event()
    looked: list[str] = []

    def holding(name: str, look: Any) -> Any:
        async def first_held(*args: Any, **kwargs: Any) -> Any:
            found = await look(*args, **kwargs)
            looked.append(name)
            if len(looked) == 1:  # the first batch, between its look-up and its writes
                held.set()
                await go.wait()
            return found
        return first_held

    for name in ("holder_contacts", "holder_contacts_and_owner"):
        monkeypatch.setattr(people, name, holding(name, getattr(people, name)))
    tenant = transport.message(chain.tenant_group, "sim-new-wangming",
                               f"我回来了 王明 {MOBILE} 湖南长沙", sender_name="王明")
    landlord = transport.message(chain.landlords_group, chain.landlord,
                                 f"房东上报 返回 王明 {MOBILE} 湖南长沙")
    first = asyncio.create_task(bot.pipeline.process([tenant]))
    await asyncio.wait_for(held.wait(), GUARD)
    second = asyncio.create_task(bot.pipeline.process([landlord]))
    await asyncio.sleep(0.5)
    assert not second.done()  # it waits for the first (the lock; on SQLite the connection)
    go.set()
    await asyncio.wait_for(asyncio.gather(first, second), GUARD)
    assert looked == ["holder_contacts_and_owner", "holder_contacts"]
    bidx = blind_index("mobile", MOBILE)
    assert await count(bot, Person, Person.mobile_bidx == bidx) == 1
    async with bot.session() as s:
        [stay] = (await s.execute(select(TenantStay).join(
            Person, Person.id == TenantStay.tenant_id).where(
            Person.mobile_bidx == bidx))).scalars().all()
    assert stay.self_reported_at is not None and stay.landlord_reported_at is not None
    assert await count(bot, LandlordReport, LandlordReport.stay_id == stay.id) == 1
