"""Acknowledgement where a channel cannot report who wrote 收到 (a WeCom/DingTalk/Feishu group
robot only sends): a signed one-click link in the notice, and how 进度 tells the ways apart.

The link names a notice, a group and an expiry, signed with HMAC-SHA256 under a key derived
for this purpose alone from the keyring's index key (so a link's signature can never be
mistaken for a blind index, and rotating the encryption keys does not void links in flight).
Opening it (GET) only shows a confirm page: link previews and crawlers fetch links. The POST
records the acknowledgement as the GROUP's as a whole: the link is posted in the group, where
every member sees it, so the click cannot tell who made it; the row keeps no person
(`acked_by_id` empty, `acked_via` "link") and nobody is recorded as having acknowledged on
someone else's behalf. Whoever wants it on their own name replies 收到 #id on WeChat, where
their contact id says who they are (`notice.acknowledge_elsewhere`).

Policy branches on `Capabilities`, never on a platform's name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import ack_texts, crypto
from bot.channels.base import Capabilities
from bot.config import NoticeSettings
from bot.services import outbox
from models import Group, Notice, OutboxMessage, OutboxStatus

# A personal WeChat account through its puppet gateway: sees every message, knows who wrote it.
WECHAT = Capabilities(receive=True, ack_in_chat=True, mention_user=True, mention_all=False,
                      markdown=False, cards=False)

class _Declares(Protocol):
    capabilities: Capabilities


_declared: dict[str, Capabilities | _Declares] = {}


def declare(account: str, capabilities: Capabilities | _Declares) -> None:
    """Say what the channel named `account` can do: its capabilities, or the channel itself
    (the app declares its channels at start, so what they say now is what counts)."""
    _declared[account] = capabilities


def forget_declarations() -> None:
    """Back to "every account is WeChat" (tests; a registry reloading its channels)."""
    _declared.clear()


def send_only_accounts() -> list[str]:
    """The declared channels where a member's 收到 in the group is not seen."""
    return [name for name in _declared if not capabilities_for(name).ack_in_chat]


def capabilities_for(account: str) -> Capabilities:
    """What the channel a group sends through can do; WeChat's when nothing was declared."""
    found = _declared.get(account, WECHAT)
    return found if isinstance(found, Capabilities) else found.capabilities


# -- the signed link -------------------------------------------------------------------------

VIA_CHAT = "chat"
VIA_LINK = "link"
VIA_WECHAT = "wechat"

_PURPOSE = b"tierbot/ack-link/v1"
# A token is letters a-p only: every text the bot sends passes the masking step, which reads
# digits joined by dots or dashes as a possible mobile or ID number (a link "1.3.1582934400"
# would be masked and broken), so no digit and no separator may appear in one.
# "a" (format 1) ‖ 24 bytes (notice, group, expiry: unsigned 64-bit each) ‖ 16 bytes of
# HMAC-SHA256 over them, each byte as two letters.
_VERSION = "a"
_FIELDS = struct.Struct(">QQQ")
_MAC_BYTES = 16
_TOKEN = re.compile(rf"^a([a-p]{{{2 * (_FIELDS.size + _MAC_BYTES)}}})$")
_LETTERS = "abcdefghijklmnop"


def _encode(raw: bytes) -> str:
    return "".join(_LETTERS[b >> 4] + _LETTERS[b & 15] for b in raw)


def _decode(text: str) -> bytes:
    return bytes(_LETTERS.index(text[i]) << 4 | _LETTERS.index(text[i + 1])
                 for i in range(0, len(text), 2))


class LinkError(Exception):
    """A link that cannot acknowledge; `status` is the HTTP status, the message Chinese."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a correctly signed link names."""

    notice_id: int
    group_id: int
    expires: datetime


def _key(keyring: crypto.Keyring | None = None) -> bytes:
    ring = keyring or crypto.current()
    return hmac.new(ring.index_key, _PURPOSE, hashlib.sha256).digest()


def _mac(fields: bytes, keyring: crypto.Keyring | None) -> bytes:
    return hmac.new(_key(keyring), _VERSION.encode() + fields,
                    hashlib.sha256).digest()[:_MAC_BYTES]


def sign(*, notice_id: int, group_id: int, expires: datetime,
         keyring: crypto.Keyring | None = None) -> str:
    """The token of a link acknowledging `notice_id` for `group_id` until `expires`."""
    fields = _FIELDS.pack(notice_id, group_id, int(expires.timestamp()))
    return _VERSION + _encode(fields + _mac(fields, keyring))


def verify(token: str, *, now: datetime, keyring: crypto.Keyring | None = None) -> LinkClaim:
    """The claim of a token signed by us and not expired; LinkError otherwise (403 for anything
    not signed by us, 410 when expired)."""
    found = _TOKEN.match(token)
    if found is None:
        raise LinkError(403, ack_texts.REFUSED_INVALID)
    raw = _decode(found.group(1))
    fields, mac = raw[:_FIELDS.size], raw[_FIELDS.size:]
    if not hmac.compare_digest(mac, _mac(fields, keyring)):
        raise LinkError(403, ack_texts.REFUSED_INVALID)
    notice_id, group_id, expiry = _FIELDS.unpack(fields)
    expires = datetime.fromtimestamp(expiry, UTC)
    if now >= expires:
        raise LinkError(410, ack_texts.REFUSED_EXPIRED.format(
            until=ack_texts.REFUSED_FORMAT.format(at=expires), id=notice_id))
    return LinkClaim(notice_id, group_id, expires)


