"""Settings: init arguments (CLI flags) > TIERBOT_* environment > config.toml > defaults."""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The platforms' limits [[channels]] may only lower: one table, shared with the adapters.
from bot.channels.limits import PLATFORM_LIMITS  # noqa: E402

DEFAULT_CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and what is wrong."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantSettings(_Section):
    """Home watch and fever rules."""

    home_watch_days: int = Field(14, ge=1, le=60)
    fever_threshold: float = Field(37.3, ge=36.0, le=42.0)


class InviteSettings(_Section):
    """Invite codes."""

    ttl_days: int = Field(7, ge=1, le=90)
    # Wrong codes one contact may send within an hour; after that, silence until the hour ends.
    wrong_per_hour: int = Field(5, ge=1, le=100)


class PipelineSettings(_Section):
    """Inbound processing."""

    # Messages that arrive together share one commit, up to this many.
    batch_max: int = Field(256, ge=1, le=5000)
    # A batch of nothing but the bot's own echoes waits up to this long for more of them, so
    # a paced broadcast records its echoes a few to a commit instead of one commit (an fsync)
    # each; any other message ends the wait at once. 0: no waiting.
    echo_linger_ms: int = Field(50, ge=0, le=1000)
    # Batches handled side by side, each room's messages always in the same lane (in arrival
    # order), each lane its own transaction and connection: PostgreSQL only (SQLite has one
    # writer; there it is always 1). 0: the default, 4 on PostgreSQL (bot/app.py).
    lanes: int = Field(0, ge=0, le=8)


class AccountSettings(_Section):
    """One bot account: a WeChat login behind a Wechaty puppet service (gateway)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    # host:port of the gateway; it has no TLS, so keep it on loopback or a trusted network.
    endpoint: str = Field(pattern=r"^[^:\s]+:\d{1,5}$")
    token: str = Field(min_length=1)


class WechatySettings(_Section):
    """The Wechaty transport."""

    accounts: list[AccountSettings] = Field(default_factory=list)
    # Where python-wechaty keeps its cache (it would otherwise write ./.wechaty).
    cache_dir: str = "./data/wechaty"
    # First and longest wait between reconnect attempts to a lost gateway, in seconds.
    reconnect_min_seconds: float = Field(1.0, gt=0)
    reconnect_max_seconds: float = Field(60.0, gt=0)


class PacingSettings(_Section):
    """How fast each bot account may send (WeChat bans accounts that send like machines)."""

    min_gap_seconds: float = Field(3.0, ge=0)
    jitter_seconds: float = Field(7.0, ge=0)
    hourly_cap: int = Field(300, ge=1)
    daily_cap: int = Field(2000, ge=1)
    # After the platform's "too frequent": pause this long, longer if it recurs within a day.
    pause_minutes: float = Field(30, gt=0)
    repeat_pause_hours: float = Field(12, gt=0)
    # A failed send is retried with backoff (retry_base_seconds doubling) this many times.
    max_attempts: int = Field(5, ge=1, le=20)
    retry_base_seconds: float = Field(30, ge=0)
    # Texts longer than this are split into parts marked (1/2), (2/2).
    split_at: int = Field(2000, ge=100, le=10000)
    # The share of each hourly and daily cap that replies may not use: kept for notices.
    notice_reserve: float = Field(0.25, ge=0, lt=1)
    # A contact sending more commands than this in a minute gets one short warning, then no
    # answers for `flood_quiet_minutes` (the commands are still handled and recorded).
    commands_per_minute: int = Field(12, ge=1)
    flood_quiet_minutes: float = Field(5, ge=0)
    # Several processes on PostgreSQL: each account is driven by one process at a time, which
    # renews its lease every third of this; another process takes the account over once the
    # lease has run out this long after the holder's last renewal.
    lease_seconds: float = Field(15, ge=1, le=600)


class RecurringNoticeSettings(_Section):
    """A notice sent every day from the config file."""

    key: str = Field(min_length=1, max_length=64)
    time: str = Field(pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")
    text: str = Field(min_length=1)
    # The node it is sent from (its commander's name is not needed); default: the tier-1 root.
    origin: str | None = None
    # Only groups of these kinds (e.g. ["landlord_tenants"]), and/or only down to this tier.
    kinds: list[str] | None = None
    down_to_tier: int | None = Field(None, ge=1, le=5)
    urgent: bool = False


class NoticeSettings(_Section):
    """Acknowledgements, reminders, escalation, schedules and the daily roll-up."""

    # Minutes without 收到 before the group is reminded / the parent group is told (0 = never).
    remind_after_minutes: float = Field(120, ge=0)
    escalate_after_minutes: float = Field(360, ge=0)
    urgent_remind_after_minutes: float = Field(30, ge=0)
    urgent_escalate_after_minutes: float = Field(120, ge=0)
    # Who acknowledges for a group, per tier (default: whoever commands the group's node).
    responsible: dict[int, Literal["commander", "member", "secretary", "landlord",
                                   "captain"]] = Field(default_factory=dict)
    # A scheduled notice missed by less than this (downtime) is sent late; older ones are
    # recorded as missed and the creator is told.
    grace_minutes: float = Field(60, ge=0)
    # How often reminders and escalations are looked for.
    check_every_seconds: float = Field(60, ge=1)
    rollup_time: str = Field("20:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")
    recurring: list[RecurringNoticeSettings] = Field(default_factory=list)
    # Groups whose channel cannot report who wrote 收到 (a group robot) acknowledge by a
    # signed one-click link: the public address of this bot's API the link starts with
    # ("https://ack.example.cn"; "" = no link, a 收到 #id on WeChat only), and how long a
    # link stays valid.
    ack_link_base: str = Field("", pattern=r"^(https?://[^\s?#]+)?$")
    ack_link_days: int = Field(7, ge=1, le=90)

    @field_validator("responsible")
    @classmethod
    def _tiers(cls, value: dict[int, str]) -> dict[int, str]:
        bad = [t for t in value if t not in range(1, 6)]
        if bad:
            raise ValueError(f"tiers must be 1-5, got {bad}")
        return value


# --- points (issue 5): the landlords' 12-point system ---------------------------------------
PointsTrigger = Literal["report:violation", "report:errand", "report:mediation",
                        "auto:late_return", "auto:missed_disinfection", "manual"]


class PointsRule(_Section):
    """One rule of the 12-point system: what triggers it and what it is worth."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    name: str = Field(min_length=1, max_length=32)
    # Points added (positive) or deducted (negative); 0 for hand adjustments (the commander
    # gives the figure).
    delta: int = Field(ge=-12, le=12)
    needs_verification: bool = True
    # Most points a landlord can get (or lose) from this rule in one week; 0 = no cap.
    weekly_cap: int = Field(0, ge=0)
    trigger: PointsTrigger
    # A hand adjustment (加分/扣分) whose reason contains one of these is booked to this rule.
    keywords: list[str] = Field(default_factory=list)


