"""Feishu custom bot and app bot against their fake servers: the seconds-timestamp signature
in the body (right, forged, stale), keyword, 5/s and 100/min (11232), HTTP 429 with its reset
header, the 20 KB body and its splitting, every mapped error; the app's tenant token cached,
refreshed when refused or expired; and no secret or token in logs, reprs or details."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.base import Limits, OutboundChannel, Outcome, Rendering
from bot.channels.feishu import (
    APP_CODES,
    BOT_CODES,
    KINDS,
    MENTION_MARKUP,
    FeishuApp,
    FeishuBot,
    bot_sign,
)
from bot.channels.render import defuse, part_text
from bot.clock import FakeClock
from tests.channels.adapter_checks import assert_rule, capture_all, logged, recovered
from tests.channels.fakes import FakeFeishuApp, FakeFeishuBot, Inject, closed_port

HOOK = "5e3d587e-d78e-4a07-bd07-265f269f86fd"
SECRET = "nIMtb7r3N9pkXyXdtAbx6e"
APP_ID = "cli_a1b2c3d4e5f6a7b8"
APP_SECRET = "Vb7x2Kq9LmN3pR5tW8yZ1cF4hJ6"
CHAT = "oc_a0553eda9014c201e6969b478895c230"
TAG = "【通知#3】"
TEXT_CHARS = st.characters(blacklist_categories=("Cs",))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[tuple[FakeFeishuBot, str]]:
    server = FakeFeishuBot(clock, token=HOOK, secret=SECRET)
    with server.serve() as url:
        yield server, url


@pytest.fixture
def fake_app(clock: FakeClock) -> Iterator[tuple[FakeFeishuApp, str]]:
    server = FakeFeishuApp(clock, app_id=APP_ID, app_secret=APP_SECRET)
    server.chats.add(CHAT)
    with server.serve() as url:
        yield server, url


def bot(url: str, client: httpx.AsyncClient, clock: FakeClock, *, secret: str = SECRET,
        keyword: str = "") -> FeishuBot:
    return FeishuBot("feishu-1", {"token": HOOK, "secret": secret}, base_url=url,
                     client=client, clock=clock, keyword=keyword)


def app(url: str, client: httpx.AsyncClient, clock: FakeClock) -> FeishuApp:
    return FeishuApp("feishu-app", {"app_id": APP_ID, "app_secret": APP_SECRET},
                     base_url=url, client=client, clock=clock)


async def send_one(ch: FeishuBot | FeishuApp, text: str = "测试", room: str = "") -> Outcome:
    return (await ch.send(room, ch.render(Rendering(text=text, tag=TAG))[0])).outcome


def test_the_signature_is_feishus_scheme_not_dingtalks():
    """Key = "<seconds>\\n<secret>", message empty (DingTalk: key = secret, message = the
    string)."""
    ts = 1_599_360_473
    expected = base64.b64encode(hmac.new(f"{ts}\n{SECRET}".encode(), b"",
                                         hashlib.sha256).digest()).decode()
    assert bot_sign(SECRET, ts) == expected
    dingtalk_way = base64.b64encode(hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(),
                                             hashlib.sha256).digest()).decode()
    assert bot_sign(SECRET, ts) != dingtalk_way


def test_the_factory_builds_both_kinds():
    b = KINDS["feishu_bot"]("b", {"token": HOOK, "secret": SECRET})
    a = KINDS["feishu_app"]("a", {"app_id": APP_ID, "app_secret": APP_SECRET})
    assert isinstance(b, OutboundChannel) and isinstance(a, OutboundChannel)
    assert (b.limits.per_minute, b.limits.per_second, b.limits.avoid) == (
        100, 5, ((0, 60), (1800, 1860)))
    assert (a.limits.per_minute, a.limits.per_second, a.limits.per_group_per_second) == (
        1000, 50, 5)
    assert a.capabilities.receive and not b.capabilities.receive


async def test_a_signed_text_with_mentions_reaches_the_group(fake, client, clock):
    server, url = fake
    ch = bot(url, client, clock)
    [payload] = ch.render(Rendering(text="今晚8点停电", tag=TAG, mentions=["ou_7d8a6e6df7621556"],
                                    mention_all=True))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    [body] = server.accepted
    assert body["timestamp"] == str(int(clock.now().timestamp()))
    assert body["msg_type"] == "text"
    assert body["content"]["text"] == (
        f'{TAG}<at user_id="ou_7d8a6e6df7621556"></at> <at user_id="all">所有人</at> 今晚8点停电')


async def test_markdown_goes_as_a_post(fake, client, clock):
    server, url = fake
    ch = bot(url, client, clock)
    assert await send_one(ch, "第一行\n第二行") is Outcome.DELIVERED
    [payload] = ch.render(Rendering(text="第一行\n第二行", tag=TAG, markdown=True))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    assert server.accepted[-1]["content"]["post"]["zh_cn"] == {
        "title": TAG, "content": [[{"tag": "text", "text": TAG + "第一行"}],
                                  [{"tag": "text", "text": "第二行"}]]}


async def test_a_forged_signature_is_refused(fake, client, clock):
    server, url = fake
    assert await send_one(bot(url, client, clock, secret="forged-secret-123")) is (
        Outcome.PERMANENT)
    assert server.accepted == []


async def test_a_timestamp_over_an_hour_old_is_refused(fake, client, clock):
    server, url = fake
    stale = FakeClock(clock.now() - timedelta(hours=1, seconds=2))
    result = await bot(url, client, stale).send(
        "", bot(url, client, stale).render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "19021")
    assert await send_one(bot(url, client, FakeClock(clock.now() + timedelta(minutes=59)))) is (
        Outcome.DELIVERED)


async def test_keyword_security(fake, client, clock):
    server, url = fake
    server.keyword = "网格通知"
    result = await bot(url, client, clock).send(
        "", bot(url, client, clock).render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "19024")
    assert await send_one(bot(url, client, clock, keyword="网格通知")) is Outcome.DELIVERED


async def test_five_a_second_and_a_hundred_a_minute(fake, client, clock):
    server, url = fake
    ch = bot(url, client, clock)
    for _ in range(5):
        assert await send_one(ch) is Outcome.DELIVERED
    [payload] = ch.render(Rendering(text="第6条"))
    result = await ch.send("", payload)
    assert (result.outcome, result.code, result.rate_limited) == (
        Outcome.RETRY_AFTER, "11232", True)
    for _ in range(19):
        clock.advance(timedelta(seconds=1))
        for _ in range(5):
            assert await send_one(ch) is Outcome.DELIVERED
    clock.advance(timedelta(seconds=1))
    assert (await ch.send("", payload)).code == "11232"  # 100 in this minute already
    assert len(server.accepted) == 100


async def test_http_429_waits_for_the_reset_header(fake, client, clock):
    server, url = fake
    server.http_429_reset = 37
    ch = bot(url, client, clock)
    for _ in range(5):
        await send_one(ch)
    result = await ch.send("", ch.render(Rendering(text="再发"))[0])
    assert (result.outcome, result.code, result.retry_after, result.rate_limited) == (
        Outcome.RETRY_AFTER, "http-429", 37, True)


@pytest.mark.parametrize("markdown", [False, True])
async def test_a_long_notice_goes_in_parts_within_20_kb(fake, client, clock, markdown):
    server, url = fake
    ch = bot(url, client, clock)
    text = "请各小组长于周五前完成\"出租房\"排查。\n" * 900
    payloads = ch.render(Rendering(text=text, tag=TAG, markdown=markdown))
    assert len(payloads) > 1
    assert all(p.size <= 20 * 1024 for p in payloads)
    for p in payloads:
        assert (await ch.send("", p)).outcome is Outcome.DELIVERED
        clock.advance(timedelta(seconds=1))
    if markdown:
        texts = ["\n".join(line[0]["text"] for line in b["content"]["post"]["zh_cn"]["content"])
                 for b in server.accepted]
    else:
        texts = [b["content"]["text"] for b in server.accepted]
    assert recovered(texts, tag=TAG) == text


async def test_an_unsplit_oversize_body_is_a_bad_request(fake, client, clock):
    server, url = fake
    ch = bot(url, client, clock)
    [payload] = ch.render(Rendering(text="短"))
    payload.body["content"]["text"] = "长" * 7000
    result = await ch.send("", payload)
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "9499")


@given(text=st.text(TEXT_CHARS, max_size=6000), tag=st.sampled_from(["", TAG]),
       keyword=st.sampled_from(["", "网格"]), markdown=st.booleans())
def test_every_body_fits_keeps_the_tag_and_gives_the_text_back(text, tag, keyword, markdown):
    ch = FeishuBot("p", {"token": HOOK, "secret": SECRET}, keyword=keyword,
                   limits=Limits(per_minute=100, per_second=5, max_body_bytes=900))
    payloads = ch.render(Rendering(text=text, tag=tag, markdown=markdown))
    signed = [{"timestamp": "1700000000", "sign": bot_sign(SECRET, 1_700_000_000), **p.body}
              for p in payloads]
    assert all(len(json.dumps(b, ensure_ascii=False, separators=(",", ":")).encode()) <= 900
               for b in signed)
    if markdown:
        texts = ["\n".join(line[0]["text"] for line in p.body["content"]["post"]["zh_cn"]["content"])
                 for p in payloads]
    else:
        texts = [p.body["content"]["text"] for p in payloads]
    tail = "" if not keyword else "\n" + keyword
    assert recovered(texts, tag=tag, tail=tail) == defuse(text, MENTION_MARKUP)


@pytest.mark.parametrize("code", sorted(BOT_CODES))
async def test_each_mapped_bot_error_is_classified(fake, client, clock, code):
    server, url = fake
    server.inject(Inject(code=code, status=400 if code == 9499 else 200))
    result = await bot(url, client, clock).send(
        "", bot(url, client, clock).render(Rendering(text="测试"))[0])
    assert_rule(result, BOT_CODES[code], code)


async def test_an_ip_off_the_list_and_no_connection(fake, client, clock):
    server, url = fake
    server.ips_allowed = False
    assert await send_one(bot(url, client, clock)) is Outcome.PERMANENT
    assert await send_one(bot(closed_port(), client, clock)) is Outcome.RETRY_AFTER


async def test_a_late_answer_is_unknown(fake, clock):
    server, url = fake
    server.inject(Inject(hang=1.0))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        assert await send_one(bot(url, slow, clock)) is Outcome.UNKNOWN


async def test_the_app_sends_to_a_chat_and_caches_its_token(fake_app, client, clock):
    server, url = fake_app
    ch = app(url, client, clock)
    [payload] = ch.render(Rendering(text="明天开会", tag=TAG, mentions=["ou_abc"]))
    first = await ch.send(CHAT, payload)
    second = await ch.send(CHAT, payload)
    assert first.outcome is second.outcome is Outcome.DELIVERED
    assert first.message_id and first.message_id != second.message_id
    assert server.tokens_issued == 1
    body = server.accepted[0]
    assert (body["receive_id"], body["msg_type"]) == (CHAT, "text")
    assert json.loads(body["content"]) == {"text": f'{TAG}<at user_id="ou_abc"></at> 明天开会'}


async def test_the_app_refreshes_a_refused_or_expired_token(fake_app, client, clock):
    server, url = fake_app
    ch = app(url, client, clock)
    assert await send_one(ch, room=CHAT) is Outcome.DELIVERED
    server.revoke_tokens()
    assert await send_one(ch, room=CHAT) is Outcome.DELIVERED
    assert server.tokens_issued == 2 and len(server.accepted) == 2
    clock.advance(timedelta(hours=2))
    assert await send_one(ch, room=CHAT) is Outcome.DELIVERED
    assert server.tokens_issued == 3


async def test_a_wrong_app_secret_is_permanent_and_nothing_is_sent(fake_app, client, clock):
    server, url = fake_app
    ch = FeishuApp("a", {"app_id": APP_ID, "app_secret": "wrong-secret-0000"}, base_url=url,
                   client=client, clock=clock)
    result = await ch.send(CHAT, ch.render(Rendering(text="测试"))[0])
    assert result.outcome is Outcome.PERMANENT and result.code.startswith("token")
    assert server.accepted == []


async def test_a_chat_the_bot_is_not_in_is_permanent(fake_app, client, clock):
    _, url = fake_app
    ch = app(url, client, clock)
    result = await ch.send("oc_elsewhere", ch.render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "230002")


async def test_five_a_second_per_group_holds_only_that_group(fake_app, client, clock):
    server, url = fake_app
    server.chats.add("oc_second")
    ch = app(url, client, clock)
    for _ in range(5):
        assert await send_one(ch, room=CHAT) is Outcome.DELIVERED
    [payload] = ch.render(Rendering(text="第6条"))
    busy = await ch.send(CHAT, payload)
    assert (busy.outcome, busy.code, busy.rate_limited) == (Outcome.RETRY_AFTER, "230020", False)
    assert (await ch.send("oc_second", payload)).outcome is Outcome.DELIVERED


@pytest.mark.parametrize("code", sorted(set(APP_CODES) - {99991661, 99991663, 99991668}))
async def test_each_mapped_app_error_is_classified(fake_app, client, clock, code):
    server, url = fake_app
    ch = app(url, client, clock)
    assert await send_one(ch, room=CHAT) is Outcome.DELIVERED  # the token is cached
    server.inject(Inject(code=code, status=400))
    result = await ch.send(CHAT, ch.render(Rendering(text="测试"))[0])
    assert_rule(result, APP_CODES[code], code)


async def test_hook_secret_app_secret_and_token_never_logged(fake, fake_app, client, clock,
                                                             caplog):
    all_logs = capture_all(caplog)
    server, url = fake
    b = bot(url, client, clock)
    assert await send_one(b) is Outcome.DELIVERED
    server.inject(Inject(code=19021, message=f"sign match fail for /hook/{HOOK}"))
    failed = await b.send("", b.render(Rendering(text="测试"))[0])
    app_server, app_url = fake_app
    a = app(app_url, client, clock)
    assert await send_one(a, room=CHAT) is Outcome.DELIVERED
    [token] = app_server.tokens
    signature = bot_sign(SECRET, int(clock.now().timestamp()))
    text = logged(all_logs)
    assert "HTTP Request: POST" in text
    for shown in (text, repr(b), repr(a), failed.detail):
        for secret in (HOOK, SECRET, APP_SECRET, token, signature):
            assert secret not in shown


async def test_a_text_cannot_mention_everyone_by_its_wording(fake, fake_app, client, clock):
    """A notice (or a relayed report) that spells out <at user_id="all"> mentions nobody."""
    server, url = fake
    sly = '请<at user_id="all">所有人</at>注意，<AT user_id="ou_boss"></AT>'
    assert await send_one(bot(url, client, clock), sly) is Outcome.DELIVERED
    app_server, app_url = fake_app
    assert await send_one(app(app_url, client, clock), sly, room=CHAT) is Outcome.DELIVERED
    for text in (server.accepted[0]["content"]["text"],
                 json.loads(app_server.accepted[0]["content"])["text"]):
        assert "<at" not in text.lower() and text.count("＜") == 2


async def test_mentions_in_markdown_go_as_text_where_they_work(fake, client, clock):
    server, url = fake
    ch = bot(url, client, clock)
    [payload] = ch.render(Rendering(text="**注意**", tag=TAG, markdown=True, mentions=["ou_1"]))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    assert server.accepted[0]["msg_type"] == "text"
    assert '<at user_id="ou_1">' in server.accepted[0]["content"]["text"]


async def test_a_captured_request_replayed_after_an_hour_is_refused(fake, client, clock):
    server, url = fake
    assert await send_one(bot(url, client, clock)) is Outcome.DELIVERED
    path, raw = server.last_request
    clock.advance(timedelta(hours=1, seconds=1))
    replay = await client.post(url + path, content=raw,
                               headers={"Content-Type": "application/json"})
    assert replay.json()["code"] == 19021
    assert len(server.accepted) == 1


@given(text=st.text(TEXT_CHARS, max_size=4000), markdown=st.booleans(),
       mention=st.sampled_from([[], ["ou_7d8a6e6df7621556"]]))
def test_every_app_body_fits_with_its_chat_id_and_gives_the_text_back(text, markdown, mention):
    ch = FeishuApp("p", {"app_id": APP_ID, "app_secret": APP_SECRET},
                   limits=Limits(per_minute=1000, max_body_bytes=1200))
    payloads = ch.render(Rendering(text=text, tag=TAG, markdown=markdown, mentions=mention))
    bodies = [{**p.body, "receive_id": CHAT} for p in payloads]
    assert all(len(json.dumps(b, ensure_ascii=False, separators=(",", ":")).encode()) <= 1200
               for b in bodies)
    contents = [json.loads(b["content"]) for b in bodies]
    if markdown and not mention:
        texts = ["\n".join(line[0]["text"] for line in c["post"]["zh_cn"]["content"])
                 for c in contents]
    else:
        texts = [c["text"] for c in contents]
    lead = "".join(f'<at user_id="{m}"></at> ' for m in mention)
    assert recovered(texts, tag=TAG, lead=lead) == defuse(text, MENTION_MARKUP)


def test_configuration_may_only_lower_the_platform_limits():
    ch = FeishuBot("b", {"token": HOOK}, limits=Limits(per_minute=500, per_second=2,
                                                       max_body_bytes=99_999))
    assert (ch.limits.per_minute, ch.limits.per_second, ch.limits.max_body_bytes) == (
        100, 2, 20 * 1024)
    assert ch.limits.avoid == ((0, 60), (1800, 1860))


async def test_the_webhook_url_form_of_the_credential_works(fake, client, clock):
    server, url = fake
    ch = FeishuBot("b", {"webhook": f"{url}/open-apis/bot/v2/hook/{HOOK}", "secret": SECRET},
                   client=client, clock=clock)
    assert await send_one(ch) is Outcome.DELIVERED
    assert len(server.accepted) == 1


def test_part_text_reads_every_body_shape():
    """What an echo of a part is matched by, from each adapter's body."""
    rendering = Rendering(text="第一行\n第二行", tag=TAG)
    for ch in (FeishuBot("b", {"token": HOOK}), FeishuApp("a", {"app_id": APP_ID,
                                                               "app_secret": APP_SECRET})):
        for markdown in (False, True):
            [p] = ch.render(Rendering(text=rendering.text, tag=TAG, markdown=markdown))
            assert part_text(p.body) == TAG + "第一行\n第二行"
    assert part_text({"text": "sim"}) == "sim"
    assert part_text({"msgtype": "text", "text": {"content": "企微"}}) == "企微"
    assert part_text({"msgtype": "markdown", "markdown": {"title": "t", "text": "钉钉"}}) == "钉钉"
    assert part_text({}) == ""
