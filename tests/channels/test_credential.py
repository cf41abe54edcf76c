"""Official channels' credentials: sealed at rest and bound to their row, masked wherever they
are shown, never in logs, dumps or argv, re-sealed by a key rotation, and joined to their
[[channels]] entry by the registry (which refuses what the configuration gets wrong)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import crypto
from bot.app import BotApp, build_app, running
from bot.channels import registry
from bot.channels.base import Limits
from bot.channels.sim import SimOfficialChannel
from bot.clock import FakeClock
from bot.config import ChannelSettings, ConfigError, Settings, load_settings
from bot.services import credential
from bot.transports.memory import MemoryTransport
from models import ChannelCredential
from tests.dump import dump_async
from tests.test_cli import Cli, _ok

KEY = "693a91f6-7d3c-4e0c-9a53-5bf1d0c2e8aa"
WEBHOOK = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
SIGNING = "SEC2b8f7c1e0d94a6b3f5e2c7d1a9b0e4f6c8d3a5b7e9f1c2d4"


async def _store(bot: BotApp, name: str = "robot", **fields: str) -> None:
    async with bot.session() as s, s.begin():
        await credential.store(s, name=name, kind="sim_official",
                               fields=fields or {"webhook": WEBHOOK, "secret": SIGNING},
                               now=bot.now())


async def test_sealed_at_rest_bound_to_its_row_and_masked(bot: BotApp, settings: Settings):
    await _store(bot)
    await _store(bot, "robot2", webhook=WEBHOOK.replace(KEY, "k" * 36))
    async with bot.session() as s:
        row = (await s.execute(select(ChannelCredential).where(
            ChannelCredential.name == "robot"))).scalar_one()
        shown = await credential.listing(s)
    assert row.secret_enc is not None and row.secret_enc.startswith("v1.k1.")
    assert KEY not in row.secret_enc and SIGNING not in row.secret_enc
    assert KEY not in repr(row) and "v1." not in repr(row)
    assert row.mask == "secret=****c2d4, webhook=https://qyapi.weixin.qq.com/…e8aa"
    assert [c.name for c in shown] == ["robot", "robot2"]
    assert all(KEY not in c.mask and SIGNING not in c.mask for c in shown)
    # The whole database as someone with a copy reads it: no secret in it.
    dumped = await dump_async(settings.database_url)
    assert KEY not in dumped and SIGNING not in dumped and "qyapi.weixin.qq.com/…e8aa" in dumped
    async with bot.session() as s:
        opened = await credential.open_all(s)
    assert opened["robot"] == ("sim_official", {"webhook": WEBHOOK, "secret": SIGNING})
    # A sealed value copied onto another row does not open there.
    async with bot.session() as s, s.begin():
        await s.execute(update(ChannelCredential).where(ChannelCredential.name == "robot2")
                        .values(secret_enc=row.secret_enc))
    async with bot.session() as s:
        with pytest.raises(crypto.SealedValueError, match="does not open"):
            await credential.open_all(s)


async def test_key_rotation_reseals_the_credentials(bot: BotApp):
    await _store(bot)
    newer = crypto.current().with_new_key()
    async with bot.session() as s:
        assert await credential.pending_rotation(s, keyring=newer) == 1
    assert await credential.rotate(bot.sessions, keyring=newer) == 1
    assert await credential.rotate(bot.sessions, keyring=newer) == 0
    async with bot.session() as s:
        token = (await s.execute(select(ChannelCredential.secret_enc))).scalar_one()
        assert await credential.pending_rotation(s, keyring=newer) == 0
    assert token is not None and token.startswith(f"v1.{newer.active}.")
    crypto.use(newer.rotated())
    try:
        async with bot.session() as s:
            assert (await credential.open_all(s))["robot"][1]["webhook"] == WEBHOOK
    finally:
        crypto.use(None)


@pytest.mark.parametrize("text", ["", "   ", "{not json s3cr3tvalue", '{"a": 1}',
                                  "a=s3cr3tvalue\nb=", "s3cr3tvalue\nno field", "x" * 5000])
def test_bad_secrets_are_refused_without_echoing_them(text: str):
    with pytest.raises(credential.CredentialError) as info:
        credential.parse_secret(text)
    assert "s3cr3tvalue" not in str(info.value) and "xxxxxxxx" not in str(info.value)


def test_secret_shapes():
    assert credential.parse_secret(f"  {WEBHOOK}\n") == {"webhook": WEBHOOK}
    assert credential.parse_secret(f"webhook={WEBHOOK}\nsecret={SIGNING}\n") == {
        "webhook": WEBHOOK, "secret": SIGNING}
    assert credential.parse_secret('{"app_id": "cli_a1", "app_secret": "s3cr3t"}') == {
        "app_id": "cli_a1", "app_secret": "s3cr3t"}
    assert credential.mask_value("short") == "****"


async def test_the_registry_joins_config_and_credentials_and_logs_no_secret(
        settings: Settings, transport: MemoryTransport, clock: FakeClock,
        caplog: pytest.LogCaptureFixture):
    configured = settings.model_copy(update={"channels": [
        ChannelSettings(name="robot", kind="sim_official", per_minute=10, keyword="通知")]})
    app = build_app(configured, transport=transport, clock=clock)
    await app.open_store()
    await _store(app)
    caplog.set_level(logging.DEBUG)
    async with running(app):
        channel = app.channels["robot"]
        assert isinstance(channel, SimOfficialChannel) and channel.has_credential
        assert channel.limits.per_minute == 10 and channel.limits.penalty_seconds == 600.0
        assert channel.keyword == "通知"
        assert app.sender.channels["robot"] is channel
        assert app.channels[""].kind == "wechat"
    assert caplog.records and KEY not in caplog.text and SIGNING not in caplog.text
    assert "robot" in caplog.text


def test_the_registry_refuses_what_the_configuration_gets_wrong():
    factories = {"wecom_robot": SimOfficialChannel, "sim_official": SimOfficialChannel}
    wecom = ChannelSettings(name="jd", kind="wecom_robot", per_minute=15)
    with pytest.raises(ConfigError, match="channels add jd --kind wecom_robot"):
        registry.official([wecom], {}, factories=factories)
    with pytest.raises(ConfigError, match="of kind 'feishu_bot'"):
        registry.official([wecom], {"jd": ("feishu_bot", {"webhook": "x"})},
                          factories=factories)
    with pytest.raises(ConfigError, match="unknown kind 'nope'"):
        registry.official([ChannelSettings(name="n", kind="nope")], {}, factories=factories)
    [built] = registry.official([wecom], {"jd": ("wecom_robot", {"webhook": "x"})},
                                factories=factories).values()
    assert built.limits == Limits(per_minute=15, max_body_bytes=4096, penalty_seconds=60.0)
    # Adapter modules that are not there yet are skipped; the simulated one always is.
    assert "sim_official" in registry.kinds()


def test_a_configured_wecom_robot_keeps_the_platforms_markdown_size():
    """The registry's limits and the adapter's are one table: a WeCom robot built from the
    configuration sends 4,096-byte markdown in one part and holds plain text to 2,048."""
    from bot.channels.base import Rendering
    from bot.channels.wecom import WecomRobot

    entry = ChannelSettings(name="jd", kind="wecom_robot")
    [robot] = registry.official([entry], {"jd": ("wecom_robot", {"key": "k"})},
                                factories={"wecom_robot": WecomRobot}).values()
    text = "请各网格员今日报送出租屋排查情况。" * 60  # 3,060 bytes
    assert 2048 < len(text.encode()) < 4000
    assert len(robot.render(Rendering(text=text, markdown=True))) == 1
    assert len(robot.render(Rendering(text=text))) == 2


@pytest.mark.parametrize(("entry", "message"), [
    ({"per_minute": 21}, "above the platform's limit 20"),
    ({"max_body_bytes": 4097}, "above the platform's limit 4096"),
    ({"penalty_seconds": 10}, "below the platform's penalty"),
])
def test_configuration_may_only_lower_the_platform_limits(entry, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(None, channels=[{"name": "jd", "kind": "wecom_robot", **entry}])


def test_channel_names_are_unique_and_not_a_wechat_account():
    with pytest.raises(ConfigError, match="used twice"):
        load_settings(None, channels=[{"name": "a", "kind": "wecom_robot"}] * 2)
    with pytest.raises(ConfigError, match="also a wechaty account"):
        load_settings(None, channels=[{"name": "main", "kind": "wecom_robot"}],
                      wechaty={"accounts": [{"name": "main", "endpoint": "127.0.0.1:1",
                                             "token": "t"}]})


def test_cli_adds_from_stdin_or_env_lists_masked_and_removes(tmp_path: Path):
    cli = Cli(tmp_path)
    added = _ok(cli("channels", "add", "jd", "--kind", "sim_official",
                    stdin=f"webhook={WEBHOOK}\nsecret={SIGNING}\n"))
    env = _ok(cli("channels", "add", "jd2", "--kind", "sim_official",
                  TIERBOT_CHANNEL_SECRET=WEBHOOK))
    again = _ok(cli("channels", "add", "jd", "--kind", "sim_official", stdin=WEBHOOK))
    listed = _ok(cli("channels", "list"))
    for result in (added, env, again, listed):
        out = result.stdout + result.stderr
        assert KEY not in out and SIGNING not in out
    assert "已保存渠道 jd" in added.stdout and "已更新渠道 jd" in again.stdout
    assert listed.stdout.count("https://qyapi.weixin.qq.com/…e8aa") == 2
    [(token,)] = cli.rows("SELECT secret_enc FROM channel_credential WHERE name = 'jd'")
    assert str(token).startswith("v1.k1.") and KEY not in str(token)
    dumped = "\n".join(str(r) for r in cli.rows("SELECT * FROM channel_credential"))
    assert KEY not in dumped
    _ok(cli("channels", "remove", "jd"))
    assert "jd2" in _ok(cli("channels", "list")).stdout
    missing = cli("channels", "remove", "jd")
    assert missing.returncode == 2 and "没有渠道 jd" in missing.stderr
    # There is no way to give the secret on the command line.
    argv = cli("channels", "add", "jd", "--kind", "sim_official", WEBHOOK)
    assert argv.returncode == 2
    unknown = cli("channels", "add", "x", "--kind", "nope", stdin=WEBHOOK)
    assert unknown.returncode == 2 and "unknown kind" in unknown.stderr
    # The key rotation re-seals the credentials with the people's numbers.
    rotated = _ok(cli("keys", "rotate"))
    assert "1 channel credentials" in rotated.stdout
    [(token,)] = cli.rows("SELECT secret_enc FROM channel_credential WHERE name = 'jd2'")
    assert str(token).startswith("v1.k2.")