def link_url(*, notice_id: int, group_id: int, now: datetime, settings: NoticeSettings,
             keyring: crypto.Keyring | None = None) -> str:
    """The one-click link for a group ("" when no public address is configured)."""
    if not settings.ack_link_base:
        return ""
    token = sign(notice_id=notice_id, group_id=group_id,
                 expires=now + timedelta(days=settings.ack_link_days), keyring=keyring)
    return f"{settings.ack_link_base.rstrip('/')}/ack/{token}"


def ack_suffix(group: Group, notice: Notice, now: datetime, *, settings: NoticeSettings) -> str:
    """What to add to a notice in this group so it can be acknowledged: nothing where a member's
    收到 in the group is seen; else the signed link (where a public address is configured) and
    the WeChat reply."""
    return suffix_for(group, notice_id=notice.id, now=now, settings=settings)


def suffix_for(group: Group, *, notice_id: int, now: datetime, settings: NoticeSettings) -> str:
    """`ack_suffix` by the notice's id (reminders know only the id)."""
    if capabilities_for(group.account).ack_in_chat:
        return ""
    url = link_url(notice_id=notice_id, group_id=group.id, now=now, settings=settings)
    if url:
        return ack_texts.SUFFIX_LINK.format(url=url, id=notice_id)
    return ack_texts.SUFFIX_WECHAT.format(id=notice_id)


async def attach_suffixes(session: AsyncSession, *, notice: Notice, now: datetime,
                          settings: NoticeSettings) -> int:
    """Give each of a notice's rows in a group that cannot ack in chat its suffix (a notice
    row's own text is appended to the notice's when sent). Only those groups pass through
    Python, and a chain with no such channel declared pays nothing. Returns rows changed."""
    silent = send_only_accounts()
    if not silent:
        return 0
    rows = (await session.execute(
        select(OutboxMessage.id, Group).join(Group, Group.id == OutboxMessage.group_id)
        .where(OutboxMessage.notice_id == notice.id, OutboxMessage.account.in_(silent))
    )).tuples().all()
    if not rows:
        return 0
    # One executemany (Core: the ORM would take a list as its bulk-by-primary-key form).
    table = outbox.TABLE
    await session.execute(
        update(table).where(table.c.id == bindparam("row_id"))
        .values(text=bindparam("suffix")),
        [{"row_id": row_id, "suffix": ack_suffix(group, notice, now, settings=settings)}
         for row_id, group in rows])
    return len(rows)


@dataclass(frozen=True, slots=True)
class LinkView:
    """What a valid link is about: the notice, the group and its delivery row."""

    claim: LinkClaim
    notice: Notice
    group: Group
    row: OutboxMessage


async def look(session: AsyncSession, *, token: str, now: datetime) -> LinkView:
    """The notice and group a link names, checked (LinkError: 403 forged, 410 expired, 404 the
    notice or its delivery to that group does not exist)."""
    claim = verify(token, now=now)
    notice = await session.get(Notice, claim.notice_id)
    if notice is None or notice.missed:
        raise LinkError(404, ack_texts.REFUSED_UNKNOWN)
    found = (await session.execute(
        select(OutboxMessage, Group).join(Group, Group.id == OutboxMessage.group_id)
        .where(OutboxMessage.notice_id == claim.notice_id,
               OutboxMessage.group_id == claim.group_id))).tuples().one_or_none()
    if found is None:
        raise LinkError(404, ack_texts.REFUSED_NOT_TARGET)
    row, group = found
    return LinkView(claim, notice, group, row)


async def ack_by_link(session: AsyncSession, *, token: str, now: datetime
                      ) -> tuple[LinkView, bool]:
    """Record the group's acknowledgement by link (in the caller's transaction). Returns the
    view and whether this call recorded it (False: it was already acknowledged, any way)."""
    view = await look(session, token=token, now=now)
    # One conditional UPDATE: two clicks racing both pass `look`, only one finds it unacked.
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == view.row.id, OutboxMessage.acked_at.is_(None))
        .values(acked_at=now, acked_by_id=None, acked_via=VIA_LINK)
        .execution_options(synchronize_session=False))
    recorded = bool(result.rowcount)  # type: ignore[attr-defined]
    await session.refresh(view.row)
    if recorded and view.row.status != OutboxStatus.SENT:
        # The group has it (someone followed its link): no resend; a sender still holding
        # the row finds it settled, as for a 收到 in the group.
        view.row.status, view.row.sent_at, view.row.error = OutboxStatus.SENT, now, None
    return view, recorded


def ack_modes(capabilities: Capabilities, *, link: bool) -> tuple[str, ...]:
    """How a group on a channel with these capabilities acknowledges, as 进度 says it."""
    if capabilities.ack_in_chat:
        return (ack_texts.MODE_CHAT,)
    return ((ack_texts.MODE_LINK,) if link else ()) + (ack_texts.MODE_WECHAT,)
