"""Enterprises and key projects: 企业登记 (一企一档), 员工登记 (一人一卡), 企业日报 and 工作卡
(每日工作卡): their typed commands, patterns and hints."""

from __future__ import annotations

import re
from typing import ClassVar, Final, Literal

from pydantic import Field, ValidationError

from bot.grammar.commands import (
    Arrival,
    Command,
    IdNumber,
    MobileNumber,
    Reading,
    TenantReturn,
)
from bot.grammar.core import STRIP, ParseError, Step, by_length, cn_int, keyword, on_plain
from bot.grammar.tenant import parse_return_args

__all__ = [
    "EXAMPLES", "PROBLEMS", "STEPS", "USAGE",
    "EnterpriseRegister", "EnterpriseReport", "WorkCard", "WorkerRegister", "parse",
]

USAGE: Final[dict[str, str]] = {
    "EnterpriseRegister": (
        "格式：企业登记 企业名称 地址:… 联络员:姓名 手机号 员工N人 车间:… 宿舍:… [已复工]，"
        "例：企业登记 华鑫针织 地址:长春路12号 联络员:孙涛 13905791234 员工120人 "
        "车间:一车间、二车间 宿舍:一号宿舍 已复工"),
    "WorkerRegister": (
        "格式：员工登记 姓名 手机号 来自哪里 [返岗日期] [车间/宿舍] [身份证号] "
        "[居家观察/隔离/解除隔离]，"
        "例：员工登记 张伟 13905790001 来自安徽阜阳 2月18日 一车间 居家观察"),
    "EnterpriseReport": (
        "格式：企业日报 在岗N 返岗N 隔离N 异常N，例：企业日报 在岗120 返岗3 隔离2 异常0"),
    "WorkCard": (
        "格式：工作卡 在场N 新进N 异常N [问题:…]，例：工作卡 在场85 新进5 异常0 问题:口罩缺200个"),
}
PROBLEMS: Final[dict[str, str]] = {
    "name_missing": "缺少企业名称",
    "status_conflict": "复工状态只能写一个（已复工、已备案或未复工）",
    "headcount_invalid": "员工人数应为0到100000之间的整数",
    "count_missing": "缺少{field}人数",
    "count_twice": "{field}写了两次",
    "count_invalid": "{field}人数应为0到100000之间的整数",
    "health_conflict": "居家观察、隔离和解除隔离只能写一个",
}

Status = Literal["closed", "filed", "reopened"]
_MAX = 100_000


class EnterpriseRegister(Command):
    """企业登记 名称 …: open or update an enterprise's file (一企一档)."""

    keyword: ClassVar[str] = "企业登记"
    name: str | None = Field(default=None, min_length=2, max_length=100)
    address: str | None = Field(default=None, max_length=200)
    liaison: str | None = Field(default=None, min_length=1, max_length=100)
    mobile: MobileNumber | None = None
    headcount: int | None = Field(default=None, ge=0, le=_MAX)
    workshops: tuple[str, ...] = ()
    dorms: tuple[str, ...] = ()
    status: Status | None = None


class WorkerRegister(Command):
    """员工登记 姓名 手机号 来自…: a worker's card (一人一卡), by the enterprise's liaison."""

    keyword: ClassVar[str] = "员工登记"
    name: str = Field(min_length=1, max_length=100)
    mobile: MobileNumber
    origin: str | None = None
    arrival: Arrival | None = None
    temperature: Reading | None = None
    id_number: IdNumber | None = None
    groups: tuple[str, ...] = ()
    watch: bool = False
    isolated: bool = False
    # 解除隔离 / 解除观察 / 恢复正常: the card's isolation, home watch and fever flag end.
    cleared: bool = False


class EnterpriseReport(Command):
    """企业日报 在岗N 返岗N 隔离N 异常N: the liaison's daily report."""

    keyword: ClassVar[str] = "企业日报"
    on_duty: int = Field(ge=0, le=_MAX)
    returned: int = Field(ge=0, le=_MAX)
    isolated: int = Field(ge=0, le=_MAX)
    anomalies: int = Field(ge=0, le=_MAX)
    # Said without 企业日报 (今日在岗118人，返岗2人…): refused silently in other groups.
    unmarked: bool = False


