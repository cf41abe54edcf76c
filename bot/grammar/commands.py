"""Typed, immutable command models that the parser produces and the handlers consume."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.pii import is_id_number, is_mobile, is_valid_temperature

__all__ = [
    "COMMANDS",
    "Arrival",
    "BindGroup",
    "BindPerson",
    "Command",
    "Help",
    "LandlordReport",
    "MyTenants",
    "ReportKind",
    "Temperature",
    "TenantReturn",
]

ReportKind = Literal["disinfect", "errand", "violation", "mediation"]

_CODE_PATTERN = r"^[A-Z0-9]{4,12}$"


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


class TenantReturn(Command):
    """租客返回: a tenant is back; landlord_form marks 房东上报 返回."""

    keyword: ClassVar[str] = "租客返回"
    name: str | None = None
    mobile: str
    origin: str | None = None
    arrival: Arrival | None = None
    temperature: float | None = None
    id_number: str | None = None
    landlord_form: bool = False

    @field_validator("mobile")
    @classmethod
    def _valid_mobile(cls, v: str) -> str:
        if not is_mobile(v):
            raise ValueError("not an 11-digit mainland mobile number")
        return v

    @field_validator("temperature")
    @classmethod
    def _valid_temperature(cls, v: float | None) -> float | None:
        if v is not None and not is_valid_temperature(v):
            raise ValueError("temperature out of range")
        return v

    @field_validator("id_number")
    @classmethod
    def _valid_id(cls, v: str | None) -> str | None:
        if v is not None:
            v = v.upper()
            if not is_id_number(v):
                raise ValueError("invalid ID number")
        return v


class Temperature(Command):
    """体温 36.6: a temperature report; a landlord may name the tenant."""

    keyword: ClassVar[str] = "体温"
    value: float
    name: str | None = None

    @field_validator("value")
    @classmethod
    def _valid_value(cls, v: float) -> float:
        if not is_valid_temperature(v):
            raise ValueError("temperature out of range")
        return v


class LandlordReport(Command):
    """房东上报: a landlord reports disinfection, an errand, a violation or a mediation."""

    keyword: ClassVar[str] = "房东上报"
    kind: ReportKind
    detail: str = ""


class MyTenants(Command):
    """我的租客: a landlord lists their tenants."""

    keyword: ClassVar[str] = "我的租客"


COMMANDS: tuple[type[Command], ...] = (
    Help, BindPerson, BindGroup, TenantReturn, Temperature, LandlordReport, MyTenants,
)
