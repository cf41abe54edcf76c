"""Shop rows and the numbers: 打卡/巡查 (a captain's daily check-in), 复工登记/复工确认/复工审核/
复工列表 (reopening), 统计 (a subtree's figures): their typed commands, patterns and hints."""

from __future__ import annotations

import re
from typing import ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.grammar.commands import Command
from bot.grammar.core import (
    HAN,
    QUESTION,
    STRIP,
    Hints,
    Step,
    cn_int,
    is_name,
    keyword,
    on_plain,
    on_text,
)
from bot.pii import is_mobile, is_valid_temperature

__all__ = [
    "EXAMPLES", "PROBLEMS", "STEPS", "USAGE",
    "BareCheckin", "ReopenConfirm", "ReopenList", "ReopenRegister", "ReopenReview",
    "ShopCheckin", "ShopEntry", "Stats",
]

USAGE: Final[dict[str, str]] = {
    "ShopCheckin": (
        "格式：巡查 巡查家数 营业家数 情况，或逐店写：3号 开门 2人 36.5 36.7，"
        "例：巡查 10家 营业3家 无异常；今日巡查：1号、2号开门，员工体温正常，已消毒"
    ),
    "ReopenRegister": (
        "格式：复工登记 商位 店主姓名 手机号 员工N人 外地返回N人 消毒用品 已承诺，"
        "例：复工登记 3号商位 张伟 13800000000 员工4人 外地返回1人 消毒液口罩已备 已承诺"
    ),
    "ReopenConfirm": "格式：复工确认 编号，例：复工确认 3",
    "ReopenReview": (
        "格式：复工审核 编号 通过，或 复工审核 编号 驳回 原因，例：复工审核 3 驳回 消毒用品不足"
    ),
    "ReopenList": "格式：复工列表",
    "Stats": "格式：统计（本级及以下），或 统计 下级名称，例：统计 长春社区",
}
PROBLEMS: Final[dict[str, str]] = {
    "checkin_empty": "没看懂巡查情况，请写明巡查和营业家数，或逐店写开门/关门、人数和体温",
    "checkin_counts": "营业家数不能多于巡查家数",
    "shop_missing": "缺少商位（例如：3号商位）",
    "owner_missing": "缺少店主姓名",
    "mobile_missing": "缺少店主手机号，手机号应为11位，例如13800000000",
    "mobile_invalid": "手机号应为11位，以13到19开头",
    "staff_missing": "缺少员工人数（例如：员工4人）",
    "elsewhere_range": "外地返回人数不能多于员工人数",
    "commitment_missing": "请确认防疫承诺，在登记中写上“已承诺”",
    "id_missing": "缺少登记编号",
    "decision_missing": "请写明通过或驳回",
    "reason_missing": "驳回请写明原因",
    "temperature_range": "体温应在34.0到43.0℃之间",
    "invalid": "格式不正确",
}


_HINTS = Hints(USAGE, PROBLEMS)
_error = _HINTS.error
_build = _HINTS.build


# --- commands ------------------------------------------------------------------------------


class ShopEntry(BaseModel):
    """What a check-in says of one shop (`shop` as written: 3号, 3号商位)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    shop: str = Field(min_length=1, max_length=40)
    is_open: bool | None = None
    staff: int | None = Field(default=None, ge=0, le=999)
    readings: tuple[float, ...] = ()
    disinfected: bool | None = None

    @field_validator("readings")
    @classmethod
    def _plausible(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not is_valid_temperature(x) for x in v):
            raise ValueError("temperature out of range")
        return v


class ShopCheckin(Command):
    """打卡/巡查: the captain's check-in of the day, for the row and per shop."""

    keyword: ClassVar[str] = "巡查"
    entries: tuple[ShopEntry, ...] = ()
    checked: int | None = Field(default=None, ge=0, le=999)
    opened: int | None = Field(default=None, ge=0, le=999)
    closed: int | None = Field(default=None, ge=0, le=999)
    staff: int | None = Field(default=None, ge=0, le=9999)
    # Readings written for the row as a whole (员工体温 36.5 36.8), not tied to a shop.
    readings: tuple[float, ...] = ()
    staff_normal: bool = False  # 员工体温正常
    disinfected: bool | None = None
    fever_said: bool = False  # 发烧/发热 written, not denied
    problems: str = Field(default="", max_length=500)


