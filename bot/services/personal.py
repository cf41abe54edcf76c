"""People's mobiles and ID numbers at rest: set (sealed, indexed, masked), match, reveal (the one
display path, logged), re-seal under a new key, and forget a person (PIPL Art. 47).

A number is stored three ways on `person` (see models/person.py): sealed under the active key
and bound to the row's id, a blind index for look-ups, and the masked form for display. The
sealed value needs the row's id, so a new person is flushed first and sealed after ("flush then
set": `create_person` and the chain import do this; the value reaches the database with the
transaction's next flush). Nothing outside this module opens a sealed value (a source-scan test
holds it): `reveal` for display, which writes the access log in the caller's transaction;
`_copy_numbers` and `rotate` re-seal without showing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import crypto, pii
from bot.crypto import Kind
from models import (
    AccessAction,
    AccessLog,
    Contact,
    InboundMessage,
    InviteAttempt,
    LandlordReport,
    LinkRequest,
    Membership,
    Notice,
    NoticeSchedule,
    OutboxMessage,
    Person,
    PointsEvent,
    Removal,
    TenantStay,
    Ticket,
)

TABLE = "person"
FORGOTTEN_NAME = "已删除"
FORGOTTEN_TEXT = "（已删除）"
_MASKERS: dict[Kind, Callable[[str], str]] = {"mobile": pii.mask_mobile, "id_number": pii.mask_id}


def _columns(kind: Kind) -> tuple[Any, Any, Any]:
    return (getattr(Person, f"{kind}_enc"), getattr(Person, f"{kind}_bidx"),
            getattr(Person, f"{kind}_mask"))


def index_columns(*, mobile: str | None = None, id_number: str | None = None
                  ) -> dict[str, str | None]:
    """The blind-index and masked columns of these numbers (for an INSERT; sealed after)."""
    out: dict[str, str | None] = {}
    for kind, value in (("mobile", mobile), ("id_number", id_number)):
        if value is None:
            continue
        plain = crypto.normalise(kind, value)  # type: ignore[arg-type]
        out[f"{kind}_bidx"] = crypto.blind_index(kind, plain)  # type: ignore[arg-type]
        out[f"{kind}_mask"] = _MASKERS[kind](plain)  # type: ignore[index]
    return out


def sealed_columns(person_id: int, *, mobile: str | None = None, id_number: str | None = None
                   ) -> dict[str, str]:
    """The sealed columns of these numbers for the person row `person_id`."""
    return {f"{kind}_enc": crypto.seal(crypto.normalise(kind, value), table=TABLE,  # type: ignore[arg-type]
                                       column=kind, row=person_id)
            for kind, value in (("mobile", mobile), ("id_number", id_number))
            if value is not None}


async def set_numbers(session: AsyncSession, person: Person, *, mobile: str | None = None,
                      id_number: str | None = None, keep: bool = False) -> None:
    """Give the person these numbers (None: leave that one as it is; keep=True: only fill
    a number the person has none of). A person without an id is flushed first."""
    if keep:
        mobile = mobile if person.mobile_bidx is None else None
        id_number = id_number if person.id_number_bidx is None else None
    if mobile is None and id_number is None:
        return
    if person.id is None:
        await session.flush([person])
    for column, value in (index_columns(mobile=mobile, id_number=id_number)
                          | sealed_columns(person.id, mobile=mobile, id_number=id_number)).items():
        setattr(person, column, value)


# The stored columns of a person's mobile, in the order new_person_mobile() gives them.
MOBILE_COLUMNS = ("mobile_bidx", "mobile_mask", "mobile_enc")


def new_person_mobile(person_id: int, mobile: str | None) -> tuple[str | None, ...]:
    """A new row's mobile as its MOBILE_COLUMNS values (for a bulk insert whose ids are known
    before it: the value is sealed to its row as it is written)."""
    if not mobile:
        return (None,) * len(MOBILE_COLUMNS)
    # What index_columns and sealed_columns give, the number normalised once (a chain import
    # seals 100,000 of them).
    plain = crypto.normalise("mobile", mobile)
    return (crypto.blind_index("mobile", plain), pii.mask_mobile(plain),
            crypto.seal(plain, table=TABLE, column="mobile", row=person_id))


def blind_index(kind: Kind, value: str) -> str:
    """The keyed hash `matches` compares with (for a statement built once, bound per run)."""
    return crypto.blind_index(kind, value)


def matches(kind: Kind, value: str) -> ColumnElement[bool]:
    """A WHERE clause: the person's number of this kind is `value` (by the blind index)."""
    return _columns(kind)[1] == crypto.blind_index(kind, value)  # type: ignore[no-any-return]


