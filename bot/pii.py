"""Personal data helpers: validate and mask mobile numbers, ID numbers, names and temperatures."""

from __future__ import annotations

import datetime
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TEMPERATURE_MAX",
    "TEMPERATURE_MIN",
    "INVISIBLE",
    "Found",
    "MaskingFilter",
    "MaskingFormatter",
    "digit_of",
    "find_numbers",
    "fold_digits",
    "id_check_digit",
    "is_id_number",
    "is_mobile",
    "is_valid_temperature",
    "mask_id",
    "mask_log_handlers",
    "mask_log_records",
    "mask_mobile",
    "mask_name",
    "mask_record",
    "mask_text",
    "public_numbers",
    "set_public_numbers",
]

TEMPERATURE_MIN = 34.0
TEMPERATURE_MAX = 43.0

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

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


# Free-text detection. A number may be typed with separators between its digit groups, in
# full-width, Arabic-Indic or Chinese digits, with invisible or bidi controls inside; it is
# found on the folded digit stream. Tokens are maximal runs of one kind of digit; a candidate
# starts and ends on token boundaries, so a long number (an order number, a bank card) is never
# cut into a "mobile", while 139 0579 1234 or 一三九零五七九一二三四 are found.
_CJK_DIGITS = {"零": "0", "〇": "0", "○": "0", "一": "1", "幺": "1", "二": "2", "两": "2",
               "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
               "壹": "1", "贰": "2", "叁": "3", "肆": "4", "伍": "5", "陆": "6", "柒": "7",
               "捌": "8", "玖": "9"}
# Controls that render as nothing: zero-width, bidi embeddings/overrides/isolates, BOM.
INVISIBLE = frozenset(
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
    + "".join(chr(c) for c in range(0x202A, 0x202F))
    + "".join(chr(c) for c in range(0x2066, 0x206A)))
# What people put between digit groups; at most _MAX_GAP of them between two groups (the
# four stars of a masked mobile are more, so masked text is never read as a number again).
_SEPARATORS = frozenset(" \t\n\r\u3000\u00a0\u2002\u2003\u2004\u2005\u2009"
                        ".。·_/\\()（）[]【】,，、-－—–~～+*")
_MAX_GAP = 3
_OPENERS = "(（["
_MOBILE_DIGITS = re.compile(r"1[3-9][0-9]{9}")
_public_numbers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Found:
    """A personal number found in text: its span in the original text, kind and digits."""

    start: int
    end: int
    kind: str  # "mobile" or "id"
    digits: str

    @property
    def masked(self) -> str:
        """The masked form that replaces the span."""
        return mask_mobile(self.digits) if self.kind == "mobile" else mask_id(self.digits)


@dataclass(slots=True)
class _Token:
    start: int
    end: int
    digits: str
    kind: str
    gap_before: int  # separator characters between this token and the previous one (-1: none)


def digit_of(ch: str) -> str | None:
    """The ASCII digit a character stands for (any Unicode decimal digit, Chinese numerals)."""
    if "0" <= ch <= "9":
        return ch
    if ch in _CJK_DIGITS:
        return _CJK_DIGITS[ch]
    value = unicodedata.decimal(ch, None)
    return None if value is None else str(value)


def fold_digits(text: str) -> str:
    """Every digit form as ASCII and invisible controls dropped (other characters kept)."""
    return "".join(d if (d := digit_of(c)) is not None else c
                   for c in text if c not in INVISIBLE)


def set_public_numbers(numbers: Iterable[str]) -> None:
    """Numbers that may appear unmasked (a public hotline), in any spelling."""
    global _public_numbers
    _public_numbers = frozenset(
        d for n in numbers
        if (d := "".join(x for c in n if (x := digit_of(c) or ("X" if c in "Xx" else None)))))
    _CLEAN.clear()  # a text was clean with the old numbers


def public_numbers() -> frozenset[str]:
    """The configured public numbers, as folded digits."""
    return _public_numbers


_ANY_DIGIT = re.compile("[\\d" + "".join(_CJK_DIGITS) + "]")
# The characters _tokens looks at one by one; runs of anything else only break a number.
_INTERESTING = re.compile("[\\dXx" + re.escape("".join(_CJK_DIGITS) + "".join(_SEPARATORS)
                                                 + "".join(INVISIBLE)) + "]")


