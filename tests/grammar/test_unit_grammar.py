"""企业登记, 员工登记, 企业日报, 工作卡: the forms people write parse to their commands; botched
ones are ParseErrors with the command's form; nothing is read half (一百二十 is not 一)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import (
    EnterpriseRegister,
    EnterpriseReport,
    ParseError,
    TenantReturn,
    WorkCard,
    WorkerRegister,
    normalise,
    parse,
)
from bot.grammar.unit import USAGE


@pytest.mark.parametrize(("text", "values"), [
    ("企业日报 在岗120 返岗3 隔离2 异常0", (120, 3, 2, 0)),
    ("企业日报：在岗120人，返岗3人，隔离2人，异常0", (120, 3, 2, 0)),
    ("企业日报 在岗１２０ 返岗３ 隔离２ 异常０", (120, 3, 2, 0)),
    ("企业日报 异常1 隔离2 返岗3 在岗120", (120, 3, 2, 1)),
    ("企业日报 在岗 120 人 返岗 三 人 隔离 两 人 体温异常 0", (120, 3, 2, 0)),
    ("[强]企业日报 在岗120 返岗3 居家观察2 发热1", (120, 3, 2, 1)),
    # Without 企业日报: every count said, and nothing else.
    ("今日在岗118人，返岗2人，隔离3人，无异常", (118, 2, 3, 0)),
    ("在岗120 返岗3 隔离2 异常0", (120, 3, 2, 0)),
])
def test_enterprise_reports(text: str, values: tuple[int, int, int, int]):
    cmd = parse(text)
    assert isinstance(cmd, EnterpriseReport)
    assert (cmd.on_duty, cmd.returned, cmd.isolated, cmd.anomalies) == values


@pytest.mark.parametrize(("text", "problem"), [
    ("企业日报 在岗120 返岗3 隔离2", "缺少异常人数"),
    ("企业日报", "缺少在岗人数"),
    ("企业日报 在岗一百二十 返岗3 隔离2 异常0", "在岗人数应为"),
    ("企业日报 在岗120.5 返岗3 隔离2 异常0", "在岗人数应为"),
    ("企业日报 在岗120 返岗3 隔离2 异常0 异常1", "异常写了两次"),
    ("企业日报 在岗9999999 返岗3 隔离2 异常0", "在岗人数应为"),
])
def test_botched_enterprise_reports(text: str, problem: str):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert problem in err.value.hint and USAGE["EnterpriseReport"] in err.value.hint


@pytest.mark.parametrize(("text", "values", "problems"), [
    ("工作卡 在场85 新进5 异常0 问题：口罩缺200个", (85, 5, 0), "口罩缺200个"),
    ("工作卡 在场85 新进5 异常0", (85, 5, 0), ""),
    ("每日工作卡：在场85人，新进5人，异常1，缺口罩200个", (85, 5, 1), "缺口罩200个"),
    ("今日工作卡 到岗85 新增5 体温异常0 需协调：钢筋未到", (85, 5, 0), "钢筋未到"),
    ("今天工作卡 在场85 新进5 异常0", (85, 5, 0), ""),
    ("今日在场80人，新进场3人，无异常", (80, 3, 0), ""),
])
def test_work_cards(text: str, values: tuple[int, int, int], problems: str):
    cmd = parse(text)
    assert isinstance(cmd, WorkCard)
    assert (cmd.on_site, cmd.arrivals, cmd.anomalies, cmd.problems) == (*values, problems)


def test_a_work_card_without_its_counts_is_a_hint():
    with pytest.raises(ParseError) as err:
        parse("工作卡 问题：口罩缺200个")
    assert "缺少在场人数" in err.value.hint


def test_enterprise_register_reads_labelled_fields():
    cmd = parse("企业登记 华鑫针织 地址：长春路12号，联络员：孙涛 13905791234；员工１２０人 "
                "车间：一车间、二车间 宿舍：一号宿舍 已复工")
    assert cmd == EnterpriseRegister(
        name="华鑫针织", address="长春路12号", liaison="孙涛", mobile="13905791234",
        headcount=120, workshops=("一车间", "二车间"), dorms=("一号宿舍",), status="reopened")
    assert parse("企业登记 已备案") == EnterpriseRegister(status="filed")


@pytest.mark.parametrize("text", ["企业登记 华鑫针织 已复工 未复工", "企业登记 华鑫针织 联络员:孙涛 12345678901"])
def test_botched_enterprise_registers(text: str):
    with pytest.raises(ParseError):
        parse(text)


def test_a_worker_written_as_a_comma_list():
    """员工登记：a，b，c: the workshop is one field; the mobile is not taken with it."""
    cmd = parse(normalise("员工登记：赵刚，13905790005，河南商丘，一车间，居家观察"))
    assert isinstance(cmd, WorkerRegister)
    assert (cmd.name, cmd.mobile, cmd.origin, cmd.groups, cmd.watch) == (
        "赵刚", "13905790005", "河南商丘", ("一车间",), True)


def test_worker_register_takes_groups_watch_and_id():
    cmd = parse("员工登记 @张伟 张伟 13905790001 来自安徽阜阳 2月18日返岗 一车间 "
                "身份证11010519491231002X 居家观察")
    assert isinstance(cmd, WorkerRegister)
    assert (cmd.name, cmd.mobile, cmd.origin, cmd.groups, cmd.watch, cmd.isolated) == (
        "张伟", "13905790001", "安徽阜阳", ("一车间",), True, False)
    assert cmd.id_number == "11010519491231002X"
    assert cmd.arrival is not None and (cmd.arrival.month, cmd.arrival.day) == (2, 18)


def test_a_worker_card_is_never_taken_for_a_tenants_return():
    # It holds a mobile and 返回, which the keyword-less tenant return would read.
    cmd = parse("员工登记 张伟 13905790001 来自安徽阜阳 2月18日返回")
    assert isinstance(cmd, WorkerRegister) and not isinstance(cmd, TenantReturn)


@pytest.mark.parametrize(("text", "problem"), [
    ("员工登记 张伟 来自安徽阜阳", "缺少手机号"),
    ("员工登记 张伟 13905790001", "缺少来自哪里"),
    ("员工登记 张伟 13905790001 来自安徽 居家观察 隔离", "只能写一个"),
    ("员工登记 张伟 13905790001 来自安徽 隔离 解除隔离", "只能写一个"),
])
def test_botched_worker_registers_name_the_worker_form(text: str, problem: str):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert problem in err.value.hint and USAGE["WorkerRegister"] in err.value.hint
    assert "租客" not in err.value.hint


def test_reports_said_without_their_keyword_are_refused_silently_elsewhere():
    report, card = parse("在岗120 返岗3 隔离2 异常0"), parse("在场85 新进5 异常0")
    assert isinstance(report, EnterpriseReport) and report.unmarked
    assert isinstance(card, WorkCard) and card.unmarked
    assert not parse("企业日报 在岗120 返岗3 隔离2 异常0").unmarked  # type: ignore[union-attr]


def test_a_new_worker_is_a_worker_card():
    cmd = parse("新员工 王芳 13905790007 江西上饶 二车间")
    assert isinstance(cmd, WorkerRegister)
    assert (cmd.name, cmd.origin, cmd.groups) == ("王芳", "江西上饶", ("二车间",))


def test_the_words_in_chat_are_not_commands():
    for text in ("企业日报发了吗", "工作卡明天再说", "员工登记好了", "我们企业登记过了",
                 "在岗120人", "今天在岗的人很多", "我们厂在岗118人，返岗2人，隔离3人，无异常"):
        assert not isinstance(parse(text), EnterpriseReport | WorkCard | WorkerRegister
                              | EnterpriseRegister), text


@given(st.integers(0, 100_000), st.integers(0, 100_000), st.integers(0, 100_000),
       st.integers(0, 100_000))
def test_any_counts_round_trip(a: int, b: int, c: int, d: int):
    cmd = parse(f"企业日报 在岗{a} 返岗{b} 隔离{c} 异常{d}")
    assert isinstance(cmd, EnterpriseReport)
    assert (cmd.on_duty, cmd.returned, cmd.isolated, cmd.anomalies) == (a, b, c, d)
    card = parse(f"工作卡 在场{a}人 新进{b}人 异常{c}")
    assert isinstance(card, WorkCard) and (card.on_site, card.arrivals, card.anomalies) == (
        a, b, c)