def has_number(kind: Kind) -> ColumnElement[bool]:
    """A WHERE clause: the person has a number of this kind."""
    return _columns(kind)[1].is_not(None)  # type: ignore[no-any-return]


def kind_of(value: str) -> Kind | None:
    """Whether a typed number is a mobile or an ID number (None: neither)."""
    if pii.is_mobile(crypto.normalise("mobile", value)):
        return "mobile"
    if pii.is_id_number(crypto.normalise("id_number", value)):
        return "id_number"
    return None


async def reveal(session: AsyncSession, person: Person, field: Kind, *, who: str, why: str,
                 now: datetime) -> str | None:
    """THE one way to show a number whole: decrypts it and records who saw which number of
    whom, why and when, in the caller's transaction (no log row, no value)."""
    if field not in crypto.KINDS:
        raise ValueError(f"no such personal field {field!r}")
    if not who.strip() or not why.strip():
        raise ValueError("reveal needs who asks and why")
    token = getattr(person, f"{field}_enc")
    session.add(AccessLog(at=now, who=who[:128], action=AccessAction.REVEAL,
                          person_id=person.id, field=field, why=why[:200]))
    await session.flush()
    if token is None:
        return None
    return crypto.unseal(token, table=TABLE, column=field, row=person.id)


async def copy_numbers(session: AsyncSession, *, source: Person, target: Person,
                       kinds: Iterable[Kind]) -> None:
    """Give `target` the numbers of these kinds that `source` has and it has not (a confirmed
    link merges two records of one person). Re-sealed for the target row, never shown."""
    for kind in kinds:
        enc, bidx, mask = (f"{kind}_enc", f"{kind}_bidx", f"{kind}_mask")
        token = getattr(source, enc)
        if token is None or getattr(target, bidx) is not None:
            continue
        plain = crypto.unseal(token, table=TABLE, column=kind, row=source.id)
        setattr(target, enc, crypto.seal(plain, table=TABLE, column=kind, row=target.id))
        setattr(target, bidx, getattr(source, bidx))
        setattr(target, mask, getattr(source, mask))


def _not_under(kind: Kind, prefix: str) -> ColumnElement[bool]:
    enc = _columns(kind)[0]
    return and_(enc.is_not(None), not_(enc.startswith(prefix, autoescape=True)))


async def pending_rotation(session: AsyncSession, *, keyring: crypto.Keyring) -> int:
    """How many people have a number not yet sealed under the active key."""
    prefix = f"{crypto.FORMAT}.{keyring.active}."
    return (await session.execute(select(func.count()).select_from(Person).where(
        or_(_not_under("mobile", prefix), _not_under("id_number", prefix))))).scalar_one()