def _tokens(text: str) -> list[list[_Token]]:
    """Chains of digit tokens joined by short separator gaps."""
    chains: list[list[_Token]] = []
    chain: list[_Token] = []
    cur: _Token | None = None
    gap = -1  # separators since the last token; -1 when there is no chain to continue

    def close() -> None:
        nonlocal chain
        if chain:
            chains.append(chain)
        chain = []

    last = 0
    for m in _INTERESTING.finditer(text):
        i = m.start()
        if i > last:
            # Characters that are neither digits nor separators end any number.
            if cur is not None:
                chain.append(cur)
                cur = None
            close()
            gap = -1
        last = i + 1
        ch = text[i]
        if ch in INVISIBLE:
            continue
        d = digit_of(ch)
        if d is None and ch in "Xx" and cur is not None \
                and not cur.digits.endswith("X"):
            # The check character of an ID number; it ends the token.
            cur.digits += "X"
            cur.end = i + 1
            continue
        if d is None and ch in "Xx" and cur is None and chain and gap > 0:
            cur = _Token(i, i + 1, "X", "dec", gap)  # 110105 19491231 002 X
            gap = 0
            continue
        if d is not None:
            kind = "cjk" if ch in _CJK_DIGITS else "dec"
            if cur is not None and not cur.digits.endswith("X") and cur.kind == kind:
                cur.digits += d
                cur.end = i + 1
                continue
            if cur is not None:
                chain.append(cur)
                if cur.digits.endswith("X"):
                    close()
            elif gap < 0:
                close()
            cur = _Token(i, i + 1, d, kind, gap if gap >= 0 else 0)
            gap = 0
            continue
        if cur is not None:
            chain.append(cur)
            cur = None
            gap = 0
        if ch in _SEPARATORS and 0 <= gap < _MAX_GAP:
            gap += 1
            continue
        close()
        gap = -1
    if cur is not None:
        chain.append(cur)
    close()
    return chains


def _candidate(tokens: list[_Token]) -> tuple[str, str] | None:
    """(kind, digits) of the personal number these consecutive tokens spell, if any (a final
    X that does not complete an ID is a letter after the number)."""
    spelled = "".join(t.digits for t in tokens)
    if "X" in spelled[:-1]:
        return None
    single = len(tokens) == 1 and tokens[0].kind == "dec"
    for digits in dict.fromkeys((spelled, spelled.removesuffix("X"))):
        if len(digits) == 18 and (single or is_id_number(digits)
                                  or [len(t.digits) for t in tokens] == [6, 8, 4]):
            return "id", digits
        if "X" in digits:
            continue
        if single and len(digits) == 15:
            return "id", digits
        if len(digits) == 11 and (_MOBILE_DIGITS.fullmatch(digits)
                                  or (single and digits[0] == "1")):
            return "mobile", digits
        if single and len(digits) == 13 and digits.startswith("86") \
                and _MOBILE_DIGITS.fullmatch(digits[2:]):
            return "mobile", digits[2:]
    return None


def _windows(chain: list[_Token], strict: bool) -> list[tuple[int, int, str, str]]:
    """(first, last, kind, digits) of the numbers in one chain of tokens, left to right.
    strict: only valid ID numbers (date and check character), which beat everything else."""
    # A group that is a number by itself is never swallowed into a longer one.
    alone = [not strict and (got := _candidate([t])) is not None and len(got[1]) != 15
             for t in chain]
    hits: list[tuple[int, int, str, str]] = []
    i = 0
    while i < len(chain):
        hit: tuple[int, int, str, str] | None = None
        total = 0
        for j in range(i, len(chain)):
            total += len(chain[j].digits)
            if total > 19 or (j > i and (alone[i] or alone[j])):
                break
            if strict:
                digits = "".join(t.digits for t in chain[i:j + 1])
                if len(digits) == 18 and is_id_number(digits):
                    hit = (i, j, "id", digits)
                    break
                continue
            got = _candidate(chain[i:j + 1])
            if got is not None:
                hit = (i, j, *got)
                if got[0] == "id":
                    break
        if hit is None:
            i += 1
            continue
        hits.append(hit)
        i = hit[1] + 1
    return hits


