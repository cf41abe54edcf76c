"""The shared core of the grammar: errors, separators, keywords, names, places, numbers, ids."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from bot.grammar.commands import Command
from bot.grammar.usage import hint


class ParseError(Exception):
    """The text is meant as a command but its arguments are wrong; `hint` says how to fix it."""

    def __init__(self, command: str, hint: str) -> None:
        super().__init__(hint)
        self.command = command
        self.hint = hint

    @classmethod
    def of(cls, command: str, problem: str) -> ParseError:
        """Build the error for a command class name and a usage.PROBLEMS key."""
        return cls(command, hint(command, problem))


# --- shared vocabulary -----------------------------------------------------------------------

HAN = "\u4e00-\u9fff"
# Characters that may separate a keyword from its arguments.
SEPARATORS = " ,:;。!?~/|()[]【】<>《》\"'“”‘’…"
STRIP = SEPARATORS + "-—.·"
SPLIT = re.compile(r"[\s,:;。!?~/|()\[\]【】<>《》\"'“”‘’…]+")
END_PUNCT = r"[?!。.~]*"

TIME_WORDS = (
    "今天", "今日", "今早", "今晨", "今晚", "昨天", "昨日", "昨晚", "前天", "前日", "前晚",
    "明天", "凌晨", "清晨", "早上", "早晨", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "半夜",
)
# Words that occur in commands and chat but never in a person's name.
NOT_NAME_PARTS = TIME_WORDS + (
    "电话", "手机", "号码", "来自", "体温", "测温", "租客", "房东", "房客", "返回", "回来", "登记",
    "身份", "义乌", "姓名", "名字", "到达", "抵达", "老家", "时间", "地址", "消毒", "上报", "大家",
    "谢谢", "收到", "正常", "什么", "怎么", "我", "你", "他们", "吗", "呢", "吧", "了", "的",
    "烧", "咳", "有点", "一下", "没有", "各位", "好", "十", "度", "打卡", "巡查",
)
NOT_PLACE_PARTS = TIME_WORDS + (
    "电话", "手机", "体温", "测温", "租客", "房东", "登记", "身份证", "谢谢", "收到", "我", "你",
    "吗", "呢", "吧", "什么", "怎么", "姓名", "名字",
)
HONORIFIC = re.compile(
    f"[{HAN}]{{1,2}}(?:先生|女士|小姐|阿姨|叔叔|师傅|老师|大爷|大妈|大姐|大哥|老板|老板娘|"
    "奶奶|爷爷|伯伯|婶婶|同学)"
)
PLAIN_NAME = re.compile(f"[{HAN}]{{2,4}}|[{HAN}]{{1,6}}·[{HAN}]{{1,8}}")
PLACE = re.compile(f"[{HAN}]{{2,20}}")
PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
    "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港",
    "澳门",
)
PLACE_SUFFIXES = "省市县区州镇乡村旗盟"


def is_name(s: str) -> bool:
    """Whether s reads as a person's name (2–4 Chinese characters, or 潘先生-style)."""
    if any(part in s for part in NOT_NAME_PARTS):
        return False
    return PLAIN_NAME.fullmatch(s) is not None or HONORIFIC.fullmatch(s) is not None


def is_place(s: str) -> bool:
    """Whether s can be a place name (Chinese characters, no chat or time words)."""
    return PLACE.fullmatch(s) is not None and not any(p in s for p in NOT_PLACE_PARTS)


def looks_like_place(s: str) -> bool:
    """Whether s is clearly a place rather than a name (province, 市/县/区 suffix, long)."""
    return is_place(s) and (
        s.startswith(PROVINCES) or s[-1] in PLACE_SUFFIXES or len(s) >= 5
    )


def keyword(text: str, keywords: tuple[str, ...]) -> tuple[str, bool] | None:
    """If text starts with a keyword: (arguments, whether they are set apart from it)."""
    for kw in keywords:
        if text[: len(kw)].lower() == kw:
            rest = text[len(kw):]
            # Mobile users glue arguments to the keyword: 体温36.6, 绑定A7K2Q9.
            apart = not rest or rest[0] in SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
            return rest.strip(STRIP), apart
    return None


def fuzzy_keyword(text: str, keywords: tuple[str, ...]) -> tuple[str, bool] | None:
    """Like keyword(), and also with one character mistyped (房东上抱, 租客反回).

    Only keywords of four characters or more, and never their first character: a short word
    with a typo is another word, and a wrong first character changes what the text is about.
    """
    found = keyword(text, keywords)
    if found is not None:
        return found
    for kw in keywords:
        head = text[: len(kw)]
        if len(kw) < 4 or len(head) < len(kw) or head[0] != kw[0]:
            continue
        if sum(a != b for a, b in zip(head, kw, strict=True)) == 1:
            return keyword(kw + text[len(kw):], (kw,))
    return None


def by_length(*words: str) -> tuple[str, ...]:
    """Keywords longest first, so 绑定群 wins over 绑定."""
    return tuple(sorted(words, key=len, reverse=True))


DIGIT = re.compile(r"[0-9]", re.ASCII)
# A question is no command: 答复了吗? 通知大家了吗.
QUESTION = re.compile(r"(?:\?|吗|么|呢)[!.。~]*$")
UNIT = r"(?:°C|°c|℃|度|°|C|c)"