async def rotate(sessions: async_sessionmaker[AsyncSession], *, keyring: crypto.Keyring,
                 batch: int = 500, progress: Callable[[int], None] | None = None) -> int:
    """Re-seal every number not under the keyring's active key, `batch` people per
    transaction, in id order. Interrupted, it is simply run again: what is done is done (each
    batch committed), what is left is found by its key id. Returns how many people it re-sealed."""
    prefix = f"{crypto.FORMAT}.{keyring.active}."
    done = 0
    after = 0
    while True:
        async with sessions() as session, session.begin():
            rows = (await session.execute(
                select(Person.id, Person.mobile_enc, Person.id_number_enc)
                .where(Person.id > after,
                       or_(_not_under("mobile", prefix), _not_under("id_number", prefix)))
                .order_by(Person.id).limit(batch))).all()
            if not rows:
                return done
            params = []
            for person_id, *tokens in rows:
                values: dict[str, Any] = {"id": person_id}
                for kind, token in zip(crypto.KINDS, tokens, strict=True):
                    if token is not None and not token.startswith(prefix):
                        plain = crypto.unseal(token, table=TABLE, column=kind, row=person_id,
                                              keyring=keyring)
                        values[f"{kind}_enc"] = crypto.seal(plain, table=TABLE, column=kind,
                                                            row=person_id, keyring=keyring)
                params.append(values)
            for values in params:
                await session.execute(update(Person).where(Person.id == values.pop("id"))
                                      .values(values))
            after = rows[-1][0]
        done += len(rows)
        if progress is not None:
            progress(done)


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What `forget` did: the people anonymised and the rows it scrubbed or removed."""

    person_ids: list[int]
    scrubbed: int


async def find_by_number(session: AsyncSession, *, number: str) -> tuple[Kind, list[Person]]:
    """Everyone whose mobile or ID number is `number` (ValueError: it is neither)."""
    kind = kind_of(number)
    if kind is None:
        raise ValueError("not an 11-digit mainland mobile or an 18-character ID number")
    found = list((await session.execute(
        select(Person).where(matches(kind, number)).order_by(Person.id))).scalars())
    return kind, found


async def forget(session: AsyncSession, *, number: str, who: str, why: str, now: datetime
                 ) -> Forgotten:
    """PIPL Art. 47: anonymise everyone registered with this mobile or ID number, everywhere.

    The person row stays (stays, readings, points and reports keep their counts) but loses its
    name, numbers and index values; contact ids, roles and pending links go; free text tied to
    them (origins, report details, tickets they raised, evidence, removal reasons, the contact
    ids of their inbound messages) is blanked, and any text still naming them or showing their
    masked numbers is scrubbed. Recorded in the access log (who, why, when; no number)."""
    _, people = await find_by_number(session, number=number)
    if not people:
        return Forgotten([], 0)
    ids = [p.id for p in people]
    needles: set[str] = set()
    for p in people:
        needles.update(v for v in (p.name, p.mobile_mask, p.id_number_mask) if v and len(v) >= 2)
    contacts = list((await session.execute(
        select(Contact.transport, Contact.contact_id).where(Contact.person_id.in_(ids)))).all())
    claimed = list((await session.execute(
        select(LinkRequest.transport, LinkRequest.contact_id).where(
            or_(LinkRequest.person_id.in_(ids), LinkRequest.claimant_id.in_(ids))))).all())
    contact_ids = {cid for _, cid in contacts} | {cid for _, cid in claimed}
    # What they wrote or where they came from, scrubbed where it was copied (a ticket relayed
    # up the chain, a reply quoting the origin) in text that also names them, or anywhere
    # when long enough not to be someone else's words by chance.
    stays = select(TenantStay.id).where(TenantStay.tenant_id.in_(ids))
    context: set[str] = set()
    for stmt in (select(TenantStay.origin).where(TenantStay.tenant_id.in_(ids)),
                 select(Ticket.text).where(Ticket.asker_id.in_(ids)),
                 select(LandlordReport.detail).where(or_(LandlordReport.landlord_id.in_(ids),
                                                         LandlordReport.stay_id.in_(stays))),
                 select(PointsEvent.evidence).where(PointsEvent.landlord_id.in_(ids)),
                 select(PointsEvent.appeal_reason).where(PointsEvent.landlord_id.in_(ids))):
        context.update(v for v in (await session.execute(stmt)).scalars() if v and len(v) >= 2)
    scrubbed = 0

    async def run(stmt: Any) -> None:
        nonlocal scrubbed
        scrubbed += (await session.execute(stmt.execution_options(
            synchronize_session=False))).rowcount or 0  # type: ignore[attr-defined]

    await run(update(TenantStay).where(TenantStay.tenant_id.in_(ids)).values(origin=None))
    await run(update(LandlordReport).where(or_(LandlordReport.landlord_id.in_(ids),
                                               LandlordReport.stay_id.in_(stays)))
              .values(detail=""))
    await run(update(Ticket).where(Ticket.asker_id.in_(ids)).values(text=FORGOTTEN_TEXT))
    await run(update(PointsEvent).where(PointsEvent.landlord_id.in_(ids))
              .values(evidence="", appeal_reason=None, decision_reason=None))
    await run(update(Removal).where(Removal.person_id.in_(ids))
              .values(contact_id=None, reason=FORGOTTEN_TEXT))
    if contact_ids:
        await run(update(InboundMessage).where(InboundMessage.sender_id.in_(contact_ids))
                  .values(sender_id=""))
        await run(update(InviteAttempt).where(InviteAttempt.contact_id.in_(contact_ids))
                  .values(contact_id=""))
        await _drop_mentions(session, contact_ids)
    await run(delete(LinkRequest).where(or_(LinkRequest.person_id.in_(ids),
                                            LinkRequest.claimant_id.in_(ids))))
    await run(delete(Contact).where(Contact.person_id.in_(ids)))
    await run(delete(Membership).where(Membership.person_id.in_(ids)))
    # Text elsewhere that still names them (a notice, a reply the bot sent, someone else's
    # ticket or report): the name and the masked numbers are scrubbed where they occur.
    for column in (OutboxMessage.text, Notice.text, NoticeSchedule.text, Ticket.text,
                   Ticket.answer, LandlordReport.detail, PointsEvent.evidence,
                   PointsEvent.decision_reason, PointsEvent.appeal_reason, Removal.reason):
        await _scrub(session, column, identity=needles | contact_ids, context=context)
    for p in people:
        p.name = FORGOTTEN_NAME
        for kind in crypto.KINDS:
            for col in (f"{kind}_enc", f"{kind}_bidx", f"{kind}_mask"):
                setattr(p, col, None)
        session.add(AccessLog(at=now, who=who[:128], action=AccessAction.FORGET, person_id=p.id,
                              field=None, why=why[:200]))
    await session.flush()
    return Forgotten(ids, scrubbed)


async def _scrub(session: AsyncSession, column: Any, *, identity: set[str], context: set[str]
                 ) -> None:
    # LIKE finds the rows, Python replaces (no dialect's REPLACE differences); few rows.
    # Context (an origin, their own words) goes from rows naming them, or anywhere when long.
    anywhere = {w for w in identity if w} | {w for w in context if len(w) >= 6}
    if not anywhere:
        return
    table = column.class_
    where = or_(false(), *(column.contains(w, autoescape=True) for w in anywhere))
    rows = (await session.execute(select(table.id, column).where(where))).all()
    for row_id, text in rows:
        named = any(w in text for w in identity)
        for w in sorted(anywhere | (context if named else set()), key=len, reverse=True):
            text = text.replace(w, FORGOTTEN_TEXT)
        await session.execute(update(table).where(table.id == row_id).values({column.key: text})
                              .execution_options(synchronize_session=False))


async def _drop_mentions(session: AsyncSession, contact_ids: set[str]) -> None:
    # Messages the bot sent that @mentioned them keep their text, not the contact id.
    as_text = func.cast(OutboxMessage.mentions, String)
    rows = (await session.execute(select(OutboxMessage.id, OutboxMessage.mentions).where(
        or_(false(), *(as_text.contains(c, autoescape=True) for c in contact_ids))))).all()
    for row_id, mentions in rows:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
            mentions=[m for m in mentions if m not in contact_ids])
            .execution_options(synchronize_session=False))
