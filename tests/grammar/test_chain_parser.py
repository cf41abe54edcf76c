"""Parser tables for notices, feedback and the 12-point system: real-looking group messages."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import (
    COMMANDS,
    USAGE,
    Ack,
    AdjustPoints,
    Answer,
    Appeal,
    Command,
    Feedback,
    GoodPersonCandidates,
    ParseError,
    PendingChecks,
    Progress,
    Relay,
    Reward,
    ScheduleCancel,
    ScheduleList,
    ScheduleNotice,
    Score,
    ScoreHistory,
    SendNotice,
    Todo,
    Verify,
    When,
    normalise,
    parse,
)

BOT = ["小助手"]
DASHES = "\n- - - - - - - - - - - - - - -\n"
NOTICE_27 = "「小助手：【通知#27】请各房东今日完成楼道消毒，并在群里回复收到」"
URGENT_8 = "「义乌防控小助手：【紧急通知＃8】今晚8点前全面消杀」"


def run(text: str) -> Command | None:
    """Parse a raw message the way the pipeline does."""
    return parse(normalise(text, bot_names=BOT))


def notice(text: str, **kw: object) -> SendNotice:
    """A SendNotice with defaults."""
    return SendNotice(text=text, **kw)  # type: ignore[arg-type]


def at(hour: int, minute: int = 0, **kw: int) -> When:
    """A When."""
    return When(hour=hour, minute=minute, **kw)


def sched(when: When, text: str = "请各房东完成楼道消毒", **kw: object) -> ScheduleNotice:
    """A ScheduleNotice with the usual text."""
    return ScheduleNotice(when=when, text=text, **kw)  # type: ignore[arg-type]


def points(target: str, n: int, reason: str) -> AdjustPoints:
    """An AdjustPoints; n < 0 deducts."""
    return AdjustPoints(target=target, points=abs(n), delta=n, reason=reason)


RIGHT: list[tuple[str, Command]] = [
    # Issue 11: 回复 with a number and an answer is 答复 (回复1 alone stays an acknowledgement).
    ("回复 12 已安排电工明天上门", Answer(ticket_id=12, text="已安排电工明天上门")),
    ("已转发", Ack()),
    ("已通知到位", Ack()),
    ("收到，已通知所有租客", Ack()),
    ("好的，收到！马上通知各商户", Ack()),
    ("[强][强]收到，马上落实", Ack()),
    # --- sending notices
    ("通知 请各房东今日完成楼道消毒", notice("请各房东今日完成楼道消毒")),
    ("通知：明天上午9点起全楼停水，请提前储水", notice("明天上午9点起全楼停水,请提前储水")),
    ("通知，返义租客一律居家隔离14天", notice("返义租客一律居家隔离14天")),
    ("通知　请各房东今日完成楼道消毒", notice("请各房东今日完成楼道消毒")),
    ("@小助手\u2005通知 请各房东今日完成楼道消毒", notice("请各房东今日完成楼道消毒")),
    ("紧急通知 今晚8点前全面消杀", notice("今晚8点前全面消杀", urgent=True)),
    ("紧急通知！今晚8点前全面消杀", notice("今晚8点前全面消杀", urgent=True)),
    ("通知 到3级 请各房东今日完成楼道消毒", notice("请各房东今日完成楼道消毒", down_to_tier=3)),
    ("通知 到三级 请各小组长统计返义人数", notice("请各小组长统计返义人数", down_to_tier=3)),
    ("通知 到第3级 请各小组长统计返义人数", notice("请各小组长统计返义人数", down_to_tier=3)),
    ("通知到4级：房东今天上报租客体温", notice("房东今天上报租客体温", down_to_tier=4)),
    ("紧急通知 到第五级 租客不得外出", notice("租客不得外出", urgent=True, down_to_tier=5)),
    # the handler, not the grammar, reads a node name or a kind of group in the first word
    ("通知 房东群 请今日完成楼道消毒", notice("房东群 请今日完成楼道消毒")),
    ("通知 稠城街道 明天开始复工登记", notice("稠城街道 明天开始复工登记")),
    ("预览 通知 请各房东今日完成楼道消毒", notice("请各房东今日完成楼道消毒", preview=True)),
    ("预览通知 请各房东今日完成楼道消毒", notice("请各房东今日完成楼道消毒", preview=True)),
    (
        "预览 紧急通知 到3级 今晚全面消杀",
        notice("今晚全面消杀", preview=True, urgent=True, down_to_tier=3),
    ),
    (
        "通知 请各房东：\n1. 今日完成楼道消毒\n2. 上报租客体温",
        notice("请各房东: 1. 今日完成楼道消毒 2. 上报租客体温"),
    ),
    # --- acknowledgements
    ("收到", Ack()),
    ("已收到", Ack()),
    ("收到了", Ack()),
    ("收", Ack()),
    ("好的", Ack()),
    ("好", Ack()),
    ("1", Ack()),
    ("已阅", Ack()),
    ("已读", Ack()),
    ("明白", Ack()),
    ("收到！", Ack()),
    ("收到！！！", Ack()),
    ("收到👌", Ack()),
    ("收到，马上落实", Ack()),
    ("收到，立即落实到位", Ack()),
    ("好的收到", Ack()),
    ("收到收到", Ack()),
    ("收到[强]", Ack()),
    ("收到[抱拳][抱拳]", Ack()),
    ("OK", Ack()),
    ("ok", Ack()),
    ("ＯＫ", Ack()),
    ("收到，谢谢领导", Ack()),
    ("收到，马上通知租客", Ack()),
    ("收到，已转发", Ack()),
    ("好的，我马上去办", Ack()),
    ("收到请放心", Ack()),
    ("@小助手 收到", Ack()),
    ("@王书记\u2005收到", Ack()),
    ("收到 @王书记", Ack()),
    ("收到 #27", Ack(notice_id=27)),
    ("收到＃27", Ack(notice_id=27)),
    ("收到【通知#27】", Ack(notice_id=27)),
    ("收到【紧急通知#8】", Ack(notice_id=8)),
    ("27收到", Ack(notice_id=27)),
    ("#27 收到", Ack(notice_id=27)),
    ("收到 通知27", Ack(notice_id=27)),
    ("【通知#27】收到", Ack(notice_id=27)),
    # a reply that quotes the notice acknowledges that notice
    (NOTICE_27 + DASHES + "收到", Ack(notice_id=27)),
    (NOTICE_27 + DASHES + "好的，马上落实", Ack(notice_id=27)),
    (NOTICE_27 + DASHES + "1", Ack(notice_id=27)),
    (URGENT_8 + DASHES + "收到[强]", Ack(notice_id=8)),
    ("收到" + DASHES + NOTICE_27, Ack(notice_id=27)),
    ("收到\n" + NOTICE_27, Ack(notice_id=27)),
    # what the sender wrote wins over the quoted tag
    (NOTICE_27 + DASHES + "收到 #28", Ack(notice_id=28)),
    # --- relays
    ("【通知#27】请各房东今日完成楼道消毒", Relay(notice_id=27)),
    ("【紧急通知#8】今晚8点前全面消杀，收到请回复", Relay(notice_id=8)),
    ("【通知＃27】 请各房东今日完成楼道消毒", Relay(notice_id=27)),
    # --- progress
    ("进度", Progress()),
    ("进度 27", Progress(notice_id=27)),
    ("进度#27", Progress(notice_id=27)),
    ("进度 ＃２７", Progress(notice_id=27)),
    ("通知进度 27", Progress(notice_id=27)),
    ("查进度", Progress()),
    ("进度？", Progress()),
    (NOTICE_27 + DASHES + "进度", Progress(notice_id=27)),
    # --- scheduled notices
    ("定时通知 明天8:00 请各房东完成楼道消毒", sched(at(8, days_ahead=1))),
    ("定时通知 明天 8:00 请各房东完成楼道消毒", sched(at(8, days_ahead=1))),
    ("定时通知 3月1日 20:00 请各房东完成楼道消毒", sched(at(20, month=3, day=1))),
    ("定时通知 明天 早上8点 请各房东完成楼道消毒", sched(at(8, days_ahead=1))),
    ("定时通知 后天下午3点 请各房东完成楼道消毒", sched(at(15, days_ahead=2))),
    ("定时通知 今晚8点半 请各房东完成楼道消毒", sched(at(20, 30, days_ahead=0))),
    ("定时通知 12:30 请各房东完成楼道消毒", sched(at(12, 30))),
    ("定时通知：明天８：００ 请各房东完成楼道消毒", sched(at(8, days_ahead=1))),
    ("定时通知 2020年3月1日 8点 请各房东完成楼道消毒", sched(at(8, year=2020, month=3, day=1))),
    ("定时紧急通知 明天8:00 请各房东完成楼道消毒", sched(at(8, days_ahead=1), urgent=True)),
    (
        "定时通知 明天8:00 到3级 请各房东完成楼道消毒",
        sched(at(8, days_ahead=1), down_to_tier=3),
    ),
    (
        "每天 18:00 通知 房东群 请今日完成楼道消毒并上报",
        sched(at(18), "房东群 请今日完成楼道消毒并上报", daily=True),
    ),
    ("每天18点 通知 请各房东完成楼道消毒", sched(at(18), daily=True)),
    ("每天 18:00 紧急通知 请各房东完成楼道消毒", sched(at(18), daily=True, urgent=True)),
    ("每日 晚上8点 通知 到4级 请各房东完成楼道消毒", sched(at(20), daily=True, down_to_tier=4)),
    ("定时通知 每天 下午6点 请各房东完成楼道消毒", sched(at(18), daily=True)),
    ("定时列表", ScheduleList()),
    ("定时通知列表", ScheduleList()),
    ("我的定时", ScheduleList()),
    ("取消定时 5", ScheduleCancel(schedule_id=5)),
    ("取消定时#5", ScheduleCancel(schedule_id=5)),
    ("删除定时 5", ScheduleCancel(schedule_id=5)),
    ("取消定时 ５，谢谢", ScheduleCancel(schedule_id=5)),
    # --- up the chain
    ("反馈 3楼楼道灯坏了，晚上不安全", Feedback(text="3楼楼道灯坏了,晚上不安全")),
    ("反馈：租客不配合测温", Feedback(text="租客不配合测温")),
    ("@小助手 反馈 302租客发烧38度，已联系社区医生", Feedback(
        text="302租客发烧38度,已联系社区医生")),
    ("答复 12 已安排电工明天上门", Answer(ticket_id=12, text="已安排电工明天上门")),
    ("答复#12 已安排电工明天上门", Answer(ticket_id=12, text="已安排电工明天上门")),
    ("答复 ＃12：社区医生下午到。", Answer(ticket_id=12, text="社区医生下午到。")),
    ("待办", Todo()),
    ("待办事项", Todo()),
    ("待处理", Todo()),
    # --- the 12-point system
    ("加分 @董宝明 2 帮租客代购", points("董宝明", 2, "帮租客代购")),
    ("加分 @董宝明\u20052 帮租客代购", points("董宝明", 2, "帮租客代购")),
    ("扣分 @董宝明 1 楼道未消毒", points("董宝明", -1, "楼道未消毒")),
    ("@董宝明\u2005加2分 协助调解", points("董宝明", 2, "协助调解")),
    ("@董宝明 扣一分，楼道未消毒", points("董宝明", -1, "楼道未消毒")),
    ("加分 董宝明 2分 帮租客代购", points("董宝明", 2, "帮租客代购")),
    ("加分 2分 @董宝明 帮租客代购", points("董宝明", 2, "帮租客代购")),
    ("加分@董宝明 十二分 主动举报违规租客", points("董宝明", 12, "主动举报违规租客")),
    ("扣分：@董宝明 两分 隐瞒租客返回", points("董宝明", -2, "隐瞒租客返回")),
    ("待核查", PendingChecks()),
    ("待审核", PendingChecks()),
    ("核查 12 通过", Verify(event_id=12, approve=True)),
    ("核查 12 同意", Verify(event_id=12, approve=True)),
    ("核查#12 通过", Verify(event_id=12, approve=True)),
    ("核查 12 通过 照片属实", Verify(event_id=12, approve=True, reason="照片属实")),
    ("核查 12 驳回 证据不足", Verify(event_id=12, approve=False, reason="证据不足")),
    ("核查 12 不通过 楼道仍未消毒", Verify(event_id=12, approve=False, reason="楼道仍未消毒")),
    ("积分", Score()),
    ("我的积分", Score()),
    ("查积分", Score()),
    ("积分明细", ScoreHistory()),
    ("申诉 12 当天已消毒，有照片为证", Appeal(event_id=12, reason="当天已消毒,有照片为证")),
    ("申诉#12：租客是自己回来的，没有隐瞒", Appeal(event_id=12, reason="租客是自己回来的,没有隐瞒")),
    ("奖励", Reward()),
    ("我的奖励", Reward()),
    ("好人候选", GoodPersonCandidates()),
    ("好人候选名单", GoodPersonCandidates()),
]

WRONG: list[tuple[str, str, str]] = [
    # Issue 11: what starts like a command gets a hint, never silence.
    ("通知大家一下，明天停水", "SendNotice", "空一格"),
    ("反馈一下", "Feedback", "请写明反馈内容"),
    ("通知", "SendNotice", "缺少通知内容"),
    ("通知：", "SendNotice", "格式：通知 [到3级|节点名|群类型] 内容"),
    ("通知 到3级", "SendNotice", "缺少通知内容"),
    ("紧急通知", "SendNotice", "缺少通知内容"),
    ("预览 通知", "SendNotice", "缺少通知内容"),
    ("通知 到6级 请各房东今日完成楼道消毒", "SendNotice", "层级应为1到5级"),
    ("通知 到0级 请各房东今日完成楼道消毒", "SendNotice", "层级应为1到5级"),
    ("进度 0", "Progress", "编号应为正整数"),
    ("定时通知", "ScheduleNotice", "缺少时间"),
    ("定时通知 请各房东完成楼道消毒", "ScheduleNotice", "缺少时间"),
    ("定时通知 明天 请各房东完成楼道消毒", "ScheduleNotice", "缺少时间"),
    ("定时通知 明天8:00", "ScheduleNotice", "缺少通知内容"),
    ("定时通知 明天25:00 请各房东完成楼道消毒", "ScheduleNotice", "时间不正确"),
    ("定时通知 明天8:60 请各房东完成楼道消毒", "ScheduleNotice", "时间不正确"),
    ("定时通知 24点 请各房东完成楼道消毒", "ScheduleNotice", "时间不正确"),
    ("定时通知 晚上12点 请各房东完成楼道消毒", "ScheduleNotice", "时间不正确"),
    ("定时通知 2月30日 8:00 请各房东完成楼道消毒", "ScheduleNotice", "日期不正确"),
    ("每天 3月1日 8:00 通知 请各房东完成楼道消毒", "ScheduleNotice", "不能写日期"),
    ("定时通知 每天 明天8点 请各房东完成楼道消毒", "ScheduleNotice", "不能写日期"),
    ("每天 通知 请各房东完成楼道消毒", "ScheduleNotice", "缺少时间"),
    ("每天 18:00 通知", "ScheduleNotice", "缺少通知内容"),
    ("取消定时", "ScheduleCancel", "缺少定时编号"),
    ("取消定时 明天那个", "ScheduleCancel", "缺少定时编号"),
    ("取消定时 5 6", "ScheduleCancel", "格式不正确"),
    ("反馈", "Feedback", "请写明反馈内容"),
    ("反馈：", "Feedback", "格式：反馈 内容"),
    ("答复", "Answer", "缺少反馈编号"),
    ("答复 已安排电工", "Answer", "缺少反馈编号"),
    ("答复 12", "Answer", "请写明答复内容"),
    ("加分", "AdjustPoints", "请@要加分或扣分的房东"),
    ("加分 @董宝明 2", "AdjustPoints", "请写明原因"),
    ("@董宝明 加2分", "AdjustPoints", "请写明原因"),
    ("扣分 @董宝明 楼道未消毒", "AdjustPoints", "缺少分值"),
    ("加分 @董宝明 0 帮租客代购", "AdjustPoints", "分值应为1到12分"),
    ("加分 @董宝明 13分 帮租客代购", "AdjustPoints", "分值应为1到12分"),
    ("加分 2 帮租客代购", "AdjustPoints", "请@要加分或扣分的房东"),
    ("核查", "Verify", "缺少记录编号"),
    ("核查 通过", "Verify", "缺少记录编号"),
    ("核查 12", "Verify", "请写明通过或驳回"),
    ("核查 12 看看再说", "Verify", "请写明通过或驳回"),
    ("核查 12 驳回", "Verify", "驳回请写明理由"),
    ("核查#12 不通过", "Verify", "驳回请写明理由"),
    ("申诉", "Appeal", "缺少记录编号"),
    ("申诉 12", "Appeal", "请写明申诉理由"),
    ("申诉 我没有隐瞒租客", "Appeal", "缺少记录编号"),
]

CHATTER = [
    # notices
    "通知书",
    "通知了吗",
    "收到通知",
    "收到通知了吗？",
    "通知到位了吗",
    "通知？",
    "复工通知什么时候发",
    "【图片】通知",
    # not acknowledgements
    "收到了吗",
    "收到没有?",
    "收到没",
    "好的吧我不去了",
    "好吧",
    "好了",
    "好久不见",
    "好好休息",
    "明白吗",
    "1楼消毒了吗",
    "12",
    "111",
    "11",
    "收到 27",
    "收到27个口罩",
    "好的，明天见",
    "嗯",
    "OK了吗",
    "[强]",
    "👌",
    "收拾一下楼道",
    # progress, schedules
    "进度怎么样了",
    "施工进度太慢",
    "定时通知发了吗",
    "每天都要消毒",
    "取消定时了吗",
    # up the chain
    "反馈给社区了",
    "建议大家戴好口罩",
    "投诉有用吗",
    "投诉：",
    "帮我买了菜",
    "帮302租客代买了蔬菜吗？",
    "答复了吗",
    "待办的事情很多",
    # points
    "加分了吗",
    "扣分太狠了",
    "我给@董宝明 加2分了",
    "@董宝明 加2分了吗？",
    "@董宝明 你好",
    "核查一下",
    "核查 一下3楼",
    "积分怎么算",
    "奖励多少钱",
    "好人好事",
    "申诉有用吗",
    "【通知#0】请各房东",
]


@pytest.mark.parametrize(("text", "expected"), RIGHT)
def test_right(text: str, expected: Command) -> None:
    """Well-formed commands parse to exactly the expected model."""
    assert run(text) == expected


@pytest.mark.parametrize(("text", "command", "fragment"), WRONG)
def test_wrong(text: str, command: str, fragment: str) -> None:
    """Botched commands raise ParseError with a one-line hint naming the problem."""
    with pytest.raises(ParseError) as info:
        run(text)
    assert info.value.command == command
    assert fragment in info.value.hint
    assert "\n" not in info.value.hint
    assert USAGE[command] in info.value.hint


@pytest.mark.parametrize("text", CHATTER)
def test_chatter(text: str) -> None:
    """Chatter is not a command."""
    assert run(text) is None


def test_send_notice_usage() -> None:
    """通知 alone answers with the form the brief asks for."""
    with pytest.raises(ParseError) as info:
        run("通知")
    assert "格式：通知 [到3级|节点名|群类型] 内容，例：通知 请各房东今日完成楼道消毒" in info.value.hint


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (NOTICE_27 + DASHES + "收到", "收到 【通知#27】"),
        (URGENT_8 + DASHES + "好的", "好的 【紧急通知#8】"),
        (NOTICE_27 + DASHES + "收到【通知#27】", "收到【通知#27】"),
        (NOTICE_27 + DASHES + "@小助手 收到 @小助手", "收到 【通知#27】"),
        (NOTICE_27 + DASHES + "@小助手", ""),
        ("「张三：明天几点消毒？」" + DASHES + "收到", "收到"),
    ],
)
def test_normalise_keeps_quoted_notice_tag(raw: str, expected: str) -> None:
    """The tag of a quoted notice survives normalise; other quotes are still dropped."""
    assert normalise(raw, bot_names=BOT) == expected
    assert normalise(expected, bot_names=BOT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("房东上报 消毒", "LandlordReport"),
        ("体温 36.6", "Temperature"),
        ("反馈 楼道灯坏了", "Feedback"),
        ("通知 请转发到房东群", "SendNotice"),
    ],
)
def test_quoted_notice_does_not_leak_into_other_commands(text: str, expected: str) -> None:
    """Replying to a notice with another command gives that command, tag left out."""
    cmd = run(NOTICE_27 + DASHES + text)
    assert type(cmd).__name__ == expected
    assert cmd == run(text)


def test_models_keywords_and_registry() -> None:
    """Every new command is registered, has its keyword and usage, and is frozen."""
    new = (
        SendNotice, Ack, Relay, Progress, ScheduleNotice, ScheduleList, ScheduleCancel,
        Feedback, Answer, Todo, AdjustPoints, PendingChecks, Verify, Score, ScoreHistory,
        Appeal, Reward, GoodPersonCandidates,
    )
    for cls in new:
        assert cls in COMMANDS
        assert cls.keyword
        assert USAGE[cls.__name__].startswith("格式：")
    assert SendNotice.keyword == "通知"
    assert Ack.keyword == "收到"
    assert AdjustPoints.keyword == "加分"
    cmd = Ack(notice_id=3)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is internal
        cmd.notice_id = 4  # type: ignore[misc]


def test_models_refuse_inconsistent_values() -> None:
    """Invariants the parser relies on are enforced by the models themselves."""
    with pytest.raises(ValueError):
        AdjustPoints(target="董宝明", points=2, delta=3, reason="代购")
    with pytest.raises(ValueError):
        Verify(event_id=1, approve=False)
    with pytest.raises(ValueError):
        ScheduleNotice(when=When(hour=8, days_ahead=1), daily=True, text="请消毒")
    with pytest.raises(ValueError):
        When(hour=24)
    with pytest.raises(ValueError):
        SendNotice(text="   ")


def test_long_ack_lookalikes_are_fast() -> None:
    """Near-acknowledgements that fail late are rejected quickly (no regex blow-up)."""
    texts = ["收到" + "马上" * 19 + "吗", "收到" + "谢谢" * 19 + "吗", "好" * 39 + "吗",
             "收到" + "，" * 37 + "吗", "@王书记 " * 8 + "收到吗"]
    start = time.perf_counter()
    for text in texts:
        assert run(text) is None
    assert time.perf_counter() - start < 0.5


@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    day=st.sampled_from([("明天", 1), ("后天", 2), ("今天", 0)]),
    daily=st.booleans(),
)
def test_schedule_times_round_trip(
    hour: int, minute: int, day: tuple[str, int], daily: bool
) -> None:
    """Any valid 24-hour time comes back as written, dated or daily."""
    if daily:
        cmd = run(f"每天 {hour}:{minute:02d} 通知 请各房东完成楼道消毒")
        assert cmd == sched(at(hour, minute), daily=True)
    else:
        cmd = run(f"定时通知 {day[0]}{hour}:{minute:02d} 请各房东完成楼道消毒")
        assert cmd == sched(at(hour, minute, days_ahead=day[1]))


@given(
    notice_id=st.integers(1, 10**6),
    reply=st.sampled_from(["收到", "好的", "1", "已阅", "收到，马上落实", "OK", "收到[强]"]),
    urgent=st.booleans(),
)
def test_quoted_acks_carry_the_notice_id(notice_id: int, reply: str, urgent: bool) -> None:
    """Any acknowledgement under a quoted notice names that notice."""
    tag = f"【{'紧急' if urgent else ''}通知#{notice_id}】"
    assert run(f"「小助手：{tag}请各房东今日完成楼道消毒」{DASHES}{reply}") == Ack(
        notice_id=notice_id
    )
    assert run(f"{tag}{reply}") == Ack(notice_id=notice_id)
    assert run(f"{tag}请各房东今日完成楼道消毒") == Relay(notice_id=notice_id)


@given(n=st.integers(1, 12), sign=st.sampled_from([1, -1]), mention=st.booleans())
def test_points_round_trip(n: int, sign: int, mention: bool) -> None:
    """1–12 points in either direction, with or without @, come back as written."""
    word = "加分" if sign > 0 else "扣分"
    name = "@董宝明\u2005" if mention else "董宝明 "
    assert run(f"{word} {name}{n}分 楼道消毒情况") == points("董宝明", sign * n, "楼道消毒情况")