def _default_rules() -> list[PointsRule]:
    return [
        PointsRule(code="violation", name="上报违规租客", delta=1, weekly_cap=3,
                   trigger="report:violation"),
        PointsRule(code="errand", name="代办", delta=1, weekly_cap=3, trigger="report:errand"),
        PointsRule(code="mediation", name="参与调解", delta=1, weekly_cap=3,
                   trigger="report:mediation"),
        PointsRule(code="late_return", name="迟报租客返回", delta=-2,
                   trigger="auto:late_return"),
        PointsRule(code="missed_disinfection", name="未按时消毒", delta=-1,
                   needs_verification=False, trigger="auto:missed_disinfection"),
        PointsRule(code="concealment", name="瞒报租客", delta=-3, trigger="manual",
                   keywords=["瞒报"]),
        PointsRule(code="manual", name="指挥长调整", delta=0, trigger="manual"),
    ]


class PointsSettings(_Section):
    """The landlords' 12-point system: rules, verification, deductions, weekly lists."""

    rules: list[PointsRule] = Field(default_factory=_default_rules)
    start_score: int = Field(12, ge=0, le=100)
    # "campaign": every approved event since campaign_start counts; "weekly": back to 12 each week.
    period: Literal["campaign", "weekly"] = "campaign"
    campaign_start: date | None = None
    # Who verifies (核查): this role at the landlord's node of this tier.
    verifier_role: Literal["secretary", "commander"] = "secretary"
    verifier_tier: int = Field(2, ge=1, le=3)
    # Pending events older than this many days are approved automatically (0 = never).
    auto_approve_days: int = Field(0, ge=0)
    # A tenant's own return the landlord has not registered within this many hours: late.
    late_return_hours: float = Field(24, gt=0)
    # Disinfection is due every N days (1 = daily), reported by the deadline (local time).
    disinfection_every_days: int = Field(1, ge=1, le=30)
    disinfection_deadline: str = Field("20:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")
    # Names on the red (五好房东) and black (拖拉机房东) lists each week, per ranking scope.
    list_size: int = Field(3, ge=1, le=20)
    # Only landlords above the start score make the red list, only those below it the black.
    lists_need_change: bool = True
    ranking_tier: Literal[1, 2] = 1
    # Reward per approved positive point, in yuan.
    reward_per_point: float = Field(10.0, ge=0)
    # Red-list appearances in a year that make a good-person candidate (好人候选).
    good_person_threshold: int = Field(3, ge=1)
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    weekly_time: str = Field("09:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")

    @field_validator("rules")
    @classmethod
    def _unique_codes(cls, value: list[PointsRule]) -> list[PointsRule]:
        codes = [r.code for r in value]
        if len(codes) != len(set(codes)):
            raise ValueError("rule codes must be unique")
        return value

    def rule(self, code: str) -> PointsRule | None:
        """The rule with this code."""
        return next((r for r in self.rules if r.code == code), None)

    def rule_for(self, trigger: str) -> PointsRule | None:
        """The (first) rule with this trigger."""
        return next((r for r in self.rules if r.trigger == trigger), None)