class WorkCard(Command):
    """工作卡 在场N 新进N 异常N 问题:…: a key project's daily work card (每日工作卡)."""

    keyword: ClassVar[str] = "工作卡"
    on_site: int = Field(ge=0, le=_MAX)
    arrivals: int = Field(ge=0, le=_MAX)
    anomalies: int = Field(ge=0, le=_MAX)
    problems: str = Field(default="", max_length=500)
    # Said without 工作卡 (今日在场80人，新进场3人，无异常): refused silently in other groups.
    unmarked: bool = False


def _error(command: str, problem: str, **values: str) -> ParseError:
    text = PROBLEMS.get(problem, problem).format(**values)
    return ParseError(command, f"{text}。{USAGE[command]}")


def _build(cls: type[Command], **values: object) -> Command:
    try:
        return cls(**values)
    except ValidationError as exc:
        raise _error(cls.__name__, "格式不正确") from exc


# --- counted fields: 在岗120, 在岗:120人, 在岗 一百 ------------------------------------------

# The whole number is taken (一百二十 is refused, never read as 一).
_COUNT = r"\s*:?\s*(?P<n>[0-9]+(?:\.[0-9]+)?|[一二两三四五六七八九十百千万零〇]+)\s*(?:人|名|个)?"


def _counts(text: str, fields: dict[str, tuple[str, ...]], command: str
            ) -> tuple[dict[str, int], str]:
    """Each field's number (a field written twice is an error), and the text left over."""
    out: dict[str, int] = {}
    for field, words in fields.items():
        pattern = re.compile(f"(?:{'|'.join(by_length(*words))})" + _COUNT)
        found = list(pattern.finditer(text))
        label = words[0]
        if not found:
            raise _error(command, "count_missing", field=label)
        if len(found) > 1:
            raise _error(command, "count_twice", field=label)
        value = cn_int(found[0].group("n"))
        if value is None or value > _MAX:
            raise _error(command, "count_invalid", field=label)
        out[field] = value
        text = text[: found[0].start()] + " " + text[found[0].end():]
    return out, text


_REPORT_FIELDS = {
    "on_duty": ("在岗", "在职", "上岗", "到岗"),
    "returned": ("返岗", "今日返岗", "新返岗", "返回"),
    "isolated": ("隔离", "居家观察", "观察"),
    "anomalies": ("异常", "体温异常", "发热"),
}
_CARD_FIELDS = {
    "on_site": ("在场", "在岗", "到岗", "在场人数"),
    "arrivals": ("新进", "新到", "新增", "新进场"),
    "anomalies": ("异常", "体温异常", "发热"),
}
_REPORT_WORDS = by_length("企业日报", "企业报表", "今日企业日报", "今天企业日报")
_CARD_WORDS = by_length("工作卡", "每日工作卡", "今日工作卡", "今天工作卡", "项目工作卡")
_PROBLEM = re.compile(r"(?:问题|困难|需协调|需要协调|需解决|缺少物资|物资)\s*:?\s*(?P<p>.*)$")


# 无异常, 均正常: no anomaly, said in words.
_NO_ANOMALY = re.compile(r"(?:无|没有)(?:体温)?(?:异常|发热)|(?:均|都|全部|一切)正常")
# What may be left of a report said without its keyword once its counts are taken.
_REPORT_LEFT = re.compile(r"[\s,.;:!。，、]*(?:(?:今日|今天|本日)[\s,.;:]*)?[\s,.;:!。，、]*")


def _without_keyword(text: str, cls: type[Command], fields: dict[str, tuple[str, ...]]
                     ) -> Command | None:
    """今日在岗118人，返岗2人，隔离3人，无异常: every count of the report said, its keyword left
    out; anything else in the text and it is not such a report."""
    if not any(word in text for word in next(iter(fields.values()))):
        return None  # every message passes here: most at this one look
    if _NO_ANOMALY.search(text) and not re.search("(?:异常|发热)" + _COUNT, text):
        text = _NO_ANOMALY.sub(" 异常0 ", text)
    try:
        counts, left = _counts(text, fields, cls.__name__)
    except ParseError:
        return None
    if not _REPORT_LEFT.fullmatch(left):
        return None
    return _build(cls, unmarked=True, **counts)


