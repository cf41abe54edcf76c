"""Personal data helpers: validate and mask mobile numbers, ID numbers, names and temperatures."""

from __future__ import annotations

import datetime
import logging
import math
import re

__all__ = [
    "TEMPERATURE_MAX",
    "TEMPERATURE_MIN",
    "MaskingFilter",
    "id_check_digit",
    "is_id_number",
    "is_mobile",
    "is_valid_temperature",
    "mask_id",
    "mask_mobile",
    "mask_name",
    "mask_text",
]

TEMPERATURE_MIN = 34.0
TEMPERATURE_MAX = 43.0

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# Free-text patterns. Digit look-arounds keep them off longer numbers (bank cards, order
# numbers); the optional separators catch the 3-4-4 and 6-8-4 groupings people type.
_TEXT_ID18 = re.compile(r"(?<![0-9])[0-9]{6}[ -]?[0-9]{8}[ -]?[0-9]{3}[0-9Xx](?![0-9])")
_TEXT_ID15 = re.compile(r"(?<![0-9])[0-9]{15}(?![0-9])")
_TEXT_MOBILE = re.compile(r"(?<![0-9])1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}(?![0-9])")
_NOT_ID_CHAR = re.compile(r"[^0-9Xx]")

# Forms of address that already hide the given name, so masking them would only confuse.
_HONORIFICS = (
    "先生", "女士", "小姐", "阿姨", "叔叔", "师傅", "老师", "大爷", "大妈", "大姐", "大哥",
    "老板", "奶奶", "爷爷", "伯伯", "婶婶", "同学", "老板娘", "姐", "哥",
)


def is_mobile(s: str) -> bool:
    """Whether s is exactly an 11-digit mainland mobile number (1[3-9] and nine digits)."""
    return isinstance(s, str) and _MOBILE.fullmatch(s) is not None


def mask_mobile(s: str) -> str:
    """Mask a mobile number as 138****8000 (separators and a +86 prefix are dropped)."""
    digits = re.sub(r"[^0-9]", "", s or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_id_number(s: str) -> bool:
    """Whether s is an 18-character resident ID with a valid check digit and birth date."""
    if not isinstance(s, str) or _ID18.fullmatch(s) is None:
        return False
    if id_check_digit(s[:17]) != s[17].upper():
        return False
    year, month, day = int(s[6:10]), int(s[10:12]), int(s[12:14])
    if not 1900 <= year <= 2099:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def mask_id(s: str) -> str:
    """Mask an ID number as 330782********1234 (15-digit old IDs keep 6 and 4 as well)."""
    chars = _NOT_ID_CHAR.sub("", s or "")
    if len(chars) < 10:
        return "*" * len(chars)
    return f"{chars[:6]}{'*' * (len(chars) - 10)}{chars[-4:]}"


def mask_name(name: str | None) -> str:
    """Mask a person's name as 王* / 欧***, leaving forms like 潘先生 or 张阿姨 unchanged."""
    if not name:
        return ""
    name = name.strip()
    if len(name) <= 1:
        return name
    if any(name.endswith(h) and len(name) > len(h) for h in _HONORIFICS):
        return name
    return name[0] + "*" * (len(name) - 1)


def mask_text(text: str) -> str:
    """Mask every mobile-like and ID-like number in free text, leaving other numbers alone."""
    if not text:
        return text or ""
    # IDs first: a masked ID can no longer be mistaken for a mobile number.
    text = _TEXT_ID18.sub(lambda m: mask_id(m.group()), text)
    text = _TEXT_ID15.sub(lambda m: mask_id(m.group()), text)
    return _TEXT_MOBILE.sub(lambda m: mask_mobile(m.group()), text)


def is_valid_temperature(x: float) -> bool:
    """Whether x is a plausible body temperature in ℃ (TEMPERATURE_MIN..TEMPERATURE_MAX)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    return math.isfinite(x) and TEMPERATURE_MIN <= x <= TEMPERATURE_MAX


class MaskingFilter(logging.Filter):
    """A logging filter that masks mobile and ID numbers in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its masked, already formatted text."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
            return True
        record.msg = mask_text(message)
        record.args = None
        return True
