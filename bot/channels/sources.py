"""Inbound sources by kind: the app bots whose group messages come in over the platform's own
connection, built from [[sources]] and their stored credentials. The SDK modules are imported
only when a source of their kind is configured (lark-oapi is large; both are in the
`channels` extra)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.base import InboundSource
from bot.config import ConfigError, SourceSettings

# kind -> the credential fields it needs
KINDS: dict[str, tuple[str, str]] = {
    "dingtalk_stream": ("client_id", "client_secret"),
    "feishu_ws": ("app_id", "app_secret"),
}


def build(entry: SourceSettings, fields: Mapping[str, str]) -> InboundSource:
    """One source, its credential's fields checked (their values never in the message)."""
    missing = [f for f in KINDS[entry.kind] if not fields.get(f)]
    if missing:
        raise ConfigError(f"sources.{entry.name}: the stored credential lacks "
                          f"{', '.join(missing)} (tierbot channels add {entry.name} "
                          f"--kind {entry.kind})")
    if entry.kind == "dingtalk_stream":
        from bot.channels.dingtalk_stream import GATEWAY, DingTalkStreamSource

        return DingTalkStreamSource(entry.name, client_id=fields["client_id"],
                                    client_secret=fields["client_secret"],
                                    gateway=entry.endpoint or GATEWAY, account=entry.account)
    from bot.channels.feishu_ws import DOMAIN, FeishuWsSource

    return FeishuWsSource(entry.name, app_id=fields["app_id"], app_secret=fields["app_secret"],
                          domain=entry.endpoint or DOMAIN, account=entry.account,
                          bot_open_id=entry.bot_open_id)


def configured(entries: list[SourceSettings],
               credentials: Mapping[str, tuple[str, dict[str, str]]]) -> list[InboundSource]:
    """Every configured source with its stored credential; a missing or mismatched one is a
    configuration error naming what to run."""
    out = []
    for entry in entries:
        stored = credentials.get(entry.name)
        if stored is None:
            raise ConfigError(f"sources.{entry.name}: no credential stored; run `tierbot "
                              f"channels add {entry.name} --kind {entry.kind}`")
        if stored[0] != entry.kind:
            raise ConfigError(f"sources.{entry.name}: the stored credential is of kind "
                              f"{stored[0]!r}, the configuration says {entry.kind!r}")
        out.append(build(entry, stored[1]))
    return out
