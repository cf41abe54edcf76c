"""Typed, immutable command models that the parser produces and the handlers consume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bot.pii import is_id_number, is_mobile, is_valid_temperature

__all__ = [
    "COMMANDS",
    "Ack",
    "AdjustPoints",
    "Answer",
    "Appeal",
    "Arrival",
    "BindGroup",
    "BindPerson",
    "Command",
    "Feedback",
    "GoodPersonCandidates",
    "HealthMention",
    "Help",
    "LandlordReport",
    "MyTenants",
    "PendingChecks",
    "Progress",
    "Relay",
    "ReportKind",
    "Reward",
    "ScheduleCancel",
    "ScheduleList",
    "ScheduleNotice",
    "Score",
    "ScoreHistory",
    "SendNotice",
    "Temperature",
    "TenantReturn",
    "Todo",
    "Verify",
    "When",
]

DayPeriod = Literal["凌晨", "早上", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "半夜"]
ReportKind = Literal["disinfect", "errand", "violation", "mediation"]

_CODE_PATTERN = r"^[A-Z0-9]{4,12}$"


def _checked(test: Callable[[str], bool], problem: str,
             prepare: Callable[[str], str] = str) -> AfterValidator:
    def check(value: str) -> str:
        value = prepare(value)
        if not test(value):
            raise ValueError(problem)
        return value
    return AfterValidator(check)


def _reading(value: float) -> float:
    if not is_valid_temperature(value):
        raise ValueError("temperature out of range")
    return value


# The personal numbers and readings commands carry, checked where they are parsed.
MobileNumber = Annotated[str, _checked(is_mobile, "not an 11-digit mainland mobile number")]
IdNumber = Annotated[str, _checked(is_id_number, "invalid ID number", str.upper)]
Reading = Annotated[float, AfterValidator(_reading)]


class Command(BaseModel):
    """Base of every parsed command; `keyword` is its canonical Chinese keyword."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    keyword: ClassVar[str] = ""


class Help(Command):
    """帮助: list the commands."""

    keyword: ClassVar[str] = "帮助"


class BindPerson(Command):
    """绑定 <码>: link the sender's WeChat account to their person record."""

    keyword: ClassVar[str] = "绑定"
    code: str = Field(pattern=_CODE_PATTERN)


class BindGroup(Command):
    """绑定群 <码>: link the current group to its node in the chain."""

    keyword: ClassVar[str] = "绑定群"
    code: str = Field(pattern=_CODE_PATTERN)


class Arrival(BaseModel):
    """When a tenant arrived; days_ago (今天=0, 昨天=1, 前天=2) is resolved by the handler."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    year: int | None = Field(default=None, ge=2000, le=2099)
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    hour: int | None = Field(default=None, ge=0, le=23)
    minute: int | None = Field(default=None, ge=0, le=59)
    days_ago: int | None = Field(default=None, ge=0, le=2)
    # 晚上, 凌晨 …: a part of the day given without an hour (shown as written, never 00:00).
    period: DayPeriod | None = None


class TenantReturn(Command):
    """租客返回: a tenant is back; landlord_form marks 房东上报 返回."""

    keyword: ClassVar[str] = "租客返回"
    name: str | None = None
    mobile: MobileNumber
    origin: str | None = None
    arrival: Arrival | None = None
    temperature: Reading | None = None
    id_number: IdNumber | None = None
    landlord_form: bool = False


class Temperature(Command):
    """体温 36.6: a temperature report; a landlord may name the tenant."""

    keyword: ClassVar[str] = "体温"
    value: float
    name: str | None = None
    # Read without its keyword (上午36.5, 36.5 正常): refused silently outside tenant groups.
    unmarked: bool = False

    @field_validator("value")
    @classmethod
    def _valid_value(cls, v: float) -> float:
        if not is_valid_temperature(v):
            raise ValueError("temperature out of range")
        return v


class HealthMention(Command):
    """A health word (体温, 发烧, 咳嗽) or a reading that cannot be read for sure: never ignored.

    `value` is the highest plausible reading found (None if none), `fever` whether the writer
    says someone has a fever (not asked, not denied); the handler compares with the threshold.
    """

    keyword: ClassVar[str] = "体温"
    value: float | None = None
    name: str | None = None
    fever: bool = False

    @field_validator("value")
    @classmethod
    def _valid_value(cls, v: float | None) -> float | None:
        if v is not None and not is_valid_temperature(v):
            raise ValueError("temperature out of range")
        return v


class LandlordReport(Command):
    """房东上报: a landlord reports disinfection, an errand, a violation or a mediation."""

    keyword: ClassVar[str] = "房东上报"
    kind: ReportKind
    detail: str = ""
    # Read from a plain sentence (帮302租客代买了蔬菜): a tenant saying it is not refused.
    unmarked: bool = False


class MyTenants(Command):
    """我的租客: a landlord lists their tenants."""

    keyword: ClassVar[str] = "我的租客"


# --- notices down the chain ------------------------------------------------------------------

_ID = Field(ge=1)
_TIER = Field(default=None, ge=1, le=5)


class SendNotice(Command):
    """通知 [到3级] 内容: broadcast a notice down the chain (the handler reads a target word)."""

    keyword: ClassVar[str] = "通知"
    text: str = Field(min_length=1)
    urgent: bool = False
    preview: bool = False
    down_to_tier: int | None = _TIER

    @field_validator("text")
    @classmethod
    def _stripped(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("empty notice")
        return v


class Ack(Command):
    """收到: the group's responsible person acknowledges a notice (the latest if unnamed)."""

    keyword: ClassVar[str] = "收到"
    notice_id: int | None = Field(default=None, ge=1)