def _parse_report(text: str) -> Command | None:
    found = keyword(text, _REPORT_WORDS)
    if found is None:
        return _without_keyword(text, EnterpriseReport, _REPORT_FIELDS)
    if not found[1]:
        return None
    counts, _rest = _counts(found[0], _REPORT_FIELDS, "EnterpriseReport")
    return _build(EnterpriseReport, **counts)


def _parse_card(text: str) -> Command | None:
    found = keyword(text, _CARD_WORDS)
    if found is None:
        return _without_keyword(text, WorkCard, _CARD_FIELDS)
    if not found[1]:
        return None
    rest = found[0]
    problems = ""
    m = _PROBLEM.search(rest)
    if m is not None:
        problems, rest = m.group("p").strip(STRIP + " "), rest[: m.start()]
    counts, left = _counts(rest, _CARD_FIELDS, "WorkCard")
    # 缺口罩200个 written without 问题: is a shortage, i.e. a problem to solve.
    short = re.search(r"缺\S.*$", left)
    if short is not None and not problems:
        problems = short.group().strip(STRIP + " ")
    return _build(WorkCard, problems=problems, **counts)


# --- 企业登记 --------------------------------------------------------------------------------

_ENTERPRISE_WORDS = by_length("企业登记", "企业备案", "一企一档", "企业建档")
_LABELS = {
    "address": ("地址", "企业地址", "厂址"),
    "liaison": ("联络员", "联系人", "负责人"),
    "workshops": ("车间", "班组"),
    "dorms": ("宿舍",),
    "name": ("名称", "企业名称", "企业名"),
}
_LABEL_OF = {w: k for k, words in _LABELS.items() for w in words}
_LABEL = re.compile(f"(?P<label>{'|'.join(by_length(*_LABEL_OF))})\\s*:\\s*")
_STATUS_WORDS = {"已复工": "reopened", "复工": "reopened", "已开工": "reopened",
                 "已备案": "filed", "备案": "filed", "待复工": "filed",
                 "未复工": "closed", "停工": "closed", "未开工": "closed"}
_STATUS = re.compile(f"(?<![\u4e00-\u9fff])(?:{'|'.join(by_length(*_STATUS_WORDS))})"
                     f"(?![\u4e00-\u9fff])")
_HEADCOUNT = re.compile(r"(?:员工人数|员工|职工|人数|工人)\s*:?\s*(?P<n>[0-9]{1,9})\s*(?:人|名)?"
                        r"|(?<![0-9])(?P<m>[0-9]{1,9})\s*(?:人|名)")
_MOBILE = re.compile(r"(?:手机|电话)?\s*:?\s*(?<![0-9])(?P<v>1[0-9]{10})(?![0-9])")
_LIST_SPLIT = re.compile(r"[、,;/\s]+")


def _parse_enterprise(text: str) -> Command | None:
    found = keyword(text, _ENTERPRISE_WORDS)
    if found is None or not found[1]:
        return None
    rest = found[0]
    values: dict[str, object] = {}
    statuses = {_STATUS_WORDS[m.group()] for m in _STATUS.finditer(rest)}
    if len(statuses) > 1:
        raise _error("EnterpriseRegister", "status_conflict")
    if statuses:
        values["status"] = statuses.pop()
        rest = _STATUS.sub(" ", rest)
    mobiles = list(_MOBILE.finditer(rest))
    if mobiles:
        values["mobile"] = mobiles[0].group("v")
        rest = _MOBILE.sub(" ", rest)
    head = _HEADCOUNT.search(rest)
    if head is not None:
        n = int(head.group("n") or head.group("m"))
        if n > _MAX:
            raise _error("EnterpriseRegister", "headcount_invalid")
        values["headcount"] = n
        rest = rest[: head.start()] + " " + rest[head.end():]
    labels = list(_LABEL.finditer(rest))
    lead = rest[: labels[0].start()] if labels else rest
    for i, m in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(rest)
        field = _LABEL_OF[m.group("label")]
        value = rest[m.end():end].strip(STRIP + " ")
        if field in ("workshops", "dorms"):
            values[field] = tuple(v for v in _LIST_SPLIT.split(value) if v)
        elif value:
            values[field] = value
    lead = lead.strip(STRIP + " ")
    if lead and "name" not in values:
        values["name"] = lead.split()[0]
    return _build(EnterpriseRegister, **values)


