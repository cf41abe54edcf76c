"""Permissions declared once per route: dispatch, 帮助 and refusals read the same rule."""

from __future__ import annotations

from bot.permission import GROUP_COMMANDER, LANDLORD, STAFF, Rule
from models import Notice
from tests.conftest import Chat, DemoChain, count


async def test_help_in_the_landlords_group_offers_a_landlord_no_notices(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.landlords_group, chain.landlord, "帮助")
    [listing] = chat.replies(chain.landlords_group)
    offered = {line.split()[1] for line in listing.splitlines() if line.startswith("• ")}
    assert not offered & {"通知", "定时通知", "定时列表", "取消定时", "进度"}
    assert {"房东上报", "积分", "我的租客"} <= offered
    await chat.say(chain.landlords_group, chain.landlord, "通知 大家注意")
    assert chat.replies(chain.landlords_group) == ["「通知」由本群指挥长使用，您没有权限。"]
    assert await count(bot, Notice) == 0


async def test_refusal_names_who_may_use_the_command(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.community_group, chain.community_commander, "核查 1 通过")
    assert chat.replies(chain.community_group) == ["「核查」由社区书记使用，您没有权限。"]
    await chat.say(chain.team_group, chain.team_member, "加分 @董宝明 2 帮租客代购")
    assert chat.replies(chain.team_group) == ["「加分」由本群指挥长使用，您没有权限。"]


async def test_a_stranger_is_told_how_to_get_a_role(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, "sim-stranger", "我的租客")
    assert chat.replies(chain.tenant_group) == [
        "「我的租客」由房东使用，您没有权限。如需开通，请找指挥长要邀请码：绑定 邀请码"]


def test_rules_combine_and_name_themselves():
    either = LANDLORD | STAFF
    assert isinstance(either, Rule)
    assert either.describe(None) == "房东或指挥长、作战小组成员或书记"  # type: ignore[arg-type]
    assert GROUP_COMMANDER.describe(None) == "本群指挥长"  # type: ignore[arg-type]


def test_no_handler_checks_permission_in_its_body():
    """Every refusal comes from the route's declaration: no handler raises one itself."""
    import re
    from pathlib import Path
    for path in Path("handlers").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "NOT_PERMITTED" not in source and "WRONG_GROUP" not in source, path
        assert not re.search(r"router\.command\([^)]*roles=", source), path


async def test_what_help_offers_a_landlord_in_the_tier4_group_works_there(
        bot, chat: Chat, chain: DemoChain):
    """帮助 there lists 房东上报 (消毒/代办/违规/调解/返回): 返回 included."""
    from sqlalchemy import select

    from models import Node, TenantStay
    await chat.say(chain.landlords_group, chain.landlord, "房东上报 返回 王六 13800001112 湖南长沙")
    assert chat.replies(chain.landlords_group)[0].startswith("已登记 王* 返回（来自湖南长沙")
    async with bot.session() as s:
        node = (await s.execute(select(Node.name).join(TenantStay, TenantStay.node_id == Node.id)
                                )).scalar_one()
    assert node == "董宝明出租房"
    await chat.say(chain.landlords_group, chain.team_member, "房东上报 返回 王七 13800001113 湖南")
    assert chat.replies(chain.landlords_group) == ["「房东上报」由房东使用，您没有权限。"]
    await chat.say(chain.landlords_group, chain.landlord, "租客返回 王七 13800001113 湖南")
    assert chat.replies(chain.landlords_group) == ["「租客返回」只能在房东+租客群使用。"]