def find_numbers(text: str, *, public: Iterable[str] | None = None) -> list[Found]:
    """Mobile and ID numbers in free text, however they are spelled (public numbers excepted)."""
    if not text or not _ANY_DIGIT.search(text):
        return []
    allowed = _public_numbers if public is None else frozenset(public)
    found: list[Found] = []
    for chain in _tokens(text):
        if sum(len(t.digits) for t in chain) < 11:
            continue  # too few digits for any personal number
        hits = _windows(chain, strict=True)
        rest: list[tuple[int, int, str, str]] = []
        last = 0
        for first, end, _kind, _digits in [*hits, (len(chain), len(chain), "", "")]:
            rest.extend((last + a, last + b, kind, digits)
                        for a, b, kind, digits in _windows(chain[last:first], strict=False))
            last = end + 1
        for i, j, kind, digits in sorted([*hits, *rest]):
            start, end = chain[i].start, chain[j].end
            if chain[j].digits.endswith("X") and not digits.endswith("X"):
                end -= 1  # 13800138000x: the x was a letter after the number
            if digits in allowed:
                continue
            # (139)0579 1234: the bracket goes with the number it opened (and an invisible
            # control between them too).
            opener = start
            while opener > 0 and text[opener - 1] in INVISIBLE:
                opener -= 1
            if opener > 0 and text[opener - 1] in _OPENERS and j > i:
                start = opener - 1
            found.append(Found(start, end, kind, digits))
    return found


# Texts mask_text lately found nothing to mask in: a notice's text is masked for each of its
# thousands of sends and again for each echo (bot.services.notice.digest), 20-30 µs each.
# Only a text found clean is kept (never one holding a personal number); the set is emptied
# when full and when the public numbers change.
_CLEAN: dict[str, None] = {}
_CLEAN_MAX = 1024
_CLEAN_LONGEST = 4096  # characters


def mask_text(text: str) -> str:
    """Mask every mobile and ID number in free text, however it is spelled; other numbers, the
    configured public numbers and already masked numbers are left alone (idempotent)."""
    if not text:
        return text or ""
    if text in _CLEAN:
        return text
    for attempt in range(8):
        found = find_numbers(text)
        if not found:
            if attempt == 0 and len(text) <= _CLEAN_LONGEST:
                if len(_CLEAN) >= _CLEAN_MAX:
                    _CLEAN.clear()
                _CLEAN[text] = None
            return text
        out: list[str] = []
        last = 0
        for f in found:
            out.append(text[last:f.start])
            out.append(f.masked)
            last = f.end
        out.append(text[last:])
        text = "".join(out)
    return text


def is_valid_temperature(x: float) -> bool:
    """Whether x is a plausible body temperature in ℃ (TEMPERATURE_MIN..TEMPERATURE_MAX)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    return math.isfinite(x) and TEMPERATURE_MIN <= x <= TEMPERATURE_MAX


_TRACEBACKS = logging.Formatter()


def mask_record(record: logging.LogRecord, *, collapse: bool = False) -> logging.LogRecord:
    """Mask a log record in place: its message (args masked one by one where that suffices,
    so formatters that read the args keep working; else the formatted message replaces msg),
    its traceback (formatted now, so every handler prints the masked text) and stack info."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
        message = None
    if message is not None:
        masked = mask_text(message)
        if collapse or masked != message:
            kept = False
            args = record.args
            if not collapse and isinstance(args, tuple) and isinstance(record.msg, str) \
                    and mask_text(record.msg) == record.msg:
                record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in args)
                try:
                    kept = not find_numbers(record.getMessage())
                except Exception:  # noqa: BLE001
                    kept = False
            if not kept:
                record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = _TRACEBACKS.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    return record


class MaskingFormatter(logging.Formatter):
    """Masks the whole formatted line, traceback and stack included (wraps another formatter,
    or formats like logging.Formatter)."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, *,
                 inner: logging.Formatter | None = None):
        super().__init__(fmt, datefmt)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, masked."""
        return mask_text(self.inner.format(record) if self.inner is not None
                         else super().format(record))


class _MaskingRecordFactory:
    """Wraps the log record factory: every record is masked as it is made, whichever handler
    (the app's, python-wechaty's own, uvicorn's, a test's caplog) prints it."""

    def __init__(self, inner: Callable[..., logging.LogRecord]):
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(self.inner(*args, **kwargs))


def mask_log_records() -> None:
    """Install the masking record factory (once per process)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _MaskingRecordFactory):
        logging.setLogRecordFactory(_MaskingRecordFactory(factory))


def mask_log_handlers() -> None:
    """Mask records as they are made and wrap the formatter of every handler installed so far
    (the root's and every named logger's, python-wechaty's and uvicorn's included)."""
    mask_log_records()
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if not isinstance(handler.formatter, MaskingFormatter):
                handler.setFormatter(MaskingFormatter(inner=handler.formatter
                                                      or logging.Formatter()))


class MaskingFilter(logging.Filter):
    """A logging filter that masks mobile and ID numbers in the formatted message, the
    traceback and the stack info."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its masked, already formatted text."""
        mask_record(record, collapse=True)
        return True
