"""The chain file sets each group's channel and fallback: a WeChat group that a robot posts to
keeps its WeChat room, a robot-only group has transport "channel"; a notice then goes through
each group's binding."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot import ack_texts, chainfile
from bot.app import BotApp
from bot.channels.sim import SimOfficialChannel
from bot.transports.memory import MemoryTransport
from models import Group, Role
from tests.conftest import Chat, DemoChain

# What a notice to a send-only channel's group ends with (no ack link base configured).
SUFFIX_1 = ack_texts.SUFFIX_WECHAT.format(id=1)

CHAIN = """\
transport = "sim"

[[people]]
key = "zhou"
name = "周书记"
contacts = ["sim-zhou"]

[[people]]
key = "qian"
name = "钱主任"
contacts = ["sim-qian"]

[[nodes]]
key = "xc"
name = "稠城街道"
kind = "subdistrict"
roles = { commander = ["zhou"] }
groups = [{ room = "xc@chatroom", title = "稠城街道指挥群" }]

[[nodes]]
key = "jd"
name = "江东社区"
kind = "community"
parent = "xc"
roles = { commander = ["qian"] }
groups = [
  { room = "jd@chatroom", title = "江东社区指挥群", channel = "robot", fallback = "" },
  { room = "robot2", title = "江东社区钉钉群", transport = "channel", channel = "robot2" },
]
"""


def _spec(tmp_path: Path, text: str) -> chainfile.ChainSpec:
    path = tmp_path / "chain.toml"
    path.write_text(text, encoding="utf-8")
    return chainfile.load(path)


async def test_channel_and_fallback_per_group_and_a_robot_only_group(
        bot: BotApp, chat: Chat, tmp_path: Path, transport: MemoryTransport,
        robot: SimOfficialChannel, robot2: SimOfficialChannel):
    async with bot.session() as s, s.begin():
        await chainfile.import_chain(s, _spec(tmp_path, CHAIN), now=bot.now())
    async with bot.session() as s:
        groups = {g.room_id: g for g in (await s.execute(select(Group))).scalars()}
    assert (groups["jd@chatroom"].transport, groups["jd@chatroom"].account,
            groups["jd@chatroom"].fallback_account) == ("sim", "robot", "")
    assert (groups["robot2"].transport, groups["robot2"].account) == ("channel", "robot2")
    assert groups["xc@chatroom"].account == ""

    await chat.say("xc@chatroom", "sim-zhou", "通知 明早8点开会")
    # Send-only robots: the notice says how to acknowledge where the bot cannot see replies.
    assert robot.texts() == ["【通知#1】明早8点开会" + SUFFIX_1]
    assert robot2.texts("robot2") == ["【通知#1】明早8点开会" + SUFFIX_1]
    assert [s.room_id for s in transport.sent if s.text == "【通知#1】明早8点开会"] == []
    assert chat.replies("xc@chatroom")[0].startswith("【通知#1】已发出：2 个群")


@pytest.mark.parametrize(("group", "message"), [
    ('{ room = "x", title = "t", transport = "channel" }', "exists only on an official"),
    ('{ room = "x", title = "t", channel = "a", account = "b" }', "give one"),
    ('{ room = "x", title = "t", channel = "a", fallback = "a" }', "fallback is the group"),
])
def test_bindings_the_file_gets_wrong_are_refused(tmp_path: Path, group: str, message: str):
    text = CHAIN.replace('{ room = "xc@chatroom", title = "稠城街道指挥群" }', group)
    with pytest.raises(chainfile.ChainFileError, match=message):
        _spec(tmp_path, text)


async def test_a_group_invite_names_the_channel_and_fallback_of_the_room_it_binds(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport,
        robot: SimOfficialChannel):
    from datetime import timedelta

    from bot.services import chain as chains
    from models import InviteKind, Node

    async with bot.session() as s, s.begin():
        community = (await s.execute(select(Node).where(Node.name == "长春社区"))).scalar_one()
        invite = await chains.issue_invite(s, node=community, kind=InviteKind.GROUP, role=None,
                                           now=bot.now(), ttl=timedelta(days=1),
                                           channel="robot", fallback="")
        with pytest.raises(ValueError, match="only a group invite"):
            await chains.issue_invite(s, node=community, kind=InviteKind.PERSON,
                                      role=Role.MEMBER, now=bot.now(), ttl=timedelta(days=1),
                                      channel="robot")
    # Typed on WeChat in the community's staff group: the room is WeChat's, the robot sends.
    await chat.say("changchun-staff@chatroom", chain.community_commander,
                   f"绑定群 {invite.code}")
    async with bot.session() as s:
        group = (await s.execute(select(Group).where(
            Group.room_id == "changchun-staff@chatroom"))).scalar_one()
    assert (group.transport, group.account, group.fallback_account) == ("sim", "robot", "")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 今晚开会")
    # The confirmation of the binding already came through the robot, then the notice.
    assert robot.texts("changchun-staff@chatroom") == [
        "本群已绑定到「长春社区」（二级作战单元（社区））。", "【通知#1】今晚开会" + SUFFIX_1]
    assert [s.room_id for s in transport.sent if s.text == "【通知#1】今晚开会"] == [
        chain.community_group]


def test_cli_group_invites_take_a_configured_channel_only(tmp_path: Path):
    from tests.test_cli import DEMO_CHAIN, Cli, _ok

    cli = Cli(tmp_path)
    cli.env["TIERBOT_CHANNELS"] = '[{"name": "jd", "kind": "wecom_robot"}]'
    _ok(cli("chain", "import", str(DEMO_CHAIN)))
    code = _ok(cli("invite", "--node", "长春社区", "--group", "--channel", "jd")).stdout.strip()
    assert cli.rows(f"SELECT channel, fallback FROM invite_code WHERE code = '{code}'") == [
        ("jd", "")]
    unknown = cli("invite", "--node", "长春社区", "--group", "--channel", "nope")
    assert unknown.returncode == 2 and "no channel or account named 'nope'" in unknown.stderr
    person = cli("invite", "--node", "长春社区", "--role", "书记", "--channel", "jd")
    assert person.returncode == 2 and "only with --group" in person.stderr