class BareCheckin(ShopCheckin):
    """3号 开门 2人 36.5 36.7: a check-in line with no keyword (quiet outside shop rows)."""


class ReopenRegister(Command):
    """复工登记: a shop asks to reopen."""

    keyword: ClassVar[str] = "复工登记"
    shop: str = Field(min_length=1, max_length=40)
    owner: str = Field(min_length=1, max_length=40)
    mobile: str
    staff: int = Field(ge=0, le=9999)
    from_elsewhere: int = Field(default=0, ge=0, le=9999)
    supplies: str = Field(default="", max_length=100)
    committed: bool

    @field_validator("mobile")
    @classmethod
    def _valid_mobile(cls, v: str) -> str:
        if not is_mobile(v):
            raise ValueError("not an 11-digit mainland mobile number")
        return v


class ReopenConfirm(Command):
    """复工确认 N: the captain confirms a registration (on to the community)."""

    keyword: ClassVar[str] = "复工确认"
    registration_id: int = Field(ge=1)


class ReopenReview(Command):
    """复工审核 N 通过 / 复工审核 N 驳回 原因: the community decides."""

    keyword: ClassVar[str] = "复工审核"
    registration_id: int = Field(ge=1)
    approve: bool
    reason: str = Field(default="", max_length=200)


class ReopenList(Command):
    """复工列表: pending and approved shops under this group."""

    keyword: ClassVar[str] = "复工列表"


class Stats(Command):
    """统计 [名称]: the figures of this node's subtree (or of a named node below)."""

    keyword: ClassVar[str] = "统计"
    node: str | None = Field(default=None, max_length=100)


# --- check-ins -----------------------------------------------------------------------------

_CHECKIN_KEYWORDS = ("铺长打卡", "巡查打卡", "今日巡查", "今天巡查", "每日巡查", "商铺巡查",
                     "巡查情况", "今日打卡", "今天打卡", "每日打卡", "打卡", "巡查")
_SHOP = re.compile(r"(?P<n>[0-9]{1,3})\s*号(?P<kind>商位|商铺|店铺|门店|店|铺|档口|摊位)?",
                   re.ASCII)
_CLOSED = re.compile(r"关门|未开门?|没开门?|没有开门?|闭店|歇业|停业|未营业|没营业|休息|关")
_OPEN = re.compile(r"开门|营业|开业|已开|在营|开")
_STAFF = re.compile(r"(?:员工|店员|人员|在岗)?\s*"
                    r"(?P<n>[0-9]{1,3}|[一二两三四五六七八九十]{1,3})\s*"
                    r"(?:个人|人|名)")
_READING = re.compile(r"(?<![0-9.])(?P<v>[0-9]{2}(?:[.。][0-9]))(?![0-9])\s*(?:℃|°C|°|度)?")
_NUM = r"(?:[0-9]{1,3}|[一二两三四五六七八九十]{1,3})"
_UNIT = r"(?:家|户|间|个)"
# The words of a row's shops' state, one list each for every pattern below.
_OPEN_WORD = r"(?:营业|开门|开业|已开|开着)"
_SHUT_WORD = r"(?:关门|未开|没开|歇业|停业)"
# 10家营业 is ten open, 8家 营业了5家 eight checked (a number follows the word).
_CHECKED = re.compile(r"(?:巡查|检查|共计|共|走访)?\s*(?P<n>" + _NUM + r")\s*" + _UNIT
                      + r"(?!\s*(?:" + _OPEN_WORD + "|" + _SHUT_WORD + r")(?!\s*了?\s*" + _NUM
                      + "))")
# 10家营业 2家关门: a number followed by a state word is that state's, not 营业's.
_STATED = (r"\s*" + _UNIT + r"?+\s*(?:" + _SHUT_WORD + "|" + _OPEN_WORD + r")(?!\s*了?\s*"
           + _NUM + ")")
_OPENED = re.compile(_OPEN_WORD + r"了?\s*(?P<n>" + _NUM + r")(?!" + _STATED + r")\s*"
                     + _UNIT + r"?|"
                     r"(?P<m>" + _NUM + r")\s*" + _UNIT
                     + r"\s*" + _OPEN_WORD + r"(?!\s*了?\s*" + _NUM + r"(?!" + _STATED
                     + r"))")