# --- end points ----------------------------------------------------------------------------


class ShopSettings(_Section):
    """Shop rows (铺长制): when a missing daily check-in is reminded and escalated."""

    # The captain is reminded in the row's group when no check-in has come by then ...
    remind_time: str = Field("10:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")
    # ... and the team's tier-4 group is told by this later time.
    escalate_time: str = Field("14:00", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")


_LOWER_ONLY = ("per_minute", "per_second", "per_group_per_second", "max_body_bytes")


class SourceSettings(_Section):
    """One inbound source ([[sources]]): an app bot whose group messages reach the bot over
    the platform's own connection (DingTalk Stream mode, Feishu's long connection), so 收到,
    进度 and the other commands work in staff groups. Its credential is stored encrypted by
    `tierbot channels add NAME --kind KIND` (client_id/client_secret; app_id/app_secret)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["dingtalk_stream", "feishu_ws"]
    # The channel ([[channels]] name) that sends to the groups bound from this source by
    # default ("" = the one an invite names with --channel).
    account: str = Field("", max_length=64)
    # The platform's address; tests point it at a fake server on 127.0.0.1.
    endpoint: str | None = None
    # Feishu: the bot's own open_id, to tell a mention of the bot from others' (optional).
    bot_open_id: str = ""


class ChannelSettings(_Section):
    """One official sending credential ([[channels]]): a group robot's webhook or an app bot.
    Its secret (webhook URL or key, signing secret, app id and secret) is never here: it is
    stored encrypted by `tierbot channels add` and joined to this entry by `name`."""

    # The binding's name: what chat_group.account / fallback_account and outbox rows name.
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = Field(min_length=1, max_length=32)
    # Lower than the platform's limits only (a shared credential, a cautious start).
    per_minute: int | None = Field(None, ge=1)
    per_second: int | None = Field(None, ge=1)
    per_group_per_second: int | None = Field(None, ge=1)
    max_body_bytes: int | None = Field(None, ge=200)
    # Longer than the platform's penalty only.
    penalty_seconds: float | None = Field(None, ge=0)
    # The word the robot's keyword security requires in every message ("" = none).
    keyword: str = Field("", max_length=32)
    # The platform's API root; tests point it at a fake server on 127.0.0.1.
    base_url: str | None = None

    @model_validator(mode="after")
    def _only_lower(self) -> ChannelSettings:
        defaults = PLATFORM_LIMITS.get(self.kind)
        if defaults is None:
            return self  # a kind an adapter module registers: checked when the registry builds
        for key in _LOWER_ONLY:
            mine, theirs = getattr(self, key), defaults.get(key)
            if mine is not None and theirs is not None and mine > theirs:
                raise ValueError(f"channels.{self.name}.{key}: {mine} is above the platform's "
                                 f"limit {theirs} (configuration may only lower it)")
        penalty = defaults.get("penalty_seconds", 0.0)
        if self.penalty_seconds is not None and self.penalty_seconds < penalty:
            raise ValueError(f"channels.{self.name}.penalty_seconds: {self.penalty_seconds} is "
                             f"below the platform's penalty {penalty}")
        return self

    def overrides(self) -> dict[str, Any]:
        """The limits this entry sets (to apply over the platform's defaults)."""
        return {k: v for k in (*_LOWER_ONLY, "penalty_seconds")
                if (v := getattr(self, k)) is not None}


class PrivacySettings(_Section):
    """Masking of personal numbers in everything the bot sends and logs."""

    # Numbers that may go out unmasked (a public hotline, the community office), any spelling.
    public_numbers: list[str] = Field(default_factory=list)


class KeySettings(_Section):
    """Where the keys of personal numbers at rest come from (never from the database)."""

    # The key file `tierbot keys init` writes (0600); back it up apart from the database.
    file: str = "./data/tierbot.keys"
    # An environment variable holding the key file's text instead (wins when set; "" = none).
    # Not TIERBOT_KEYS: that name is the [keys] section itself in the TIERBOT_* environment.
    env: str = "TIERBOT_KEYRING"


_HM = r"^([01]?\d|2[0-3]):[0-5]\d$"


class UnitSettings(_Section):
    """Enterprises and key projects: when a missing 企业日报 or 工作卡 is reminded in the unit's
    own group, and when the community is told which units have not reported."""

    remind_time: str = Field("10:00", pattern=_HM)
    escalate_time: str = Field("14:00", pattern=_HM)

    @model_validator(mode="after")
    def _escalate_after_remind(self) -> UnitSettings:
        def minutes(hm: str) -> int:
            hour, minute = hm.split(":")
            return int(hour) * 60 + int(minute)
        if minutes(self.escalate_time) <= minutes(self.remind_time):
            raise ValueError("units.escalate_time must be later than units.remind_time")
        return self


class RetentionSettings(_Section):
    """How long each kind of personal record is kept, and when the daily purge runs."""

    # Temperature readings and the stay itself, counted from the end of the home watch (or of
    # the tenancy, if it ended first).
    stay_days: int = Field(30, ge=1, le=3650)
    # Inbound message rows (who sent which command where; no text is kept).
    inbound_days: int = Field(7, ge=1, le=3650)
    # The text (and mentions) of delivered or failed outbox rows; roll-ups keep theirs.
    outbox_text_days: int = Field(30, ge=1, le=3650)
    # Who revealed which number when (the access log, PIPL's record of processing).
    access_log_days: int = Field(1095, ge=30, le=36500)
    purge_time: str = Field("03:30", pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")


class ApiSettings(_Section):
    """The admin API."""

    # Deprecated: one shared token that acts as a superuser (warned at start). Give each
    # administrator their own: `tierbot tokens create --person …`.
    token: str = ""
    # /docs and /openapi.json without a token (only on a trusted network).
    public_docs: bool = False
    # Days a new token lives unless `tokens create --days` says otherwise.
    token_days: int = Field(90, ge=1, le=3650)
    # Wrong tokens one address may present before each further try waits, doubling from
    # one second up to the longest delay (429 with Retry-After meanwhile).
    failures_before_delay: int = Field(5, ge=1, le=1000)
    max_delay_seconds: float = Field(900, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class WatchdogSettings(_Section):
    """The watchdog on every sending account: what counts as a problem, the self-test, and
    when failover moves groups to their fallback and back."""

    # Run the watchdog job (every `check_every_seconds`) in this process.
    enabled: bool = True
    check_every_seconds: int = Field(60, ge=10, le=3600)
    # (a) silent: no inbound message for this long while its groups are normally active.
    silent_minutes: float = Field(60, gt=0)
    # "Normally active": the commands its groups sent at this hour of day over the last
    # `learn_days` days, scaled to the silent window, reach `min_expected`; or, when
    # `min_rate_per_hour` is set (> 0), that configured rate does.
    learn_days: int = Field(7, ge=1, le=60)
    min_expected: float = Field(3.0, gt=0)
    min_rate_per_hour: float = Field(0.0, ge=0)
    # (b) self-test: account name -> a private test room on its platform; a probe every
    # `self_test_every_minutes`, its echo due within `self_test_timeout_minutes`.
    test_rooms: dict[str, str] = Field(default_factory=dict)
    self_test_every_minutes: float = Field(30, gt=0)
    self_test_timeout_minutes: float = Field(5, gt=0)
    # (c) sends with no echo: tagged texts sent more than `no_echo_after_minutes` ago within
    # the last `no_echo_window_minutes`, at least `no_echo_count` of them without an echo.
    no_echo_after_minutes: float = Field(5, gt=0)
    no_echo_window_minutes: float = Field(60, gt=0)
    no_echo_count: int = Field(3, ge=1)
    # (d) failover: a rate-limit pause at least this long counts as down.
    pause_down_minutes: float = Field(60, gt=0)
    # Down this long: groups with a fallback move to it (0: at the first run that sees it).
    failover_after_minutes: float = Field(5, ge=0)
    # Healthy again this long: the moved groups go back to their primary.
    failback_after_minutes: float = Field(30, ge=0)
    # Automatic failover on/off (alerts are sent either way).
    failover: bool = True
class ConsoleSettings(_Section):
    """The web console (/console on the admin API's server)."""

    # Signs the session cookie; "" makes a random one per process (sessions then end at a
    # restart). Keep it secret; at least 32 characters when set.
    secret_key: str = ""
    # Send the cookie over HTTPS only (set when the console is served behind TLS).
    secure_cookie: bool = False
    # A session ends after this long without a request, and this long after login at most.
    idle_minutes: float = Field(30, gt=0, le=24 * 60)
    absolute_hours: float = Field(12, gt=0, le=24 * 30)
    # Wrong passwords for one login name, or from one address, within the window lock it
    # for the window (counted from the latest failure).
    max_failures: int = Field(5, ge=1, le=1000)
    lockout_minutes: float = Field(15, gt=0, le=24 * 60)
    # A set-up link printed by `tierbot console invite` works once, within this many hours.
    invite_hours: float = Field(48, gt=0, le=24 * 30)
    # How the printed link starts (the console's address as its users reach it).
    base_url: str = "http://127.0.0.1:8080"
    # Reverse proxies (their addresses) whose X-Forwarded-For names the client: behind one,
    # every request would otherwise come from the proxy and the per-address lockout would
    # lock everyone out at once.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("at least 32 characters (or empty: a random key per process)")
        return value


class Settings(BaseSettings):
    """Everything the bot reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="TIERBOT_", env_nested_delimiter="__", extra="forbid", toml_file=None
    )

    database_url: str = "sqlite+aiosqlite:///./tierbot.db"
    timezone: str = "Asia/Shanghai"
    transport: Literal["sim", "memory", "wechaty"] = "sim"
    # Names the bot is @mentioned by in groups; the mention is stripped before parsing.
    bot_names: list[str] = Field(default_factory=lambda: ["小助手", "tierbot"])
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    tenants: TenantSettings = Field(default_factory=TenantSettings)
    invites: InviteSettings = Field(default_factory=InviteSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    wechaty: WechatySettings = Field(default_factory=WechatySettings)
    pacing: PacingSettings = Field(default_factory=PacingSettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)
    points: PointsSettings = Field(default_factory=PointsSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    shops: ShopSettings = Field(default_factory=ShopSettings)
    units: UnitSettings = Field(default_factory=UnitSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    # Official channels beside the WeChat accounts (issue 15); secrets stored encrypted.
    channels: list[ChannelSettings] = Field(default_factory=list)
    # App bots whose groups' messages come in over the platform's connection (issue 15).
    sources: list[SourceSettings] = Field(default_factory=list)
    watchdog: WatchdogSettings = Field(default_factory=WatchdogSettings)
    # Run the APScheduler jobs (reminders, roll-ups, scheduled notices) in this process.
    scheduler: bool = True

    @model_validator(mode="after")
    def _unique_channel_names(self) -> Settings:
        names = [c.name for c in self.channels]
        accounts = {a.name for a in self.wechaty.accounts}
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"channels: the name {name!r} is used twice")
            if name in accounts:
                raise ValueError(f"channels: {name!r} is also a wechaty account's name")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        for plain, driver in (("sqlite://", "sqlite+aiosqlite://"),
                              ("postgresql://", "postgresql+asyncpg://"),
                              ("postgres://", "postgresql+asyncpg://")):
            if value.startswith(plain):
                return driver + value[len(plain):]
        if value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            return value
        raise ValueError("must be a sqlite:/// or postgresql:// URL")

    @property
    def zone(self) -> ZoneInfo:
        """The time zone users live in (dates in replies, schedules)."""
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return None if path in ("", ":memory:") else Path(path)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file is read only when load_settings names one (see _with_file).
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            parts.append(f"{key}: unknown key")
        else:
            parts.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(parts)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; `config_file` defaults to $TIERBOT_CONFIG or ./config.toml if present."""
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    else:
        env_path = os.environ.get("TIERBOT_CONFIG")
        path = Path(env_path) if env_path else Path(DEFAULT_CONFIG_FILE)
        if not path.is_file():
            if env_path:
                raise ConfigError(f"TIERBOT_CONFIG names {path}, which does not exist")
            path = None
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    cls: type[Settings] = Settings
    if path is not None:
        cls = type("FileSettings", (Settings,), {"model_config": {**Settings.model_config,
                                                                  "toml_file": path}})  # type: ignore[assignment]
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where = f" (in {path} or TIERBOT_* environment)" if path else " (TIERBOT_* environment)"
        raise ConfigError(f"bad configuration{where}: {_describe(exc)}") from None
