"""Chat grammar: normalise message text and parse it into typed command models."""

from bot.grammar.commands import (
    COMMANDS,
    Arrival,
    BindGroup,
    BindPerson,
    Command,
    Help,
    LandlordReport,
    MyTenants,
    ReportKind,
    Temperature,
    TenantReturn,
)
from bot.grammar.normalise import normalise
from bot.grammar.parser import ParseError, parse
from bot.grammar.usage import PROBLEMS, REPORT_KIND_LABELS, USAGE, hint, usage

__all__ = [
    "COMMANDS",
    "PROBLEMS",
    "REPORT_KIND_LABELS",
    "USAGE",
    "Arrival",
    "BindGroup",
    "BindPerson",
    "Command",
    "Help",
    "LandlordReport",
    "MyTenants",
    "ParseError",
    "ReportKind",
    "Temperature",
    "TenantReturn",
    "hint",
    "normalise",
    "parse",
    "usage",
]