_CLOSED_COUNT = re.compile(_SHUT_WORD + r"\s*(?P<n>" + _NUM + r")\s*" + _UNIT + r"?|"
                           r"(?P<m>" + _NUM + r")\s*" + _UNIT
                           + r"\s*" + _SHUT_WORD + r"(?!\s*" + _NUM + ")")
# 今天查了10家, 10家商铺全部巡查: the patrol said without its keyword first.
_PATROLLED = re.compile(
    r"^(?:今天|今日)?\s*(?:查了|检查了|走访了)\s*(?=" + _NUM + r"\s*家)"
    r"|^(?P<n>" + _NUM + r")\s*家\s*(?:商铺|商户|店铺|门店)?\s*(?:全部|都)?\s*(?:已经|已)?"
    r"(?:巡查|检查)(?:了|完毕|完)?")
_ALL_OPEN = re.compile(r"全部(?:营业|开门|开业)|都(?:营业|开门)了?|均已?(?:营业|开门)")
_NOT_DISINFECTED = re.compile(r"(?:未|没有?|尚未)(?:完成)?(?:消毒|消杀)")
_STAFF_NORMAL = re.compile(r"(?:员工|人员|店员)?(?:体温|测温)(?:均|都|全部)?(?:正常|合格)")
_FEVER = re.compile(r"发烧|发热|低烧|高烧")
_FEVER_DENIED = re.compile(r"(?:没有|没|不|未|无)(?:人)?(?:发烧|发热)")
_PROBLEMS = re.compile(r"(?:问题|存在问题|发现问题|异常情况|情况说明|备注)\s*[:：]?\s*(?P<p>.+)$")
_NO_PROBLEM = re.compile(r"无异常|没有异常|一切正常|无问题|没有问题|正常")
_SEGMENT_SPLIT = re.compile(r"[;；\n]+|。(?!$)")


def _number(s: str) -> int | None:
    return cn_int(s) if s else None


def _readings(text: str) -> tuple[float, ...]:
    """Decimal readings (36.5, 36。7) and 37度 forms; out-of-range values are an error."""
    out: list[float] = []
    for m in _READING.finditer(text):
        value = float(m.group("v").replace("。", "."))
        if not 30 <= value < 50:
            continue  # a price or a size, not a temperature
        if not is_valid_temperature(value):
            raise _error("ShopCheckin", "temperature_range")
        out.append(value)
    return tuple(out)


def _clause(text: str) -> dict[str, object]:
    """What one shop's clause says: open/closed, staff, readings, disinfection."""
    out: dict[str, object] = {}
    cleaned = _NOT_DISINFECTED.sub(" ", text)
    closed, opened = _CLOSED.search(cleaned), _OPEN.search(cleaned)
    # The shop's own word comes first: 3号开门 其他关门 is open (未开门 starts before 开门).
    if closed is not None and (opened is None or closed.start() <= opened.start()):
        out["is_open"] = False
    elif opened is not None:
        out["is_open"] = True
    staff = _STAFF.search(text)
    if staff is not None:
        out["staff"] = _number(staff.group("n"))
    readings = _readings(text)
    if readings:
        out["readings"] = readings
    if _NOT_DISINFECTED.search(text):
        out["disinfected"] = False
    elif re.search(r"消毒|消杀", text):
        out["disinfected"] = True
    return out


def _entries(text: str) -> tuple[list[ShopEntry], str]:
    """The shops named in the text with what each clause says; the text outside them."""
    entries: list[ShopEntry] = []
    rest_parts: list[str] = []
    for segment in _SEGMENT_SPLIT.split(text):
        marks = list(_SHOP.finditer(segment))
        if not marks:
            rest_parts.append(segment)
            continue
        rest_parts.append(segment[: marks[0].start()])
        pending: list[str] = []  # 1号、2号开门: shops that share the next clause
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(segment)
            clause = segment[m.end():end]
            shop = f"{int(m.group('n'))}号{m.group('kind') or ''}"
            if not clause.strip(STRIP + "、和及与"):
                pending.append(shop)
                continue
            own = clause
            if i + 1 == len(marks):
                # 1号、2号开门，员工体温正常: after the last shop's first comma the row speaks.
                head, sep, tail = clause.partition(",")
                if sep:
                    own = head
                    rest_parts.append(tail)
            said = _clause(own)
            if not said and re.search(f"[{HAN}]{{2}}", own):
                rest_parts.append(segment[m.start():end])  # 5号门口有人聚集: a problem
                continue
            for name in [*pending, shop]:
                entries.append(ShopEntry(shop=name, **said))  # type: ignore[arg-type]
            pending = []
        for name in pending:
            entries.append(ShopEntry(shop=name))
    return entries, " ".join(p for p in rest_parts if p.strip())