class Relay(Command):
    """【通知#27】…: a commander re-posts a tagged notice into their own group."""

    keyword: ClassVar[str] = "【通知#编号】"
    notice_id: int = _ID


class Progress(Command):
    """进度 [27]: how far a notice has got, tier by tier (the latest if unnamed)."""

    keyword: ClassVar[str] = "进度"
    notice_id: int | None = Field(default=None, ge=1)
    # Asked in other words (谁还没收到): refused silently where 进度 is not used.
    unmarked: bool = False


class When(BaseModel):
    """A scheduled time; days_ahead (今天=0, 明天=1, 后天=2) is resolved by the handler."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    days_ahead: int | None = Field(default=None, ge=0, le=2)
    year: int | None = Field(default=None, ge=2000, le=2099)
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    hour: int = Field(ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)

    @property
    def has_date(self) -> bool:
        """Whether a day was given (relative or by date)."""
        return self.days_ahead is not None or self.month is not None or self.day is not None


class ScheduleNotice(Command):
    """定时通知 明天8:00 内容 / 每天 18:00 通知 内容: a notice sent later, or every day."""

    keyword: ClassVar[str] = "定时通知"
    when: When
    daily: bool = False
    text: str = Field(min_length=1)
    urgent: bool = False
    down_to_tier: int | None = _TIER

    @model_validator(mode="after")
    def _daily_has_no_date(self) -> ScheduleNotice:
        if self.daily and self.when.has_date:
            raise ValueError("a daily schedule has no date")
        return self


class ScheduleList(Command):
    """定时列表: the sender's scheduled notices."""

    keyword: ClassVar[str] = "定时列表"


class ScheduleCancel(Command):
    """取消定时 5: cancel a scheduled notice."""

    keyword: ClassVar[str] = "取消定时"
    schedule_id: int = _ID


# --- up the chain ----------------------------------------------------------------------------


class Feedback(Command):
    """反馈 内容: a problem or request sent up the chain."""

    keyword: ClassVar[str] = "反馈"
    text: str = Field(min_length=1)
    # Read from words other than 反馈 (投诉：…, 建议：…): where feedback is not taken (a
    # commander's 建议：… in a command group), nothing is said.
    unmarked: bool = False


class Answer(Command):
    """答复 12 内容: a commander answers a feedback ticket."""

    keyword: ClassVar[str] = "答复"
    ticket_id: int = _ID
    text: str = Field(min_length=1)


class Todo(Command):
    """待办: open feedback tickets for the sender to answer."""

    keyword: ClassVar[str] = "待办"


# --- the landlords' 12-point system ----------------------------------------------------------


class AdjustPoints(Command):
    """加分/扣分 @房东 2 原因: propose a points change (verified later by 核查)."""

    keyword: ClassVar[str] = "加分"
    target: str = Field(min_length=1)
    points: int = Field(ge=1, le=12)
    delta: int
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _delta_matches_points(self) -> AdjustPoints:
        if abs(self.delta) != self.points:
            raise ValueError("delta must be +points or -points")
        return self


class PendingChecks(Command):
    """待核查: points changes waiting for the sender's verification."""

    keyword: ClassVar[str] = "待核查"


class Verify(Command):
    """核查 12 通过 / 核查 12 驳回 理由: verify a points change."""

    keyword: ClassVar[str] = "核查"
    event_id: int = _ID
    approve: bool
    reason: str | None = None

    @model_validator(mode="after")
    def _rejection_has_reason(self) -> Verify:
        if not self.approve and not self.reason:
            raise ValueError("a rejection needs a reason")
        return self


class Score(Command):
    """积分: the sender's points and rank."""

    keyword: ClassVar[str] = "积分"


class ScoreHistory(Command):
    """积分明细: the sender's points changes."""

    keyword: ClassVar[str] = "积分明细"


class Appeal(Command):
    """申诉 12 理由: a landlord appeals a points change."""

    keyword: ClassVar[str] = "申诉"
    event_id: int = _ID
    reason: str = Field(min_length=1)


class Reward(Command):
    """奖励: the sender's reward from the points fund."""

    keyword: ClassVar[str] = "奖励"


class GoodPersonCandidates(Command):
    """好人候选: landlords repeatedly on the red list, candidates for the good-person award."""

    keyword: ClassVar[str] = "好人候选"


COMMANDS: tuple[type[Command], ...] = (
    Help, BindPerson, BindGroup, TenantReturn, Temperature, HealthMention, LandlordReport,
    MyTenants,
    SendNotice, Ack, Relay, Progress, ScheduleNotice, ScheduleList, ScheduleCancel,
    Feedback, Answer, Todo,
    AdjustPoints, PendingChecks, Verify, Score, ScoreHistory, Appeal, Reward,
    GoodPersonCandidates,
)