# --- shared helpers of the newer commands ----------------------------------------------------

C = TypeVar("C", bound=Command)
CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "零": 0, "〇": 0}
CN_NUMBER = r"[一二两三四五六七八九十零〇]{1,3}"
NUMBER = r"[0-9]{1,9}"
# Separators that set a keyword apart from free text (notices, feedback): not ? or 。.
TEXT_SEPARATORS = " :,;!"


def cn_int(s: str) -> int | None:
    """A small number written in digits or Chinese numerals (一 … 九十九), or None."""
    if s.isascii() and s.isdigit():
        return int(s)
    if not s or any(c not in CN_DIGITS and c != "十" for c in s):
        return None
    if "十" not in s:
        return CN_DIGITS[s] if len(s) == 1 else None
    tens, _, units = s.partition("十")
    if "十" in units or len(tens) > 1 or len(units) > 1:
        return None
    return (CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[units] if units else 0)


def build(cls: type[C], **values: object) -> C:
    """Construct a command; a value the model refuses becomes a ParseError, never a crash."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ParseError.of(cls.__name__, "invalid") from exc


@dataclass(frozen=True, slots=True)
class Hints:
    """A family's own forms and problems (a family module keeping its hints with it): the
    ParseError for a problem, and commands built with a refused value as a hint."""

    usage: Mapping[str, str]
    problems: Mapping[str, str]

    def error(self, command: str, problem: str) -> ParseError:
        """The error for a command class name and a problem key (or text)."""
        return ParseError(command, f"{self.problems.get(problem, problem)}。{self.usage[command]}")

    def build(self, cls: type[C], **values: object) -> C:
        """Construct a command; a value the model refuses is a hint, never a crash."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise self.error(cls.__name__, self.problems.get("invalid", "格式不正确")) from exc


def set_apart(rest: str, separators: str = TEXT_SEPARATORS) -> bool:
    """Whether the text after a keyword starts a new word (or is empty)."""
    return not rest or rest[0] in separators


def leading_id(rest: str) -> tuple[int | None, str]:
    """An id at the start of the arguments (12, #12, 编号12): (id or None, what follows)."""
    m = re.match(r"(?:编号|no\.?)?\s*#?\s*([0-9]{1,9})(?![0-9])", rest, re.ASCII | re.IGNORECASE)
    if m is None:
        return None, rest
    return int(m.group(1)), rest[m.end():].lstrip(STRIP).strip()


def id_or_error(value: int | None, command: str, missing: str) -> int:
    """A positive id, or the ParseError for a missing or zero one."""
    if value is None:
        raise ParseError.of(command, missing)
    if value < 1:
        raise ParseError.of(command, "number_invalid")
    return value



# --- decorations: emoji and WeChat's emoji codes ---------------------------------------------

# WeChat writes its own emoji as codes in brackets ([强], [流泪], [呲牙], [抱拳]); phones add
# Unicode emoji (😷, ✅, 👍) with their variation selectors and joiners.
EMOJI = r"(?:\[[^\[\]\s0-9]{1,6}\]|[\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff\ufe0f\u20e3])"
_EMOJI_RUN = re.compile(EMOJI + "+")
_EDGE_EMOJI = re.compile(r"^(?:\s*" + EMOJI + r")+\s*|\s*(?:" + EMOJI + r"\s*)+$")
_SPACES = re.compile(r"\s+")


def trim_decorations(text: str) -> str:
    """Emoji and emoji codes before and after the words dropped ([强]收到 -> 收到)."""
    return _EDGE_EMOJI.sub("", text).strip()


def plain(text: str) -> str:
    """Every emoji and emoji code dropped (a gap where one stood between words)."""
    def gap(m: re.Match[str]) -> str:
        before = text[m.start() - 1] if m.start() else " "
        after = text[m.end()] if m.end() < len(text) else " "
        return " " if before.isalnum() and after.isalnum() else ""
    return _SPACES.sub(" ", _EMOJI_RUN.sub(gap, text)).strip()


# --- the steps of parsing ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One message as the families read it."""

    raw: str  # normalised text (a quoted notice's tag still at its end)
    text: str  # without the quoted notice's tag, emoji trimmed from both ends
    plain: str  # text without any emoji
    quoted: int | None  # the notice a reply quotes (its tag), if any
    # The text began with @mentions of other people, dropped to read it again (@刘芳 积分).
    addressed: bool = False


Parser = Callable[[Message], Command | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One parser of a family and where it runs among all families' steps (lower first)."""

    order: int
    parse: Parser


def on_text(func: Callable[[str], Command | None]) -> Parser:
    """A parser of free text (emoji kept inside, e.g. a notice's content)."""
    return lambda m: func(m.text)


def on_plain(func: Callable[[str], Command | None]) -> Parser:
    """A parser of words and numbers (emoji anywhere dropped)."""
    return lambda m: func(m.plain)


def fixed(order: int, pattern: re.Pattern[str], cls: type[Command]) -> Step:
    """A step for a command that is one fixed phrase (帮助, 积分, 待办)."""
    return Step(order, lambda m: cls() if pattern.fullmatch(m.plain) else None)