def _checkin_args(rest: str, cls: type[ShopCheckin]) -> Command | None:
    problems = ""
    m = _PROBLEMS.search(rest)
    if m is not None:
        problems = m.group("p").strip(STRIP)
        rest = rest[: m.start()]
    entries, general = _entries(rest)
    values: dict[str, object] = {"entries": tuple(entries)}
    opened = _OPENED.search(general)
    if opened is not None:
        values["opened"] = _number(opened.group("n") or opened.group("m"))
        general = general[: opened.start()] + " " + general[opened.end():]
    closed = _CLOSED_COUNT.search(general)
    if closed is not None:
        values["closed"] = _number(closed.group("n") or closed.group("m"))
        general = general[: closed.start()] + " " + general[closed.end():]
    checked = _CHECKED.search(general)
    if checked is not None:
        values["checked"] = _number(checked.group("n"))
        general = general[: checked.start()] + " " + general[checked.end():]
    if _ALL_OPEN.search(general) and values.get("checked") is not None:
        values["opened"] = values["checked"]
    if values.get("opened") is None and values.get("closed") is not None \
            and values.get("checked") is not None:
        values["opened"] = max(0, int(values["checked"]) - int(values["closed"]))  # type: ignore[call-overload]
    staff = _STAFF.search(general)
    if staff is not None:
        values["staff"] = _number(staff.group("n"))
    values["readings"] = _readings(general)
    values["staff_normal"] = bool(_STAFF_NORMAL.search(rest))
    if _NOT_DISINFECTED.search(general):
        values["disinfected"] = False
    elif re.search(r"消毒|消杀", general):
        values["disinfected"] = True
    values["fever_said"] = bool(_FEVER.search(_FEVER_DENIED.sub("", rest + problems)))
    if not problems and not _NO_PROBLEM.search(rest):
        leftover = re.sub(
            r"[0-9]+|巡查|检查|打卡|家|户|今日|今天|员工|店员|体温|测温|正常|已经|已|消毒|消杀|完成"
            r"|完毕|情况|营业|开门|关门|商铺|商户|店铺|共|人|均|都|全部|无发热|无发烧|没有发热|没人发烧"
            r"|发热|发烧|无|[" + re.escape(STRIP) + "、]", "", general)
        if len(leftover) >= 4 and re.search(f"[{HAN}]{{4}}", leftover):
            problems = general.strip(STRIP)  # what else the captain wrote is kept as said
    values["problems"] = problems
    # A reading alone is a person's own 打卡 体温36.5 (the health family reads it), unless
    # the staff are named.
    staff_readings = bool(values["readings"]) and bool(re.search("员工|店员|人员", rest))
    said = (entries or values.get("checked") is not None or values.get("opened") is not None
            or staff_readings or values["staff_normal"] or values.get("disinfected")
            is not None or problems or _NO_PROBLEM.search(rest))
    if not said and values["readings"]:
        return None
    if not said:
        raise _error("ShopCheckin", "checkin_empty")
    if (values.get("checked") is not None and values.get("opened") is not None
            and int(values["opened"]) > int(values["checked"])):  # type: ignore[call-overload]
        raise _error("ShopCheckin", "checkin_counts")
    try:
        return cls(**values)
    except ValidationError as exc:
        raise _error("ShopCheckin", "invalid") from exc


def _parse_checkin(text: str) -> Command | None:
    """打卡/巡查 + what was found, in the ordinary ways it is written."""
    patrolled = _PATROLLED.match(text)
    if patrolled is not None and not QUESTION.search(text):
        count = f"{patrolled.group('n')}家 " if patrolled.group("n") else ""
        text = f"巡查 {count}{text[patrolled.end():]}"
    found = keyword(text, _CHECKIN_KEYWORDS)
    if found is None:
        return None
    rest, apart = found
    if rest.startswith("了") and not rest.startswith("了吗"):
        rest, apart = rest[1:], True  # 今天巡查了十家
    counted = re.match(_NUM + r"\s*(?:家|户|间)", rest)  # 巡查十家: a count glued to the keyword
    if not apart and not _SHOP.match(rest) and not re.match(r"[0-9]", rest) and not counted:
        if not rest.startswith(("完毕", "完成", "结束", "情况")):
            return None  # 打卡机, 巡查组: other words
    if QUESTION.search(text):
        return None  # 打卡了吗
    if rest.startswith(("完毕", "完成", "结束")):
        rest = rest[2:].strip(STRIP)
    return _checkin_args(rest, ShopCheckin)


