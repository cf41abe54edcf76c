"""normalise: what the parser is handed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import normalise

BOT = ["小助手"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("租客返回　王明　１３８００１３８０００", "租客返回 王明 13800138000"),
        (
            "返回登记：王明，电话13800138000，湖南长沙回来",
            "返回登记:王明,电话13800138000,湖南长沙回来",
        ),
        ("王明、李红、张三", "王明,李红,张三"),
        ("体温？３６．５℃", "体温?36.5°C"),
        ("  帮助 \n\t ", "帮助"),
        ("@小助手\u2005帮助", "帮助"),
        ("@小助手 帮助", "帮助"),
        ("帮助 @小助手", "帮助"),
        ("帮助@小助手", "帮助"),
        ("@小助手\u2005@小助手\u2005帮助", "帮助"),
        ("@张三\u2005体温36.5", "@张三 体温36.5"),
        ("体温36.5 @张三", "体温36.5 @张三"),
        ("帮\u200b助", "帮助"),
        ("ＨＥＬＰ", "HELP"),
        (
            "「张三：明天几点消毒？」\n- - - - - - - - - - - - - - -\n房东上报 消毒",
            "房东上报 消毒",
        ),
        (
            "「张三：租客返回 李四 13900139000\n湖南」\n- - - - - - - - - - - - - - -\n收到",
            "收到",
        ),
        ("房东上报 消毒\n- - - - - - - - - - - - - - -\n「张三：消毒了吗」", "房东上报 消毒"),
        ("收到\n「张三：明天几点消毒？」", "收到"),
        ("「好」的", "「好」的"),
        ("", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    """Width, punctuation, whitespace, bot mentions and quote blocks are normalised."""
    assert normalise(raw, bot_names=BOT) == expected


def test_other_bot_names() -> None:
    """Mentions of any of the bot's names are stripped; others are kept."""
    assert normalise("@助手 帮助", bot_names=["小助手", "助手"]) == "帮助"
    assert normalise("@小助手 帮助") == "@小助手 帮助"


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    """Normalising twice changes nothing, so callers may normalise again safely."""
    once = normalise(text, bot_names=BOT)
    assert normalise(once, bot_names=BOT) == once
    assert "\n" not in once and "  " not in once and once == once.strip()


@pytest.mark.parametrize(("text", "expected"), [
    ("消毒,并回复收到", "消毒，并回复收到"),
    ("电话:138", "电话：138"),
    ("明天8:00开会", "明天8:00开会"),
    ("3,4,5", "3,4,5"),
    ("收到!", "收到！"),
])
def test_chinese_punctuation_is_restored_in_prose(text, expected):
    from bot.grammar import restore_cjk_punctuation
    assert restore_cjk_punctuation(text) == expected
