"""The channel registry: every sending credential by name. Each WeChat account of the
transport is a channel of kind "wechat"; each [[channels]] entry is built by the adapter its
kind names (the `KINDS` of bot.channels.wecom, dingtalk, feishu and sim), with the platform's
limits lowered by the entry's overrides and its credential as stored (sealed) by
`tierbot channels add`.

How groups use channels (see also models/chain.py):
- `chat_group.account` is the active binding: the channel name that sends to the group (a
  WeChat account's name, "" for the transport's only account, or a [[channels]] name);
  `fallback_account` the one failover moves it to. Outbox rows copy the binding when queued;
  the sender claims by the row's binding, so a retry goes the way the first attempt went.
- A group that exists on WeChat and also has a robot keeps its WeChat row (transport and room
  id of the WeChat group); its `account` names the robot, its `fallback_account` the WeChat
  account, and falling back needs nothing else (a webhook robot addresses its group by the
  webhook itself, so the WeChat room id is not used while the robot sends).
- A robot-only group (no WeChat group) has `transport = "channel"` (CHANNEL_TRANSPORT) and
  `room_id` = the channel's name for a webhook robot (one webhook is one group).
- A group an app bot receives from ([[sources]], bot/channels/sources.py) is bound by 绑定群
  typed there: its transport and room id are what the source reports ("dingtalk" and the
  conversation id, "feishu" and the chat id), so 收到 in it finds the group; it is sent to by
  the source's `account` or the channel the invite names.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from bot.channels.base import Limits, OutboundChannel
from bot.channels.limits import PLATFORM_LIMITS
from bot.config import ChannelSettings, ConfigError, PacingSettings
from bot.transports.base import Transport

log = logging.getLogger(__name__)

# The transport name of groups that exist only on an official channel.
CHANNEL_TRANSPORT = "channel"
# Modules whose KINDS register adapters (those not importable are skipped).
ADAPTER_MODULES = ("bot.channels.sim", "bot.channels.wecom", "bot.channels.dingtalk",
                   "bot.channels.feishu")
# Kinds that need no stored credential.
NO_CREDENTIAL = frozenset({"sim_official"})

Factory = Callable[..., OutboundChannel]


def kinds() -> dict[str, Factory]:
    """Every adapter kind the installed modules register."""
    found: dict[str, Factory] = {}
    for module_name in ADAPTER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name != module_name:
                raise
            continue
        found.update(getattr(module, "KINDS", {}))
    return found


def limits_for(entry: ChannelSettings, default: Limits | None = None) -> Limits:
    """The platform's limits for the entry's kind, lowered by the entry's overrides."""
    base = default
    if base is None:
        known = PLATFORM_LIMITS.get(entry.kind)
        if known is None:
            raise ConfigError(f"channels.{entry.name}: no platform limits known for kind "
                              f"{entry.kind!r}")
        base = Limits(**known)
    over = entry.overrides()
    for key in ("per_minute", "per_second", "per_group_per_second", "max_body_bytes"):
        theirs = getattr(base, key)
        if key in over and theirs is not None and over[key] > theirs:
            raise ConfigError(f"channels.{entry.name}.{key}: above the platform's {theirs}")
    if over.get("penalty_seconds", base.penalty_seconds) < base.penalty_seconds:
        raise ConfigError(f"channels.{entry.name}.penalty_seconds: below the platform's "
                          f"{base.penalty_seconds}")
    return replace(base, **over)


def official(entries: list[ChannelSettings],
             credentials: Mapping[str, tuple[str, dict[str, str]]], *,
             factories: Mapping[str, Factory] | None = None) -> dict[str, OutboundChannel]:
    """The configured official channels, each with its stored credential."""
    factories = kinds() if factories is None else factories
    out: dict[str, OutboundChannel] = {}
    for entry in entries:
        factory = factories.get(entry.kind)
        if factory is None:
            raise ConfigError(f"channels.{entry.name}: unknown kind {entry.kind!r} (known: "
                              f"{', '.join(sorted(factories)) or 'none'})")
        stored = credentials.get(entry.name)
        if stored is None and entry.kind not in NO_CREDENTIAL:
            raise ConfigError(f"channels.{entry.name}: no credential stored; run `tierbot "
                              f"channels add {entry.name} --kind {entry.kind}`")
        if stored is not None and stored[0] != entry.kind:
            raise ConfigError(f"channels.{entry.name}: the stored credential is of kind "
                              f"{stored[0]!r}, the configuration says {entry.kind!r}")
        out[entry.name] = factory(entry.name, stored[1] if stored else {},
                                  limits=limits_for(entry), keyword=entry.keyword,
                                  base_url=entry.base_url)
    return out


def wechat(transport: Transport, accounts: list[str], pacing: PacingSettings
           ) -> dict[str, OutboundChannel]:
    """Each WeChat account of the transport as a channel of kind "wechat"."""
    from bot.channels.wechat import WechatChannel

    return {name: WechatChannel(name, transport, pacing) for name in accounts}
