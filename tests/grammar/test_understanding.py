"""Properties of understanding (issue 11): health reports are never ignored, commands are
recognised as people write them, chatter is never a command."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.grammar import (
    Ack,
    Answer,
    Command,
    EnterpriseReport,
    Feedback,
    HealthMention,
    LandlordReport,
    ParseError,
    Progress,
    Score,
    ShopCheckin,
    Stats,
    Temperature,
    TenantReturn,
    Todo,
    WorkCard,
    normalise,
    parse,
)
from bot.grammar.parser import FAMILIES, steps

FEVER_THRESHOLD = 37.3  # the default (tenants.fever_threshold)

_EMOJI = st.sampled_from(["😷", "😰", "👍", "✅", "🙏", "[强]", "[流泪]", "[呲牙]", "[抱拳]",
                          "[微笑]", "🤒", "❤️"])
_decoration = st.lists(_EMOJI, max_size=3).map("".join)
_KEYWORD = st.sampled_from(["体温", "体溫", "體溫", "今天体温", "今日体温：", "测体温",
                            "早上量了一下体温", "我今天体温", "体温 "])
_TRAILING = st.sampled_from(["", "度", " 度", "℃", "°C", " 正常", "度 正常", " 有点烧",
                             " 发烧了", "，没有咳嗽也没有发烧，一切正常，谢谢房东关心",
                             "度，请房东放心", " 好的"])
_FULL_WIDTH = str.maketrans("0123456789.", "０１２３４５６７８９．")
_CN = "零一二三四五六七八九"


def _written(value: float, style: str) -> str:
    """One reading as people write it."""
    whole, tenth = divmod(round(value * 10), 10)
    if style == "dot":
        return f"{whole}.{tenth}"
    if style == "comma":
        return f"{whole},{tenth}"
    if style == "full":
        return f"{whole}.{tenth}".translate(_FULL_WIDTH)
    if style == "degree":
        return f"{whole}度{tenth}"
    # 三十七度五
    return f"{_CN[whole // 10]}十{_CN[whole % 10] if whole % 10 else ''}度{_CN[tenth]}"


_values = st.integers(min_value=350, max_value=420).map(lambda n: n / 10)
_styles = st.sampled_from(["dot", "comma", "full", "degree", "chinese"])


@settings(max_examples=300)
@given(value=_values, style=_styles, before=_decoration, keyword=_KEYWORD,
       trailing=_TRAILING, after=_decoration)
def test_a_reading_however_written_is_read(value, style, before, keyword, trailing, after):
    """体温 + a value + trailing words + emoji anywhere: the value itself is recorded."""
    text = f"{before}{keyword}{_written(value, style)}{trailing}{after}"
    cmd = parse(text)
    assert isinstance(cmd, Temperature), text
    assert cmd.value == pytest.approx(value), text
    assert cmd.name is None, text  # nobody is named after a stray word


_RUN_ON = st.sampled_from(["房东你好", "跟您说一下", "那个", "就是", "我想说"])


@settings(max_examples=200)
@given(value=_values, style=_styles, lead=_RUN_ON, before=_decoration, after=_decoration,
       ask=st.booleans())
def test_a_health_message_is_never_chatter(value, style, lead, before, after, ask):
    """Voice-to-text run-ons, questions, two values: recorded, or a mention that is answered
    (and at or above the threshold, the landlord and the team are told)."""
    question = "算发烧吗" if ask else ""
    text = f"{before}{lead}体温{_written(value, style)}{question}{after}"
    cmd = parse(text)
    assert isinstance(cmd, Temperature | HealthMention), text
    if isinstance(cmd, HealthMention):
        assert cmd.value == pytest.approx(value), text
    else:
        assert cmd.value == pytest.approx(value), text


@given(word=st.sampled_from(["发烧", "发热", "低烧", "有点烧", "咳嗽", "体温", "体溫"]),
       before=_decoration, lead=_RUN_ON, after=_decoration)
def test_health_words_without_a_value_are_answered(word, before, lead, after):
    cmd = parse(f"{before}{lead}{word}{after}")
    assert isinstance(cmd, HealthMention)


@pytest.mark.parametrize(("text", "fever"), [
    ("我发烧了", True), ("孩子有点发热", True), ("没有发烧", False), ("不发烧了", False),
    ("发烧怎么办?", False), ("退烧了", False),
])
def test_a_fever_said_is_a_fever_asked_or_denied_is_not(text: str, fever: bool) -> None:
    cmd = parse(text)
    assert isinstance(cmd, HealthMention) and cmd.fever is fever


# --- chatter ----------------------------------------------------------------------------------

_GREETING = st.sampled_from(["大家好", "大家早上好", "各位好", "早", "早安", "晚安", "你好",
                             "您好", "房东好", "好久不见", "新年好", "辛苦了各位"])
_THANKS = st.sampled_from(["谢谢", "谢谢房东", "谢谢大家", "感谢", "多谢", "麻烦了",
                           "辛苦了", "太感谢了"])
_QUESTION = st.sampled_from(["今天天气怎么样?", "明天要下雨吗", "有人在吗", "快递到了吗",
                             "几点开门?", "小区门口能停车吗", "超市开门了吗", "谁有口罩?",
                             "菜市场几点关门", "有没有人一起拼单"])
_chatter = st.one_of(_GREETING, _THANKS, _QUESTION)


@settings(max_examples=300)
@given(parts=st.lists(_chatter, min_size=1, max_size=3), before=_decoration,
       after=_decoration, sep=st.sampled_from(["", " ", "，", "！", "~"]))
def test_chatter_is_never_a_command(parts, before, after, sep):
    """Greetings, thanks and questions without command words get no reply."""
    text = before + sep.join(parts) + after
    try:
        cmd = parse(text)
    except ParseError as exc:  # pragma: no cover - the failure message says what
        raise AssertionError(f"{text!r} got a hint: {exc.hint}") from exc
    assert cmd is None, text


# --- commands as people write them --------------------------------------------------------------


@given(before=_decoration, after=_decoration,
       text=st.sampled_from(["房东上报 消毒", "房东上抱 消毒", "房东上报一下今天楼道已经全部消毒了",
                             "消毒完成", "今天已经消毒了", "房东上报消毒", "房东尚报 消毒"]))
def test_disinfection_reports_with_emoji_and_typos(before, after, text):
    cmd = parse(f"{before}{text}{after}")
    assert isinstance(cmd, LandlordReport) and cmd.kind == "disinfect"


@given(before=_decoration, after=_decoration,
       text=st.sampled_from(["收到", "收到，马上落实", "好的，收到！马上通知各商户", "已转发",
                             "收到，已通知所有租客", "已通知到位", "收到收到"]))
def test_acknowledgements_with_emoji(before, after, text):
    assert parse(f"{before}{text}{after}") == Ack()


@pytest.mark.parametrize("text", ["我现在积分多少？", "积分多少", "我有多少积分", "[强]积分"])
def test_score_questions(text: str) -> None:
    assert parse(text) == Score()


def test_returns_in_run_on_sentences() -> None:
    cmd: Command | None = parse("您好 我叫王明远 昨天晚上从长沙回来 手机号13800138001 现在在家隔离")
    assert cmd is not None and cmd.model_dump()["name"] == "王明远"
    arrival = cmd.model_dump()["arrival"]
    assert arrival["days_ago"] == 1 and arrival["period"] == "晚上" and arrival["hour"] is None


# --- every family's own examples ----------------------------------------------------------------

_EXAMPLES = [(family.__name__.rsplit(".", 1)[1], text, cls)
             for family in FAMILIES for text, cls in family.EXAMPLES]


@pytest.mark.parametrize(("family", "text", "cls"), _EXAMPLES,
                         ids=[f"{f}:{t}" for f, t, _ in _EXAMPLES])
def test_family_examples(family: str, text: str, cls: type[Command]) -> None:
    assert type(parse(text)) is cls


def test_every_family_has_steps_and_examples() -> None:
    for family in FAMILIES:
        assert family.STEPS and family.EXAMPLES, family.__name__
    orders = [s.order for s in steps()]
    assert orders == sorted(orders)


# --- misses found by the corpus (the shapes people typed, each with what it must be) -----------

QUOTE_LINE = "\n- - - - - - - - - - - - - - -\n"


def _parsed(text: str) -> Command | None:
    return parse(normalise(text))


@pytest.mark.parametrize(("text", "expected"), [
    # A decimal point typed with spaces or as a middle dot: the value, never 36.0.
    ("体温 ： 36 . 6", Temperature(value=36.6)),
    ("体温36·5", Temperature(value=36.5)),
    ("今天早上体温 36 .5", Temperature(value=36.5)),
    # A landlord's fever for a tenant with a time word around the name: stored, not a hint.
    ("王明今天体温三十八度五", Temperature(value=38.5, name="王明")),
    ("今天王明体温38.3", Temperature(value=38.3, name="王明")),
    ("王明今天早上体温38.2", Temperature(value=38.2, name="王明")),
    ("大家今天体温三十六度五", Temperature(value=36.5)),  # nobody is named 大家
    # A unit after the decimal makes it a temperature; an integer below 37 with no health
    # word is the weather or the air-conditioner.
    ("今天36.5度", HealthMention(value=36.5)),
    ("今天38.5度", HealthMention(value=38.5)),
    ("我家302的空调坏了36度热死了", None),
    ("今天38度好热", HealthMention(value=38.0)),  # never silent at a fever's value
    # A fever stated and then a question about what to do is a fever.
    ("体温38℃ 发烧了 怎么办", Temperature(value=38.0)),
    ("@董宝明 我发烧了怎么办", HealthMention(fever=True)),
    ("发烧怎么办?", HealthMention()),
    ("是不是发烧了", HealthMention()),
    ("发烧了吗", HealthMention()),
    # A question put to someone else is not a report.
    ("@王明 你今天量体温了吗", None),
    # A name before the reading: mentioned, after 代报, or first (a landlord for a tenant).
    ("@王明 体温38.2 发烧了", Temperature(value=38.2, name="王明")),
    ("代报 王明 体温36.5", Temperature(value=36.5, name="王明")),
    ("潘先生 37.8 发烧", Temperature(value=37.8, name="潘先生")),
    ("王明 今天体温38.1", Temperature(value=38.1, name="王明")),
    ("房东 38.5 发烧了", Temperature(value=38.5)),  # 房东 is nobody's name
    ("今天 37.8 发烧", Temperature(value=37.8)),
    # 什么 is no question; a reading after a comma is a reading.
    ("房东我今天体温是三十六度五没有什么不舒服的", Temperature(value=36.5)),
    ("我好像发烧了，37.9", Temperature(value=37.9)),
    ("发烧了么", HealthMention()),
    # Traditional characters.
    ("體溫：36.6℃", Temperature(value=36.6)),
])
def test_health_shapes(text: str, expected: Command | None) -> None:
    assert _parsed(text) == expected


@pytest.mark.parametrize(("quote", "reply", "expected"), [
    ("董宝明：大家每天报一下体温", "36.5", Temperature(value=36.5)),
    ("董宝明：@王明 今天体温多少", "３８．２度", Temperature(value=38.2)),
    ("董宝明：你住几楼", "36", None),  # a number under another question stays a number
    ("董宝明：请大家报一下今天的体温", "36.5 正常", Temperature(value=36.5)),
    ("董宝明：请大家报一下今天的体温", "王明 36.6", Temperature(value=36.6, name="王明")),
    ("董宝明：请大家报一下今天的体温", "36.5，谢谢", Temperature(value=36.5)),
    ("董宝明：请大家报一下今天的体温", "40分钟后", None),
])
def test_a_reading_under_a_quote_asking_for_it(quote: str, reply: str,
                                               expected: Command | None) -> None:
    assert _parsed(f"「{quote}」{QUOTE_LINE}{reply}") == expected


def test_traditional_characters_are_read_and_kept_as_written() -> None:
    assert _parsed("房東上報 消毒") == LandlordReport(kind="disinfect", detail="")
    assert _parsed("積分多少") == Score()
    cmd = _parsed("租客返回 周杰 13812345670 來自 河南鄭州")
    assert isinstance(cmd, TenantReturn) and cmd.origin == "河南郑州" and cmd.name == "周杰"
    assert normalise("反饋：樓道燈壞了", keep_punctuation=True) == "反饋：樓道燈壞了"


def test_a_bot_named_in_traditional_characters_is_still_stripped() -> None:
    assert normalise("@防疫小幫手\u2005體溫36.5", bot_names=["防疫小幫手"]) == "体温36.5"
    assert normalise("@防疫小幫手\u2005體溫36.5", bot_names=["防疫小幫手"],
                     keep_punctuation=True) == "體溫36.5"



@pytest.mark.parametrize(("text", "expected"), [
    ("@刘芳 我现在多少分了", Score()),
    ("@社区 房东上报 消毒", LandlordReport(kind="disinfect", detail="")),
    ("@吴海峰 收到", Ack()),
])
def test_a_command_after_a_mention(text: str, expected: Command) -> None:
    assert _parsed(text) == expected


def test_a_mention_that_is_an_argument_stays_one() -> None:
    cmd = _parsed("@董宝明 加2分 帮租客代购")
    assert cmd is not None and cmd.model_dump()["target"] == "董宝明"


@pytest.mark.parametrize("text", [
    "收到，马上通知商户们", "好的收到，我马上转发到房东群", "收到收到，已通知租客们[OK]",
    "已收到 已转发租客群", "收到，已传达到每个商户", "嗯嗯 收到", "收到，已通知各位房东",
    "收到，通知已转发各商户", "收到，立即落实到位", "收到 已转发群里", "收到，今天就通知下去",
    "收到，我这边马上通知", "谢谢，收到", "已收到通知", "通知已收到", "转发了", "已发群里",
    "收到，已发到租客群", "已发给租客了", "收到了哈",
    # Done as the notice asked: as good as an acknowledgement.
    "已落实", "已安排到位", "都已经落实了", "已落实，谢谢领导",
])
def test_acknowledgements_that_say_where_it_was_passed_on(text: str) -> None:
    assert _parsed(text) == Ack()


@pytest.mark.parametrize("text", ["嗯嗯", "哦", "通知已转发了吗", "就", "谢谢", "已发", "发了",
                                  "转发了吗", "已发到群里了吗", "收到通知"])
def test_not_acknowledgements(text: str) -> None:
    assert not isinstance(_parsed(text), Ack)


@pytest.mark.parametrize("text", [
    "今天楼道和公共区域都消毒了", "消毒已做✅", "楼道消毒了", "今天上午楼梯走廊已消毒完成",
    "房东上报 今天给楼道消了毒",
])
def test_disinfection_said_in_passing(text: str) -> None:
    cmd = _parsed(text)
    assert isinstance(cmd, LandlordReport) and cmd.kind == "disinfect"


@pytest.mark.parametrize("text", ["消毒了吗", "楼道消毒了没", "要消毒了", "消毒"])
def test_disinfection_asked_or_planned_is_no_report(text: str) -> None:
    assert _parsed(text) is None


@pytest.mark.parametrize("text", ["查一下我的积分", "看看我的积分", "帮我查下积分", "我现在几分",
                                  "我多少分", "我的分数", "积分 多少", "请问我现在有多少积分",
                                  "我排第几", "我的排名"])
def test_more_score_questions(text: str) -> None:
    assert _parsed(text) == Score()


@pytest.mark.parametrize(("text", "name", "origin"), [
    ("我是新来的租客黄磊，刚从贵州贵阳到义乌，电话18600001234", "黄磊", "贵州贵阳"),
    ("您好，我是302的租客张三，今天从安徽阜阳回义乌了，手机：139 1234 5678", "张三", "安徽阜阳"),
    ("你好房东 我是李明 湖南邵阳人 今天回来了 电话13712345678", "李明", "湖南邵阳"),
    ("房东好 我昨天晚上坐火车从江西赣州回到义乌 我叫杨洋 手机13812345678", "杨洋", "江西赣州"),
    ("租客返回 王明 13800138000 开车从湖南长沙回来", "王明", "湖南长沙"),
])
def test_returns_announced_in_passing(text: str, name: str, origin: str) -> None:
    cmd = _parsed(text)
    assert isinstance(cmd, TenantReturn) and (cmd.name, cmd.origin) == (name, origin)


@pytest.mark.parametrize(("text", "checked", "opened"), [
    ("巡查十家，营业八家，无异常", 10, 8),
    ("今日打卡 巡查10家 开门7家 已消毒 体温正常", 10, 7),
    ("今天巡查了十家，开门九家，体温都正常，已消毒", 10, 9),
])
def test_checkins_with_numerals_and_day_words(text: str, checked: int, opened: int) -> None:
    cmd = _parsed(text)
    assert isinstance(cmd, ShopCheckin) and (cmd.checked, cmd.opened) == (checked, opened)


@pytest.mark.parametrize("text", ["巡查十个小区", "巡查组", "今日打卡 体温36.5"])
def test_not_checkins(text: str) -> None:
    assert not isinstance(_parsed(text), ShopCheckin)


@pytest.mark.parametrize(("text", "cls"), [
    ("王丽 13812345678 湖南衡阳 租客返回", TenantReturn),
    ("@董宝明 王丽 13812345678 湖南衡阳 租客返回", TenantReturn),
    ("楼道已消毒 房东上报", LandlordReport),
    ("帮302买了菜 房东上报", LandlordReport),
    ("在岗120 返岗3 隔离2 异常0 企业日报", EnterpriseReport),
    ("在场85 新进5 异常0，工作卡", WorkCard),
])
def test_a_command_word_said_last(text: str, cls: type[Command]) -> None:
    assert type(_parsed(text)) is cls


@pytest.mark.parametrize("text", [
    "请大家 租客返回", "什么是 房东上报", "今天的 工作卡", "302的事 房东上报",
    "王丽 1381234567 湖南衡阳 租客返回",
])
def test_a_command_word_said_last_is_taken_only_for_a_whole_command(text: str) -> None:
    """Talk about a command is no command, and gets no hint either."""
    assert _parsed(text) is None


@pytest.mark.parametrize("text", [
    "登记：王丽 13812345678 湖南衡阳", "我要登记 王丽 13812345678 湖南衡阳",
    "麻烦登记一下 王丽 13812345678 来自湖南衡阳 谢谢",
])
def test_a_return_under_the_bare_word_register(text: str) -> None:
    cmd = _parsed(text)
    assert isinstance(cmd, TenantReturn) and (cmd.name, cmd.origin) == ("王丽", "湖南衡阳")


@pytest.mark.parametrize("text", ["登记了吗", "登记一下", "登记 王丽", "复工登记了吗"])
def test_register_without_a_mobile_is_chatter(text: str) -> None:
    assert _parsed(text) is None


@pytest.mark.parametrize(("text", "kind", "detail"), [
    ("代办：帮王明取快递", "errand", "帮王明取快递"),
    ("代办 帮301买菜", "errand", "帮301买菜"),
    ("已代购 帮302租客买菜", "errand", "帮302租客买菜"),
    ("违规：302租客私自外出", "violation", "302租客私自外出"),
    ("调解：301和302噪音纠纷已调解", "mediation", "301和302噪音纠纷已调解"),
    ("房东上报 调解了一起纠纷", "mediation", "调解了一起纠纷"),
    ("房东上报 帮租客取快递", "errand", "帮租客取快递"),
    ("房东上报 违规情况：202租客聚集打牌", "violation", "202租客聚集打牌"),
])
def test_reports_with_the_kind_first_or_said_in_other_words(text: str, kind: str,
                                                             detail: str) -> None:
    assert _parsed(text) == LandlordReport(kind=kind, detail=detail)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["代办", "代办事项", "代购 口罩 有人要吗", "代办 12", "违规",
                                  "调解一下", "待办"])
def test_kind_words_alone_or_asked_are_no_report(text: str) -> None:
    assert not isinstance(_parsed(text), LandlordReport)


@pytest.mark.parametrize(("text", "answer"), [
    ("答复1号 已处理", "已处理"),
    ("回复1号反馈 已处理", "已处理"),
    ("回复 第1条 已处理", "已处理"),
    ("答复 第 1 条：已处理", "已处理"),
    ("回复1号楼的灯修好了", "号楼的灯修好了"),  # 1号楼 is a building: the words stay
    ("回覆1 已處理", "已处理"),  # 繁体
])
def test_answers_that_say_which_ticket_in_words(text: str, answer: str) -> None:
    cmd = _parsed(text)
    assert isinstance(cmd, Answer) and (cmd.ticket_id, cmd.text) == (1, answer)


@pytest.mark.parametrize(("text", "opened"), [
    ("1号2号3号开门 其他关门", [True, True, True]),  # were read as closed
    ("3号 未开门", [False]),
    ("3号 开门 2人；4号 关门", [True, False]),
])
def test_a_shops_own_word_says_whether_it_is_open(text: str, opened: list[bool]) -> None:
    cmd = _parsed(text)
    assert cmd is not None
    assert [e["is_open"] for e in cmd.model_dump()["entries"]] == opened


@pytest.mark.parametrize(("text", "expected"), [
    # A registration written as a form: labels and colons, on one line or several.
    ("姓名：陈晨 电话：13812340003 从哪里来：江西九江",
     TenantReturn(name="陈晨", mobile="13812340003", origin="江西九江")),
    ("姓名:陈晨\n电话:13812340004\n来自:江西九江",
     TenantReturn(name="陈晨", mobile="13812340004", origin="江西九江")),
    ("名字：孙丽 手机号：13812340005 户籍：四川南充",
     TenantReturn(name="孙丽", mobile="13812340005", origin="四川南充")),
    # 消杀 (the word of 2020 for disinfection) done as work.
    ("今天对出租房进行了全面消杀", LandlordReport(kind="disinfect")),
    ("楼道做了一次消毒", LandlordReport(kind="disinfect")),
    # 投诉/建议 set apart start a feedback, said from other words than 反馈.
    ("投诉：隔壁装修太吵", Feedback(text="隔壁装修太吵", unmarked=True)),
    ("我想投诉一下，隔壁太吵", Feedback(text="隔壁太吵", unmarked=True)),
    ("反馈：隔壁太吵", Feedback(text="隔壁太吵")),
    # An errand told as done, without a keyword.
    ("帮302租客代买了蔬菜", LandlordReport(kind="errand", detail="帮302租客代买了蔬菜",
                                          unmarked=True)),
    ("今天帮王明取了快递", LandlordReport(kind="errand", detail="今天帮王明取了快递",
                                         unmarked=True)),
])
def test_forms_work_words_and_plain_sentences(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_more_ways_of_the_same_commands() -> None:
    said = parse("你好，我是新来的租客，叫周敏，从湖北荆州回来，电话13812340011")
    assert isinstance(said, TenantReturn) and said.name == "周敏"  # not 叫周敏
    counts = parse("今天巡查了8家 营业了5家")
    assert isinstance(counts, ShopCheckin) and (counts.checked, counts.opened) == (8, 5)
    # A number before a state word is that state's, whatever the spacing.
    for text in ("今日巡查12家 10家营业 2家关门", "巡查12家 营业10家 2家关门",
                 "巡查12家 营业10家 关门2家"):
        counts = parse(text)
        assert isinstance(counts, ShopCheckin), text
        assert (counts.checked, counts.opened, counts.closed) == (12, 10, 2), text
    for text in ("已完成今日消毒工作", "今天出租屋消毒了"):
        assert parse(text) == LandlordReport(kind="disinfect"), text
    for text in ("我这周积分怎么样", "我扣分了吗", "查一下分", "看看我的分"):
        assert parse(text) == Score(), text


@pytest.mark.parametrize(("text", "expected"), [
    # Who has not acknowledged is what 进度 shows (said so, it is refused silently where 进度
    # is not used: 谁还没收到 may be about anything there).
    ("谁还没收到", Progress(unmarked=True)),
    ("哪些群还没回复", Progress(unmarked=True)),
    ("通知1进度", Progress(notice_id=1)),
    ("通知#27的进度", Progress(notice_id=27)),
    ("今天的统计", Stats()),
    ("看一下统计", Stats()),
    ("有什么待办", Todo()),
])
def test_commanders_questions_in_other_words(text: str, expected: Command) -> None:
    assert _parsed(text) == expected


@pytest.mark.parametrize("text", ["谁还没收到钱", "我还没收到", "排名"])
def test_not_progress_questions(text: str) -> None:
    assert not isinstance(_parsed(text), Progress)
