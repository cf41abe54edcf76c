"""Rendering for official channels: every part within the platform's UTF-8 byte limit, the tag
on every part, the text recovered from the parts, the keyword where the robot needs it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.base import Limits, Rendering
from bot.channels.render import keyword_suffix, split_utf8, text_payloads
from bot.channels.sim import SimOfficialChannel

TAGS = st.sampled_from(["", "【通知#7】", "【紧急通知#12345】"])
# Chinese, ASCII, emoji (4 bytes), full-width punctuation and the separators.
TEXT = st.text(alphabet=st.sampled_from(list("通知各社区请于今日完成消毒abc XYZ，。；\n😷１２")),
               max_size=3000)
MARKER = re.compile(r"^\((\d+)/(\d+)\)")


def _recover(parts: list[str], tag: str, suffix: str) -> str:
    body = []
    for i, part in enumerate(parts, 1):
        assert part.startswith(tag)
        rest = part[len(tag):]
        if len(parts) > 1:
            m = MARKER.match(rest)
            assert m is not None and int(m.group(1)) == i and int(m.group(2)) == len(parts)
            rest = rest[m.end():]
        assert rest.endswith(suffix)
        body.append(rest[:len(rest) - len(suffix)] if suffix else rest)
    return "".join(body)


@settings(max_examples=300, deadline=None)
@given(text=TEXT, tag=TAGS, max_bytes=st.integers(min_value=60, max_value=3000),
       keyword=st.sampled_from(["", "通知", "tierbot"]))
def test_every_part_fits_carries_the_tag_and_the_text_comes_back(text, tag, max_bytes, keyword):
    suffix = keyword_suffix(tag + text, keyword)
    parts = split_utf8(text, max_bytes=max_bytes, tag=tag, suffix=suffix)
    assert all(len(p.encode()) <= max_bytes for p in parts)
    assert _recover(parts, tag, suffix) == text
    if keyword:
        assert all(keyword in p for p in parts)


@pytest.mark.parametrize(("limit", "parts"), [(2048, 3), (4096, 2), (19_999, 1)])
def test_a_long_chinese_notice_splits_by_bytes_not_characters(limit, parts):
    # 1,800 Chinese characters are 5,400 bytes: three WeCom texts, two WeCom markdowns, one
    # DingTalk text (a character limit of 2,000 would have sent one oversized text to WeCom).
    text = "请各社区于今日完成楼道消毒。" * 128 + "谢谢"
    out = split_utf8(text, max_bytes=limit, tag="【通知#3】")
    assert len(out) == parts
    assert all(len(p.encode()) <= limit for p in out)


def test_a_limit_with_no_room_for_text_is_refused():
    with pytest.raises(ValueError, match="no room"):
        split_utf8("通知" * 100, max_bytes=20, tag="【紧急通知#123456】")


def test_the_keyword_is_added_once_and_only_where_missing():
    assert keyword_suffix("请回复收到", "通知") == "\n通知"
    assert keyword_suffix("【通知#1】请回复收到", "通知") == ""
    assert keyword_suffix("anything", "") == ""


def test_sim_payloads_mention_on_the_first_part_only():
    channel = SimOfficialChannel("robot", limits=Limits(per_minute=20, max_body_bytes=300),
                                 keyword="通知")
    payloads = channel.render(Rendering(text="消毒" * 200, mentions=("u1",), tag="【通知#2】"))
    assert len(payloads) > 1
    assert [p.body["mentions"] for p in payloads] == [["u1"]] + [[]] * (len(payloads) - 1)
    assert all(p.size == len(p.body["text"].encode()) <= 300 for p in payloads)
    assert [p.part for p in payloads] == list(range(1, len(payloads) + 1))
    assert {p.parts for p in payloads} == {len(payloads)}
    # The tag already holds the keyword: nothing is appended.
    assert not any(p.body["text"].endswith("\n通知") for p in payloads)
    plain = text_payloads(Rendering(text="hi"), max_bytes=100, keyword="通知")
    assert plain[0].body["text"] == "hi\n通知"