_BARE = re.compile(r"[0-9]{1,3}\s*号(?:商位|商铺|店铺|门店|店|铺|档口|摊位)?\s*[,、]?\s*"
                   r"(?:开门|营业|开业|已开|关门|未开|没开|闭店|歇业|停业|未营业|[0-9]{1,3}\s*号)",
                   re.ASCII)


def _parse_bare(text: str) -> Command | None:
    """3号 开门 2人 36.5 36.7 (lines of shops, no keyword)."""
    if not _BARE.match(text) or QUESTION.search(text):
        return None
    return _checkin_args(text, BareCheckin)


# --- reopening -----------------------------------------------------------------------------

_REOPEN_KEYWORDS = ("复工登记", "复工申请", "申请复工", "复工备案")
_SHOP_NAME = re.compile(
    r"(?P<shop>(?:[0-9]{1,3}\s*号(?:商位|商铺|店铺|门店|店|铺|档口|摊位)?)"
    f"|[{HAN}A-Za-z0-9]{{1,20}}(?:商位|商铺|店铺|门店|店|铺|档口|摊位|商行))"
)
_MOBILE = re.compile(r"(?<![0-9])[0-9]{6,14}(?![0-9])", re.ASCII)
_REG_STAFF = re.compile(r"(?:员工|店员|人员|共)\s*[:：]?\s*"
                        r"(?P<n>[0-9]{1,4}|[一二两三四五六七八九十]{1,3})\s*(?:人|名)?")
_ELSEWHERE = re.compile(
    r"(?:外地返回|外地返岗|外地回来|外地|返回|返岗|外省)(?:员工|人员)?\s*[:：]?\s*"
    r"(?P<n>[0-9]{1,4}|[一二两三四五六七八九十]{1,3})\s*(?:人|名)?"
    r"|(?:外地|外省)(?:返回|返岗)?\s*(?:无|没有|0)")
_SUPPLIES = re.compile(
    r"(?P<s>(?:消毒用品|防疫物资|消毒液|酒精|口罩|体温枪|测温枪|额温枪)[^\s,，;；]*)")
_COMMITTED = re.compile(r"已承诺|承诺书?已签|已签承诺书?|签了?承诺书?|同意承诺"
                        r"|承诺[:：]?(?:是|已确认|确认)|^承诺$|\s承诺$")
_OWNER_WORD = re.compile(r"^(?:店主|业主|老板|负责人|经营者)[:：]?")


def _parse_reopen(text: str) -> Command | None:
    """复工登记 3号商位 张伟 13800000000 员工4人 外地返回1人 消毒液口罩已备 已承诺."""
    found = keyword(text, _REOPEN_KEYWORDS)
    if found is None:
        return None
    rest, apart = found
    if QUESTION.search(text):
        return None  # 复工登记怎么办?
    if not apart and rest and not re.match(r"[0-9]", rest):
        return None
    values: dict[str, object] = {}
    mobiles = _MOBILE.findall(rest)
    if not mobiles:
        raise _error("ReopenRegister", "mobile_missing")
    mobile = mobiles[0]
    if not is_mobile(mobile):
        raise _error("ReopenRegister", "mobile_invalid")
    values["mobile"] = mobile
    rest = rest.replace(mobile, " ", 1)
    values["committed"] = bool(_COMMITTED.search(rest))
    rest = _COMMITTED.sub(" ", rest)
    elsewhere = _ELSEWHERE.search(rest)
    if elsewhere is not None:
        values["from_elsewhere"] = _number(elsewhere.group("n") or "0") or 0
        rest = rest[: elsewhere.start()] + " " + rest[elsewhere.end():]
    supplies = _SUPPLIES.search(rest)
    if supplies is not None:
        values["supplies"] = supplies.group("s")
        rest = rest[: supplies.start()] + " " + rest[supplies.end():]
    staff = _REG_STAFF.search(rest)
    if staff is not None:
        values["staff"] = _number(staff.group("n"))
        rest = rest[: staff.start()] + " " + rest[staff.end():]
    shop = _SHOP_NAME.search(rest)
    if shop is None:
        raise _error("ReopenRegister", "shop_missing")
    values["shop"] = re.sub(r"\s+", "", shop.group("shop"))
    rest = rest[: shop.start()] + " " + rest[shop.end():]
    owner = next((w for w in (_OWNER_WORD.sub("", t) for t in re.split(r"[\s,，;；:：]+", rest))
                  if w and is_name(w)), None)
    if owner is None:
        raise _error("ReopenRegister", "owner_missing")
    values["owner"] = owner
    if values.get("staff") is None:
        raise _error("ReopenRegister", "staff_missing")
    if int(values.get("from_elsewhere", 0)) > int(values["staff"]):  # type: ignore[call-overload]
        raise _error("ReopenRegister", "elsewhere_range")
    if not values["committed"]:
        raise _error("ReopenRegister", "commitment_missing")
    return _build(ReopenRegister, **values)


