"""The shop family's grammar: check-ins written the ordinary ways, reopening registrations,
reviews and 统计; botched forms get hints; chatter and other families' messages stay theirs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import (
    BareCheckin,
    HealthMention,
    LandlordReport,
    ParseError,
    ReopenConfirm,
    ReopenList,
    ReopenRegister,
    ReopenReview,
    ShopCheckin,
    Stats,
    Temperature,
    parse,
)


def _shops(cmd: ShopCheckin) -> dict[str, tuple[object, ...]]:
    return {e.shop: (e.is_open, e.staff, e.readings, e.disinfected) for e in cmd.entries}


@pytest.mark.parametrize(("text", "checked", "opened", "problems"), [
    ("巡查 10家 营业3家 无异常", 10, 3, ""),
    ("巡查：10家，营业3家，无异常。", 10, 3, ""),
    ("巡查10家，开门8家，关门2家，均已消毒，无发热", 10, 8, ""),
    ("今天巡查完毕，10家商铺全部营业，员工体温正常", 10, 10, ""),
    ("巡查 10家 关门4家", 10, 6, ""),
    ("打卡 巡查十家 营业三家", 10, 3, ""),
    ("巡查 10家 营业3家 问题：5号门口垃圾堆放", 10, 3, "5号门口垃圾堆放"),
    ("巡查 10家 营业3家 5号门口有人聚集打牌", 10, 3, "5号门口有人聚集打牌"),
    ("ＮＯ巡查 １０家 营业３家", None, None, None),
    # The patrol said without its keyword first.
    ("今天查了10家，8家开着，2家没开", 10, 8, ""),
    ("10家商铺全部巡查，开门8家", 10, 8, ""),
    ("10家都检查了吗", None, None, None),
])
def test_row_counts(text, checked, opened, problems):
    cmd = parse(text)
    if problems is None:
        assert not isinstance(cmd, ShopCheckin)
        return
    assert isinstance(cmd, ShopCheckin), cmd
    assert (cmd.checked, cmd.opened, cmd.problems) == (checked, opened, problems)


@pytest.mark.parametrize(("text", "shops"), [
    ("今日巡查：1号、2号开门，员工体温正常，已消毒",
     {"1号": (True, None, (), None), "2号": (True, None, (), None)}),
    ("3号 开门 2人 36.5 36.7", {"3号": (True, 2, (36.5, 36.7), None)}),
    ("打卡 3号 开门 2人 36.5 36.7；4号 关门",
     {"3号": (True, 2, (36.5, 36.7), None), "4号": (False, None, (), None)}),
    ("铺长打卡 1号关门 2号营业 3人 体温36.6 已消毒",
     {"1号": (False, None, (), None), "2号": (True, 3, (36.6,), True)}),
    ("3号商位 未开门", {"3号商位": (False, None, (), None)}),
    ("３号　开门　２人　３６．５", {"3号": (True, 2, (36.5,), None)}),
    ("巡查\n1号 开门 1人 36.5\n2号 关门\n3号 开门 2人 36.6 36.8 未消毒",
     {"1号": (True, 1, (36.5,), None), "2号": (False, None, (), None),
      "3号": (True, 2, (36.6, 36.8), False)}),
])
def test_per_shop_lines(text, shops):
    cmd = parse(text)
    assert isinstance(cmd, ShopCheckin), cmd
    assert _shops(cmd) == shops


def test_staff_fever_words_and_readings():
    cmd = parse("打卡 3号 开门 2人 36.5 38.2 发烧")
    assert isinstance(cmd, ShopCheckin) and cmd.fever_said
    assert _shops(cmd)["3号"][2] == (36.5, 38.2)
    denied = parse("巡查 10家 营业3家 无人发烧")
    assert isinstance(denied, ShopCheckin) and not denied.fever_said


@pytest.mark.parametrize(("text", "hint_starts"), [
    ("巡查 10家 营业12家", "营业家数不能多于巡查家数"),
    ("打卡", "没看懂巡查情况"),
    ("巡查", "没看懂巡查情况"),
    ("3号 开门 2人 46.5", "体温应在34.0到43.0℃之间"),
    ("复工登记 5号 李娜 13912345678 员工3人", "请确认防疫承诺"),
    ("复工登记 5号 李娜 员工3人 已承诺", "缺少店主手机号"),
    ("复工登记 5号 李娜 23912345678 员工3人 已承诺", "手机号应为11位"),
    ("复工登记 5号 李娜 13912345678 已承诺", "缺少员工人数"),
    ("复工登记 李娜 13912345678 员工3人 已承诺", "缺少商位"),
    ("复工登记 5号 13912345678 员工3人 已承诺", "缺少店主姓名"),
    ("复工登记 5号 李娜 13912345678 员工3人 外地返回5人 已承诺", "外地返回人数不能多于员工人数"),
    ("复工审核 2", "请写明通过或驳回"),
    ("复工审核 驳回 不行", "缺少登记编号"),
    ("复工审核 2 驳回", "驳回请写明原因"),
    ("复工确认", "缺少登记编号"),
])
def test_botched_forms_get_one_line_hints(text, hint_starts):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert err.value.hint.startswith(hint_starts)
    assert "\n" not in err.value.hint


def test_reopening_forms():
    reg = parse("复工登记 3号商位 张伟 13812345678 员工4人 外地返回1人 消毒液口罩已备 已承诺")
    assert reg == ReopenRegister(shop="3号商位", owner="张伟", mobile="13812345678", staff=4,
                                 from_elsewhere=1, supplies="消毒液口罩已备", committed=True)
    owner_word = parse("申请复工：5号 店主:李娜 电话13912345678 员工三人 外地无 承诺书已签")
    assert isinstance(owner_word, ReopenRegister)
    assert (owner_word.shop, owner_word.owner, owner_word.staff, owner_word.from_elsewhere) == (
        "5号", "李娜", 3, 0)
    assert parse("复工确认 #3") == ReopenConfirm(registration_id=3)
    assert parse("复工审核 3 同意") == ReopenReview(registration_id=3, approve=True)
    assert parse("复工审核 3 驳回：消毒用品不足") == ReopenReview(
        registration_id=3, approve=False, reason="消毒用品不足")
    assert parse("复工列表") == ReopenList()
    assert parse("复工登记怎么办？") is None


def test_stats_forms():
    assert parse("统计") == Stats()
    assert parse("统计一下") == Stats()
    assert parse("统计 长春社区") == Stats(node="长春社区")
    assert parse("统计数据") == Stats()
    assert parse("统计表发群里了") is None


@pytest.mark.parametrize(("text", "cls"), [
    ("体温 36.6", Temperature),  # a tenant's reading stays a reading
    ("打卡 体温36.5", Temperature),  # a tenant's daily 打卡 of a temperature, not a check-in
    ("今天已经消毒了", LandlordReport),
    ("我发烧了", HealthMention),
    ("打卡了吗", type(None)),
    ("3号楼开门了吗", type(None)),
    ("打卡机坏了", type(None)),
    ("3号开门了", BareCheckin),  # quiet outside shop rows (see the handler's route)
])
def test_other_messages_keep_their_meaning(text, cls):
    assert isinstance(parse(text), cls)


_pieces = st.sampled_from([
    "巡查", "打卡", "复工登记", "复工审核", "复工确认", "统计", "3号", "10家", "营业", "开门",
    "关门", "2人", "36.5", "38.2", "46", "，", "、", "；", "\n", " ", "已消毒", "未消毒",
    "问题：", "张伟", "13812345678", "员工4人", "已承诺", "通过", "驳回", "十", "🙂", "[强]",
])


@given(st.lists(_pieces, max_size=14).map("".join))
def test_the_family_never_crashes(text):
    """Any mix of the family's words parses to a command, None, or a hint; never an
    exception of another kind."""
    try:
        parse(text)
    except ParseError as exc:
        assert exc.hint
