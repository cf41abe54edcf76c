"""The authorisation matrix: every command x every role and tier of the demo chain (a stranger
and a removed person included): what is refused is exactly what 帮助 does not list."""

from __future__ import annotations

import re

import pytest

from bot.app import BotApp
from bot.config import Settings
from tests.conftest import Chat, DemoChain

# (the word 帮助 lists the command under, a message that uses it). Side effects are harmless:
# names and numbers that match nothing. 收到 and relays are quiet (never answered) and left out.
SAMPLES: tuple[tuple[str, str], ...] = (
    ("绑定", "绑定 ZZZZ99"),
    ("绑定群", "绑定群 ZZZZ99"),
    ("租客返回", "租客返回 王五 13800001111 来自湖南长沙"),
    ("房东上报", "房东上报 返回 王六 13800001112 湖南长沙"),
    ("体温", "体温 36.6"),
    ("房东上报", "房东上报 消毒"),
    ("我的租客", "我的租客"),
    ("通知", "预览 通知 测试"),
    ("进度", "进度"),
    ("定时通知", "定时通知 明天8:00 测试"),
    ("定时列表", "定时列表"),
    ("取消定时", "取消定时 99"),
    ("反馈", "反馈 楼道灯坏了"),
    ("答复", "答复 99 好的"),
    ("待办", "待办"),
    ("加分/扣分", "加分 @无名氏 1 测试"),
    ("待核查", "待核查"),
    ("核查", "核查 99 通过"),
    ("积分", "积分"),
    ("积分明细", "积分明细"),
    ("申诉", "申诉 99 理由"),
    ("奖励", "奖励"),
    ("好人候选", "好人候选"),
    ("确认", "确认 99"),
    ("不是", "不是 99"),
    ("移除", "移除 无名氏"),
    ("退租", "退租 无名氏"),
)
REFUSAL = re.compile(r"^「[^」]+」(?:由.+使用，您没有权限。|只能在.+使用。)")
REMOVED = "sim-wangming"  # 王明, a tenant whose tenancy the landlord ends first


@pytest.fixture
def settings(settings: Settings, db_url: str) -> Settings:
    """The matrix sends hundreds of commands per contact, and some 2,000 in all, within one
    fake minute; the flood rule and the hourly and daily caps (tests/test_replies.py) would
    hold their answers back, so they are set out of reach here. (`db_url` is named so that
    pytest 8.4 sees the parametrised fixture behind the overridden one.)"""
    pacing = settings.pacing.model_copy(update={
        "commands_per_minute": 1_000_000, "hourly_cap": 1_000_000, "daily_cap": 1_000_000})
    return settings.model_copy(update={"pacing": pacing})


def listed(help_text: str) -> set[str]:
    return {line[2:].split(" ", 1)[0] for line in help_text.splitlines()
            if line.startswith("• ")}


async def test_what_is_refused_is_exactly_what_help_does_not_list(
        bot: BotApp, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "退租 王明")
    assert chat.replies(chain.tenant_group) == ["已为 王* 办理退租，不再列入租客名单。"]
    groups = [chain.subdistrict_group, chain.community_group, chain.team_group,
              chain.landlords_group, chain.tenant_group, chain.ying_group, chain.shop_group]
    senders = [chain.commander, chain.community_commander, chain.secretary,
               chain.team_commander, chain.team_member, chain.landlord, chain.captain,
               chain.tenant, chain.ying_tenant, REMOVED, "sim-stranger"]
    mismatches: list[str] = []
    checked = refused = 0
    for room in groups:
        for sender in senders:
            await chat.say(room, sender, "帮助")
            [help_text] = chat.replies(room)
            offered = listed(help_text)
            for word, text in SAMPLES:
                await chat.say(room, sender, text)
                replies = chat.replies(room)
                was_refused = bool(replies) and bool(REFUSAL.match(replies[0]))
                checked += 1
                refused += was_refused
                if was_refused == (word in offered):
                    mismatches.append(f"{room} {sender} {text!r}: help lists {word}: "
                                      f"{word in offered}, reply {replies}")
    assert mismatches == []
    # The matrix is not trivial: both outcomes occur, often.
    assert checked == len(groups) * len(senders) * len(SAMPLES)
    assert 0.3 * checked < refused < 0.95 * checked