# --- 员工登记 --------------------------------------------------------------------------------

_WORKER_WORDS = by_length("员工登记", "职工登记", "工人登记", "一人一卡", "员工建卡", "新员工",
                          "新员工登记", "新进员工")
# A group is one field: 员工登记：赵刚，139…，河南商丘，一车间 must not take the mobile with it.
_GROUP_TOKEN = re.compile(
    r"(?:车间|宿舍|班组)\s*:\s*(?P<v>[^\s,;:]+)|(?P<w>[^\s,;:]{1,12}(?:车间|宿舍|班组))")
_MENTION = re.compile(r"@\S+")
_CLEARED = re.compile(r"解除(?:隔离|观察|居家观察)|恢复正常|已康复")
_WATCH = re.compile(r"居家观察|居家隔离|健康观察")
_ISOLATED = re.compile(r"(?:集中)?隔离(?:中)?")
_RETURN_WORD = re.compile(r"(?:返岗|返厂|返回|回厂)(?:日期|时间)?")


def _parse_worker(text: str) -> Command | None:
    found = keyword(text, _WORKER_WORDS)
    if found is None or not found[1]:
        return None
    rest = _MENTION.sub(" ", found[0])
    groups = []
    for m in _GROUP_TOKEN.finditer(rest):
        groups.append(m.group("v") or m.group("w"))
    rest = _GROUP_TOKEN.sub(" ", rest)
    cleared = _CLEARED.search(rest) is not None
    rest = _CLEARED.sub(" ", rest)
    watch = _WATCH.search(rest) is not None
    rest = _WATCH.sub(" ", rest)
    isolated = _ISOLATED.search(rest) is not None
    rest = _ISOLATED.sub(" ", rest)
    if watch + isolated + cleared > 1:
        raise _error("WorkerRegister", "health_conflict")
    rest = _RETURN_WORD.sub(" ", rest)
    try:
        parsed = parse_return_args(rest, announce=False, landlord=True)
    except ParseError as exc:
        # The tenant's hint names the problem; the form shown is the worker's.
        problem = exc.hint.split("。", 1)[0].replace("租客", "员工")
        raise _error("WorkerRegister", problem) from None
    assert isinstance(parsed, TenantReturn)
    return _build(WorkerRegister, name=parsed.name, mobile=parsed.mobile, origin=parsed.origin,
                  arrival=parsed.arrival, temperature=parsed.temperature,
                  id_number=parsed.id_number, groups=tuple(groups), watch=watch,
                  isolated=isolated, cleared=cleared)


def parse(text: str) -> Command | None:
    """One of the unit commands, None when the text is none of them."""
    for func in (_parse_enterprise, _parse_worker, _parse_report, _parse_card):
        result = func(text)
        if result is not None:
            return result
    return None


# Early: each starts with its own keyword, and a worker's card holds a mobile and 返回 that
# the tenants' keyword-less return would otherwise take.
STEPS = (Step(5, on_plain(parse)),)
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("企业登记 华鑫针织 地址:长春路12号 联络员:孙涛 13905791234 员工120人 已复工",
     EnterpriseRegister),
    ("员工登记 张伟 13905790001 来自安徽阜阳 2月18日返岗 一车间", WorkerRegister),
    ("企业日报 在岗120 返岗3 隔离2 异常0", EnterpriseReport),
    ("工作卡 在场85 新进5 异常0 问题：口罩缺200个", WorkCard),
)
