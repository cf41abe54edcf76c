"""Relays: a re-posted tagged notice counts only from a commander, and only if it is the notice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import Group, OutboxMessage
from tests.conftest import Chat, DemoChain
from tests.handlers.test_notice import notice_rooms


async def relayed(bot) -> dict[str, bool]:
    async with bot.session() as s:
        rows = (await s.execute(select(Group.room_id, OutboxMessage.relayed)
                                .join(Group, Group.id == OutboxMessage.group_id)
                                .where(OutboxMessage.notice_id.is_not(None)))).all()
    return dict(rows)


async def drain(bot, clock) -> None:
    for _ in range(6):
        clock.advance(timedelta(seconds=5))
        await bot.idle()


async def test_anyone_elses_repost_changes_nothing(bot, chat: Chat, chain: DemoChain, clock,
                                                  transport):
    bot.settings.pacing.min_gap_seconds = 5
    await chat.say(chain.subdistrict_group, chain.commander, "紧急通知 到3级 今晚8点开会")
    # Not a commander of the group: the secretary, the team member.
    await chat.say(chain.community_group, chain.secretary, "【紧急通知#1】今晚8点开会")
    await chat.say(chain.team_group, chain.team_member, "【紧急通知#1】今晚8点开会")
    # A stranger, and the commander with any text after the tag.
    await chat.say(chain.team_group, "sim-stranger", "【紧急通知#1】今晚8点开会")
    await chat.say(chain.team_group, chain.team_commander, "【紧急通知#1】随便写点什么")
    assert chat.replies(chain.team_group) == []  # relays are quiet either way
    assert await relayed(bot) == {chain.community_group: False, chain.team_group: False}
    await drain(bot, clock)
    assert sorted(notice_rooms(transport, "【紧急通知#1】今晚8点开会")) == [
        chain.community_group, chain.team_group]


async def test_the_groups_or_the_parents_commander_relays_the_notice_itself(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    bot.settings.pacing.min_gap_seconds = 5
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 今晚8点开会，带好口罩")
    # The subdistrict commander sits in the community group (one tier down).
    await chat.say(chain.community_group, chain.commander, "【通知#1】今晚8点开会，带好口罩")
    # The team's own commander, with WeChat's spacing and punctuation changed a little.
    await chat.say(chain.team_group, chain.team_commander, "【通知#1】 今晚8点开会,带好口罩")
    assert await relayed(bot) == {chain.community_group: True, chain.team_group: True}
    await drain(bot, clock)
    assert notice_rooms(transport, "【通知#1】今晚8点开会") == []