_CONFIRM = re.compile(r"(?:复工确认|确认复工)\s*#?\s*(?P<n>[0-9]{1,9})?[。.!]*")
_REVIEW = re.compile(
    r"(?:复工审核|审核复工)\s*#?\s*(?P<n>[0-9]{1,9})?\s*(?P<d>通过|同意|批准|驳回|不通过|退回)?"
    r"\s*[,:;]?\s*(?P<r>.*)", re.DOTALL)
_LIST = re.compile(r"(?:查看|查询)?(?:复工列表|复工名单|复工情况)[。.!]*")


def _parse_reopen_steps(text: str) -> Command | None:
    """复工确认 N, 复工审核 N 通过|驳回 原因, 复工列表."""
    if _LIST.fullmatch(text):
        return ReopenList()
    m = _CONFIRM.fullmatch(text)
    if m is not None:
        if m.group("n") is None:
            raise _error("ReopenConfirm", "id_missing")
        return _build(ReopenConfirm, registration_id=int(m.group("n")))
    m = _REVIEW.fullmatch(text)
    if m is not None:
        if m.group("n") is None:
            raise _error("ReopenReview", "id_missing")
        if m.group("d") is None:
            raise _error("ReopenReview", "decision_missing")
        approve = m.group("d") in ("通过", "同意", "批准")
        reason = m.group("r").strip(STRIP)
        if not approve and not reason:
            raise _error("ReopenReview", "reason_missing")
        return _build(ReopenReview, registration_id=int(m.group("n")), approve=approve,
                      reason=reason)
    return None


# --- statistics ----------------------------------------------------------------------------

_STATS = re.compile(r"(?:查看|查询|看一下|看看|查一下|今天的|今日)?"
                    r"(?:统计|数据统计|统计数据)(?:一下)?"
                    r"(?:\s+(?P<node>\S.{0,99}))?[。.!]*")


def _parse_stats(text: str) -> Command | None:
    """统计 / 统计 长春社区."""
    m = _STATS.fullmatch(text)
    if m is None:
        return None
    node = (m.group("node") or "").strip(STRIP) or None
    return _build(Stats, node=node)


STEPS = (
    Step(20, on_text(_parse_reopen_steps)),
    Step(21, on_plain(_parse_stats)),
    Step(40, on_plain(_parse_reopen)),
    Step(45, on_plain(_parse_checkin)),
    Step(60, on_plain(_parse_bare)),
)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("巡查 10家 营业3家 无异常", ShopCheckin),
    ("今日巡查：1号、2号开门，员工体温正常，已消毒", ShopCheckin),
    ("打卡 3号 开门 2人 36.5 36.7", ShopCheckin),
    ("3号 开门 2人 36.5 36.7", BareCheckin),
    ("复工登记 3号商位 张伟 13800000000 员工4人 外地返回1人 消毒液口罩已备 已承诺",
     ReopenRegister),
    ("复工确认 1", ReopenConfirm),
    ("复工审核 1 通过", ReopenReview),
    ("复工审核 1 驳回 消毒用品不足", ReopenReview),
    ("复工列表", ReopenList),
    ("统计", Stats),
    ("统计 长春社区", Stats),
)
