"""Parser tables: real-looking group messages to commands, hints, or None for chatter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import (
    USAGE,
    Ack,
    Arrival,
    BindGroup,
    BindPerson,
    Command,
    Feedback,
    HealthMention,
    Help,
    LandlordReport,
    MyTenants,
    ParseError,
    Temperature,
    TenantReturn,
    normalise,
    parse,
)

BOT = ["小助手"]
ID_OK = "330782199001011239"
ID_X = "11010519491231002X"
QUOTE = "「张三：大家返回后记得登记」\n- - - - - - - - - - - - - - -\n"


def run(text: str) -> Command | None:
    """Parse a raw message the way the pipeline does."""
    return parse(normalise(text, bot_names=BOT))


def ret(
    mobile: str = "13800138000",
    name: str | None = "王明",
    origin: str | None = "湖南长沙",
    **kw: object,
) -> TenantReturn:
    """A TenantReturn with the usual test tenant."""
    return TenantReturn(name=name, mobile=mobile, origin=origin, **kw)  # type: ignore[arg-type]


RIGHT: list[tuple[str, Command]] = [
    # 租客返回 and its variants
    (
        "租客返回 王明 13800138000 来自湖南长沙 2月20日凌晨4点 体温36.5",
        ret(arrival=Arrival(month=2, day=20, hour=4, minute=0), temperature=36.5),
    ),
    ("返回登记：王明，电话13800138000，湖南长沙回来", ret()),
    ("我回来了 湖南长沙 13800138000", ret(name=None)),
    (
        "租客返回 潘先生 139 0579 1234 从江西上饶返回 昨晚10点 36.8度",
        ret(
            name="潘先生", mobile="13905791234", origin="江西上饶",
            arrival=Arrival(days_ago=1, hour=22, minute=0), temperature=36.8,
        ),
    ),
    ("房东上报 返回 王明 13800138000 湖南长沙", ret(landlord_form=True)),
    ("租客登记 王明 13800138000 湖南长沙", ret()),
    ("返义登记 王明 13800138000 湖南长沙", ret()),
    ("返乡登记、王明、13800138000、湖南长沙", ret()),
    ("我已返回,湖南长沙,13800138000", ret(name=None)),
    ("已返回 13800138000 来自湖南长沙", ret(name=None)),
    ("我已经回来了 从湖南长沙回来 手机13800138000", ret(name=None)),
    ("租客返回：王明 手机号:13800138000 来自:湖南长沙", ret()),
    ("租客返回 王明 tel 13800138000 老家湖南长沙", ret()),
    ("租客返回 王明 138-0013-8000 湖南省长沙市", ret(origin="湖南省长沙市")),
    ("租客返回 李女士 +86 13800138000 安徽阜阳 2/20", ret(
        name="李女士", origin="安徽阜阳", arrival=Arrival(month=2, day=20))),
    ("租客返回 王明 13800138000 湖南长沙 2-20 下午3点", ret(
        arrival=Arrival(month=2, day=20, hour=15, minute=0))),
    ("租客返回 王明 13800138000 湖南长沙 2020年2月20日", ret(
        arrival=Arrival(year=2020, month=2, day=20))),
    ("租客返回 王明 13800138000 湖南长沙 20日 晚上8点半", ret(
        arrival=Arrival(day=20, hour=20, minute=30))),
    ("租客返回 王明 13800138000 湖南长沙 2月20号 4:30", ret(
        arrival=Arrival(month=2, day=20, hour=4, minute=30))),
    ("租客返回 王明 13800138000 湖南长沙 今天中午1点", ret(
        arrival=Arrival(days_ago=0, hour=13, minute=0))),
    ("租客返回 王明 13800138000 湖南长沙 前天傍晚6点", ret(
        arrival=Arrival(days_ago=2, hour=18, minute=0))),
    ("租客返回 王明 13800138000 湖南长沙 凌晨12点", ret(arrival=Arrival(hour=0, minute=0))),
    ("租客返回 王明 13800138000 湖南长沙 昨天", ret(arrival=Arrival(days_ago=1))),
    ("租客返回 王明 13800138000 湖南长沙 体温:36.5℃", ret(temperature=36.5)),
    ("租客返回 王明 13800138000 湖南长沙 37.2°C", ret(temperature=37.2)),
    ("租客返回 王明 13800138000 湖南长沙 36.6", ret(temperature=36.6)),
    (f"租客返回 王明 13800138000 湖南长沙 身份证{ID_OK}", ret(id_number=ID_OK)),
    (f"租客返回 王明 13800138000 湖南长沙 身份证号:{ID_X.lower()}", ret(id_number=ID_X)),
    ("租客返回 欧阳娜娜 13800138000 湖北武汉", ret(name="欧阳娜娜", origin="湖北武汉")),
    ("租客返回 湖南长沙 13800138000", ret(name=None)),
    # full width, extra spaces, mentions, typos, quotes
    ("租客返回　王明　１３８００１３８０００　来自湖南长沙", ret()),
    ("  租客返回   王明  13800138000    湖南长沙  ", ret()),
    ("@小助手\u2005租客返回 王明 13800138000 湖南长沙", ret()),
    ("租客返回 王明 13800138000 湖南长沙 @小助手", ret()),
    ("租客反回 王明 13800138000 湖南长沙", ret()),
    ("返回等记 王明 13800138000 湖南长沙", ret()),
    (
        QUOTE + "租客返回 王明 13800138000 湖南长沙",
        ret(),
    ),
    # a return announced without a keyword, as long as it carries a mobile and a place
    ("王明 13800138000 湖南长沙回来", ret()),
    ("我从湖南长沙回来了,电话 138 0013 8000", ret(name=None)),
    # temperature
    ("体温 36.6", Temperature(value=36.6)),
    ("体温36.6", Temperature(value=36.6)),
    ("体温：36.6度", Temperature(value=36.6)),
    ("今日体温 36.5℃", Temperature(value=36.5)),
    ("测温 36.7", Temperature(value=36.7)),
    ("体温 王明 36.6", Temperature(value=36.6, name="王明")),
    ("王明 体温36.6", Temperature(value=36.6, name="王明")),
    ("体温 36.6 正常", Temperature(value=36.6)),
    ("体温 ３６.８", Temperature(value=36.8)),
    ("@小助手 体温 37", Temperature(value=37.0)),
    ("上报体温 36.4", Temperature(value=36.4)),
    # A reading written without 体温: 温度 with a body's decimal reading, the time of day it
    # was taken, or one reading said to be normal.
    ("温度36.6", Temperature(value=36.6, unmarked=True)),
    ("我的温度是37.8", Temperature(value=37.8, unmarked=True)),
    ("上午36.5", Temperature(value=36.5, unmarked=True)),
    ("晚上 36.8", Temperature(value=36.8, unmarked=True)),
    ("额温37.9", Temperature(value=37.9, unmarked=True)),
    ("刚量了36.7", Temperature(value=36.7, unmarked=True)),
    ("测得36.5", Temperature(value=36.5, unmarked=True)),
    ("王明今天量的37.6", Temperature(value=37.6, name="王明", unmarked=True)),
    ("今天 37.8 发烧", Temperature(value=37.8)),
    ("体温36.5，38.2", HealthMention(value=38.2)),
    ("36.5 正常", Temperature(value=36.5, unmarked=True)),
    ("36.5度，无异常", Temperature(value=36.5, unmarked=True)),
    ("王明 36.6 正常", Temperature(value=36.6, name="王明", unmarked=True)),
    # landlord reports
    ("房东上报 消毒", LandlordReport(kind="disinfect", detail="")),
    ("房东上报 已消毒 楼道和楼梯", LandlordReport(kind="disinfect", detail="楼道和楼梯")),
    ("房东上报：消毒", LandlordReport(kind="disinfect", detail="")),
    ("房东上报 代办 帮302租客买菜", LandlordReport(kind="errand", detail="帮302租客买菜")),
    ("房东上报 代购 米和油", LandlordReport(kind="errand", detail="米和油")),
    ("房东上报 跑腿 取药", LandlordReport(kind="errand", detail="取药")),
    (
        "房东上报 违规 301租客未居家隔离外出",
        LandlordReport(kind="violation", detail="301租客未居家隔离外出"),
    ),
    ("房东上报 调解", LandlordReport(kind="mediation", detail="")),
    ("房东上报 矛盾调解 2楼邻里纠纷", LandlordReport(kind="mediation", detail="2楼邻里纠纷")),
    ("上报消毒", LandlordReport(kind="disinfect", detail="")),
    ("消毒已完成", LandlordReport(kind="disinfect", detail="")),
    ("今天已消毒!", LandlordReport(kind="disinfect", detail="")),
    ("今天已对出租屋全面消毒", LandlordReport(kind="disinfect", detail="")),
    ("对楼道彻底消杀完毕", LandlordReport(kind="disinfect", detail="")),
    # A breach handled or a dispute settled, told without a keyword (refused silently where
    # landlords do not report).
    ("有租客不戴口罩，已劝导",
     LandlordReport(kind="violation", detail="有租客不戴口罩,已劝导", unmarked=True)),
    ("调解了一起租客纠纷",
     LandlordReport(kind="mediation", detail="调解了一起租客纠纷", unmarked=True)),
    ("租客之间的矛盾已调解好了",
     LandlordReport(kind="mediation", detail="租客之间的矛盾已调解好了", unmarked=True)),
    # Returns said without a keyword: a clear place, or 来 alone after it.
    ("李四 13912345678 湖北武汉 今天回来",
     TenantReturn(name="李四", mobile="13912345678", origin="湖北武汉",
                  arrival=Arrival(days_ago=0))),
    ("我是新来的租客 张三 电话13812345678 从河南信阳来",
     TenantReturn(name="张三", mobile="13812345678", origin="河南信阳")),
    ("我叫刘洋，13712345678，江西赣州来的",
     TenantReturn(name="刘洋", mobile="13712345678", origin="江西赣州")),
    ("王芳 15912345678 湖南岳阳 2月20日到",
     TenantReturn(name="王芳", mobile="15912345678", origin="湖南岳阳",
                  arrival=Arrival(month=2, day=20))),
    ("今天从老家湖北黄冈回来了 我叫吴刚 电话18812345678",
     TenantReturn(name="吴刚", mobile="18812345678", origin="湖北黄冈",
                  arrival=Arrival(days_ago=0))),
    ("我老公王强今天回来 电话13812345678 河南信阳",
     TenantReturn(name="王强", mobile="13812345678", origin="河南信阳",
                  arrival=Arrival(days_ago=0))),
    ("我爸王强今天回来 电话13812345678 河南信阳",
     TenantReturn(name="王强", mobile="13812345678", origin="河南信阳",
                  arrival=Arrival(days_ago=0))),
    # 代报 for a tenant is the health family's, not 房东上报 mistyped.
    ("房东代报 潘先生 体温36.6", Temperature(value=36.6, name="潘先生")),
    ("代报 王明 37.9", Temperature(value=37.9, name="王明", unmarked=True)),
    # help, my tenants, bind
    ("帮助", Help()),
    ("帮助？", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("菜单", Help()),
    ("命令", Help()),
    ("功能", Help()),
    ("？", Help()),
    ("@小助手 帮助", Help()),
    ("我的租客", MyTenants()),
    ("租客列表", MyTenants()),
    ("我的房客?", MyTenants()),
    ("看看我的租客", MyTenants()),
    ("我的租客有哪些", MyTenants()),
    ("怎么用", Help()),
    ("机器人怎么用？", Help()),
    ("有什么命令", Help()),
    ("绑定 A7K2Q9", BindPerson(code="A7K2Q9")),
    ("绑定：a7k2q9", BindPerson(code="A7K2Q9")),
    ("绑定ａ７ｋ２ｑ９", BindPerson(code="A7K2Q9")),
    ("绑定群 A7K2Q9", BindGroup(code="A7K2Q9")),
    ("群绑定 A7K2Q9", BindGroup(code="A7K2Q9")),
]

WRONG: list[tuple[str, str, str]] = [
    ("我回来了", "TenantReturn", "手机号应为11位"),
    ("我回来了!", "TenantReturn", "格式：租客返回"),
    ("租客返回 王明 湖南长沙", "TenantReturn", "手机号应为11位，例如13800000000"),
    ("租客返回 王明 1380013800 湖南长沙", "TenantReturn", "手机号应为11位"),
    # 11 digits that no mobile starts with: "not a mobile number", not "must be 11 digits".
    ("租客返回 王明 12800138000 湖南长沙", "TenantReturn", "这不是手机号"),
    ("租客返回 王五 23812345678 来自湖南长沙", "TenantReturn", "这不是手机号"),
    ("租客返回 王明 电话 138001380001 湖南长沙", "TenantReturn", "手机号应为11位"),
    ("租客返回 王明 13800138000", "TenantReturn", "缺少来自哪里"),
    ("租客返回 王明 13800138000 湖南长沙 体温45", "TenantReturn", "体温应在34.0到43.0℃之间"),
    ("租客返回 王明 13800138000 湖南长沙 33度", "TenantReturn", "体温应在34.0到43.0℃之间"),
    ("租客返回 王明 13800138000 湖南长沙 身份证330782199001011234", "TenantReturn", "身份证"),
    ("租客返回 王明 13800138000 湖南长沙 2月30日", "TenantReturn", "到达时间"),
    ("租客返回 王明 13800138000 湖南长沙 25点", "TenantReturn", "到达时间"),
    ("房东上报 返回 13800138000 湖南长沙", "TenantReturn", "缺少租客姓名"),
    ("体温 50", "Temperature", "体温应在34.0到43.0℃之间"),
    ("体温 365", "Temperature", "体温应在34.0到43.0℃之间"),
    ("体温", "Temperature", "格式：体温 36.5"),
    ("体温 王明", "Temperature", "缺少体温"),
    ("房东上报", "LandlordReport", "消毒、代办、违规、调解"),
    ("房东上报 吃饭", "LandlordReport", "上报类型应为"),
    ("房东上报 违规", "LandlordReport", "请写明情况"),
    ("绑定", "BindPerson", "缺少绑定码"),
    ("绑定 好的", "BindPerson", "绑定码应为4到12位字母或数字"),
    ("绑定 AB", "BindPerson", "绑定码应为4到12位"),
    ("绑定群", "BindGroup", "格式：绑定群"),
]

CHATTER = [
    "大家好",
    # 收到 and 收到! were chatter until acknowledgements (Ack) existed; see test_chain_parser.
    "谢谢房东",
    "今天天气不错",
    "明天几点消毒?",
    "[图片]",
    "我回来了吗",
    "已返回的租客请尽快登记",
    "绑定好了吗",
    "我的租客都回来了",
    "帮助一下老人",
    "上报一下情况",
    "有事打我电话13800138000",
    "王明回家了",
    "36.5",
    # The weather, a price, a time: no body's reading.
    "室外温度36.5",
    "今天气温36.5",
    "温度36度",
    "中午36.5元",
    "最早36.5",
    "买了额温枪",
    "今天花了36.5",
    "消毒液怎么用",
    "这事我会反映一下",
    "请大家有问题及时反映",
    "这事真让人头疼",
    "有人聚集吗，已劝导了吗",
    "我来的时候电话13812345678没信号",
    "",
    "   ",
    "@张三 你回来了吗",
    "2月20日凌晨4点到",
]


@pytest.mark.parametrize(("text", "expected"), RIGHT)
def test_right(text: str, expected: Command) -> None:
    """Well-formed commands parse to exactly the expected model."""
    assert run(text) == expected


@pytest.mark.parametrize("who", ["我老公", "我妈"])
def test_a_family_member_without_a_name_is_asked_for_it(who: str) -> None:
    """我老公今天回来 …: never a tenant named 老公; the hint asks for the name."""
    with pytest.raises(ParseError) as info:
        run(f"{who}今天回来 电话13812345678 河南信阳")
    assert info.value.command == "TenantReturn" and "姓名" in info.value.hint


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


# Health words were chatter until the never-ignore-a-fever rule (issue 11): in a tier-5 group
# they are answered (a hint, or the landlord and team told of a possible fever).
HEALTH_MENTIONS = [
    ("体温正常", HealthMention()),
    ("体温多少算发烧?", HealthMention()),
    ("每天8点测体温", HealthMention()),
    ("每天早上8点通知大家测温", HealthMention()),
    ("我发烧了", HealthMention(fever=True)),
    ("没有发烧", HealthMention()),
    ("今天38度好热", HealthMention(value=38.0)),
    ("体温37.3算发烧吗", HealthMention(value=37.3)),
    ("体温36.5 昨天37.8", HealthMention(value=37.8)),
    # Two readings in one message: the highest decides whether it may be a fever.
    ("上午36.5 下午36.7", HealthMention(value=36.7)),
    ("早36.4 晚37.9", HealthMention(value=37.9)),
    ("嗓子有点疼", HealthMention()),
    ("喉咙痛，乏力", HealthMention()),
]


@pytest.mark.parametrize(("text", "expected"), HEALTH_MENTIONS)
def test_health_words_are_never_chatter(text: str, expected: Command) -> None:
    assert run(text) == expected


@pytest.mark.parametrize("text", ["收到", "收到!", "收到！"])
def test_former_chatter_is_now_an_ack(text: str) -> None:
    """收到 used to be chatter; since notices ask for acknowledgement it is an Ack."""
    assert run(text) == Ack()


def test_keywords_and_models() -> None:
    """Each command has its Chinese keyword, and models are frozen."""
    assert TenantReturn.keyword == "租客返回"
    assert Temperature.keyword == "体温"
    assert BindGroup.keyword == "绑定群"
    cmd = Temperature(value=36.6)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is internal
        cmd.value = 37.0  # type: ignore[misc]


_pieces = st.one_of(
    st.text(max_size=8),
    st.sampled_from(list("0123456789 ,:.、：，１３８年月日号点时半度℃°@-\n「」【】#＃分级")),
    st.sampled_from(
        ["租客返回", "我回来了", "体温", "房东上报", "绑定", "绑定群", "上报", "身份证", "电话",
         "来自", "回来", "昨晚", "凌晨", "13800138000", "36.5", ID_OK, "王明", "湖南长沙",
         "- - - - - -", "@小助手\u2005",
         # notices, schedules, feedback and points
         "通知", "紧急通知", "预览", "到3级", "到第三级", "收到", "好的", "马上落实", "[强]",
         "【通知#27】", "【紧急通知#3】", "进度", "定时通知", "每天", "明天", "晚上", "8:00",
         "18点", "3月1日", "取消定时", "定时列表", "反馈", "答复", "待办", "加分", "扣分",
         "@董宝明\u2005", "加2分", "十二", "核查", "通过", "驳回", "积分", "申诉", "奖励",
         "好人候选", "待核查"]
    ),
)


@given(st.lists(_pieces, max_size=12).map("".join))
def test_parse_never_raises_anything_but_parse_error(text: str) -> None:
    """Whatever users type, parse returns a command or None, or raises ParseError."""
    for candidate in (text, normalise(text), normalise(text, bot_names=BOT)):
        try:
            result = parse(candidate)
        except ParseError as exc:
            assert exc.hint and "\n" not in exc.hint
        else:
            assert result is None or isinstance(result, Command)


_mobiles = st.from_regex(r"\A1[3-9][0-9]{9}\Z")


@given(
    mobile=_mobiles,
    layout=st.sampled_from(
        [
            "租客返回 王明 {m} 来自湖南长沙",
            "返回登记:王明,电话{m},湖南长沙回来",
            "我回来了 湖南长沙 {m}",
            "房东上报 返回 王明 手机号{m} 湖南长沙 体温36.5",
            "租客返回 王明 {a} {b} {c} 从湖南长沙返回 2月20日",
            "租客返回 王明 {a}-{b}-{c} 湖南长沙",
        ]
    ),
)
def test_mobile_round_trips(mobile: str, layout: str) -> None:
    """Any valid mobile embedded in a return message comes back unchanged."""
    text = layout.format(m=mobile, a=mobile[:3], b=mobile[3:7], c=mobile[7:])
    cmd = run(text)
    assert isinstance(cmd, TenantReturn)
    assert cmd.mobile == mobile
    assert cmd.origin == "湖南长沙"


@pytest.mark.parametrize(("text", "body", "unmarked"), [
    # The problem first, then the request to pass it on.
    ("楼道灯坏了好几天了，麻烦反映一下", "楼道灯坏了好几天了", False),
    ("三楼水管漏水了，请帮忙反馈一下", "三楼水管漏水了", False),
    # A fault, asking who sees to it: a ticket, refused silently where tickets are not taken.
    ("电梯坏了谁管", "电梯坏了", True),
    ("楼下停水了找谁", "楼下停水了", True),
])
def test_feedback_said_in_other_words(text: str, body: str, unmarked: bool) -> None:
    assert run(text) == Feedback(text=body, unmarked=unmarked)
