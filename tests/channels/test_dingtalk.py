"""DingTalk custom robot against its fake server: the millisecond-timestamp signature in the
URL (right, forged, stale), keyword security, mentions, 20/min with its 10-minute penalty
(130101), the < 20,000-byte body and its splitting, every mapped error, and the token,
secret and mobiles kept out of logs, reprs and details."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from urllib.parse import unquote_plus

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.base import Limits, OutboundChannel, Outcome, Rendering
from bot.channels.dingtalk import CODES, KINDS, DingtalkRobot, sign
from bot.clock import FakeClock
from tests.channels.adapter_checks import assert_rule, capture_all, logged, recovered
from tests.channels.fakes import FakeDingtalk, Inject, closed_port

TOKEN = "bf73a2c6d9e84f0aa1b2c3d4e5f60718293a4b5c6d7e8f90"
SECRET = "SEC5a3ecf88f2b3eb50db30ecfc00f53033ac909c99bf7f88fd612bda89d7f3a9dc"
MOBILE = "13812345678"
TAG = "【通知#12】"
KEYWORD = "社区通知"
TEXT_CHARS = st.characters(blacklist_categories=("Cs",))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[tuple[FakeDingtalk, str]]:
    server = FakeDingtalk(clock, access_token=TOKEN, secret=SECRET)
    with server.serve() as url:
        yield server, url


def robot(url: str, client: httpx.AsyncClient, clock: FakeClock, *, secret: str = SECRET,
          keyword: str = "") -> DingtalkRobot:
    return DingtalkRobot("ding-1", {"access_token": TOKEN, "secret": secret}, base_url=url,
                         client=client, clock=clock, keyword=keyword)


async def send_one(ch: DingtalkRobot, text: str = "测试") -> Outcome:
    return (await ch.send("", ch.render(Rendering(text=text, tag=TAG))[0])).outcome


def test_the_signature_is_dingtalks_documented_scheme():
    """Recomputed here the way DingTalk's own sample does: key = secret, message =
    "<ms>\\n<secret>", base64 then URL-encoded."""
    ms = 1_700_000_000_123
    digest = hmac.new(SECRET.encode(), f"{ms}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert unquote_plus(sign(SECRET, ms)) == base64.b64encode(digest).decode()
    assert "+" not in sign(SECRET, ms) and "/" not in sign(SECRET, ms)


def test_the_factory_builds_an_outbound_channel():
    ch = KINDS["dingtalk_robot"]("d", {"access_token": TOKEN, "secret": SECRET})
    assert isinstance(ch, OutboundChannel)
    assert (ch.limits.per_minute, ch.limits.penalty_seconds) == (20, 600)


async def test_a_signed_text_with_mentions_reaches_the_group(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="请今日18点前报送名单", tag=TAG,
                                    mentions=[MOBILE, "manager4216"], mention_all=False))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    [body] = server.accepted
    assert body["at"] == {"atMobiles": [MOBILE], "atUserIds": ["manager4216"]}
    # DingTalk shows a mention only where the id is also written in the content.
    assert body["text"]["content"] == f"{TAG}@{MOBILE} @manager4216 请今日18点前报送名单"


async def test_mention_all_and_markdown(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="## 通知\n今晚停水", tag=TAG, markdown=True,
                                    mention_all=True))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    assert server.accepted[0] == {"msgtype": "markdown",
                                  "markdown": {"title": TAG, "text": TAG + "## 通知\n今晚停水"},
                                  "at": {"isAtAll": True}}


async def test_a_forged_signature_is_refused(fake, client, clock):
    server, url = fake
    result = await robot(url, client, clock, secret=SECRET[:-1] + "0").send(
        "", robot(url, client, clock).render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "310000")
    assert server.accepted == []


async def test_an_unsigned_request_to_a_signing_robot_is_refused(fake, client, clock):
    server, url = fake
    ch = DingtalkRobot("d", {"access_token": TOKEN}, base_url=url, client=client, clock=clock)
    assert await send_one(ch) is Outcome.PERMANENT
    assert server.accepted == []


async def test_a_timestamp_over_an_hour_old_is_refused(fake, client, clock):
    server, url = fake
    stale = FakeClock(clock.now() - timedelta(hours=1, seconds=5))
    assert await send_one(robot(url, client, stale)) is Outcome.PERMANENT
    fresh = FakeClock(clock.now() - timedelta(minutes=59))
    assert await send_one(robot(url, client, fresh)) is Outcome.DELIVERED
    assert len(server.accepted) == 1


async def test_a_wrong_access_token_is_permanent(fake, client, clock):
    _, url = fake
    ch = DingtalkRobot("d", {"access_token": TOKEN[::-1], "secret": SECRET}, base_url=url,
                       client=client, clock=clock)
    result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "300001")


async def test_keyword_security(fake, client, clock):
    server, url = fake
    server.keyword = KEYWORD
    result = await robot(url, client, clock).send(
        "", robot(url, client, clock).render(Rendering(text="停水通知", tag=TAG))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "310000")
    ch = robot(url, client, clock, keyword=KEYWORD)
    payloads = ch.render(Rendering(text="停水。" * 4000, tag=TAG))
    assert len(payloads) > 1
    assert [(await ch.send("", p)).outcome for p in payloads] == (
        [Outcome.DELIVERED] * len(payloads))
    assert all(KEYWORD in b["text"]["content"] for b in server.accepted)


async def test_twenty_a_minute_then_ten_minutes_of_penalty(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    for _ in range(20):
        assert await send_one(ch) is Outcome.DELIVERED
    [payload] = ch.render(Rendering(text="第21条", tag=TAG))
    result = await ch.send("", payload)
    assert (result.outcome, result.code, result.rate_limited, result.retry_after) == (
        Outcome.RETRY_AFTER, "130101", True, 600)
    # The minute is over, but the penalty is not.
    clock.advance(timedelta(seconds=61))
    assert (await ch.send("", payload)).code == "130101"
    clock.advance(timedelta(seconds=600))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    assert len(server.accepted) == 21


async def test_a_long_notice_goes_in_parts_each_under_20000_bytes(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    text = "\"引号\"与\\反斜杠\\、换行\n" * 2500  # escapes make the body larger than the text
    payloads = ch.render(Rendering(text=text, tag=TAG, mentions=[MOBILE]))
    assert len(payloads) > 1
    assert all(p.size < 20_000 for p in payloads)
    assert [(await ch.send("", p)).outcome for p in payloads] == (
        [Outcome.DELIVERED] * len(payloads))
    contents = [b["text"]["content"] for b in server.accepted]
    assert recovered(contents, tag=TAG, lead=f"@{MOBILE} ") == text


async def test_an_unsplit_oversize_body_is_refused_by_the_fake(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="短"))
    payload.body["text"]["content"] = "长" * 7000  # 21,000 bytes
    result = await ch.send("", payload)
    assert result.outcome is Outcome.PERMANENT and server.accepted == []


@given(text=st.text(TEXT_CHARS, max_size=9000), tag=st.sampled_from(["", TAG]),
       keyword=st.sampled_from(["", KEYWORD, "通知"]), markdown=st.booleans(),
       mobiles=st.lists(st.sampled_from([MOBILE, "13900001111"]), max_size=2, unique=True))
def test_every_body_is_under_the_limit_keeps_the_tag_and_gives_the_text_back(
        text, tag, keyword, markdown, mobiles):
    # A small limit (configuration may lower it) makes splits likely for any text.
    ch = DingtalkRobot("p", {"access_token": TOKEN, "secret": SECRET}, keyword=keyword,
                       limits=Limits(per_minute=20, max_body_bytes=600))
    payloads = ch.render(Rendering(text=text, tag=tag, markdown=markdown, mentions=mobiles))
    assert all(len(json.dumps(p.body, ensure_ascii=False, separators=(",", ":")).encode())
               == p.size <= 600 for p in payloads)
    texts = [p.body["markdown"]["text"] if markdown else p.body["text"]["content"]
             for p in payloads]
    tail = "" if not keyword or keyword in tag else "\n" + keyword
    lead = "".join(f"@{m} " for m in mobiles)
    assert recovered(texts, tag=tag, tail=tail, lead=lead) == text


@pytest.mark.parametrize("code", sorted(CODES))
async def test_each_mapped_error_is_classified(fake, client, clock, code):
    server, url = fake
    server.inject(Inject(code=code))
    result = await robot(url, client, clock).send(
        "", robot(url, client, clock).render(Rendering(text="测试"))[0])
    assert_rule(result, CODES[code], code)


@pytest.mark.parametrize(("inject", "outcome"), [
    (Inject(code=400102, message="robot stopped"), Outcome.PERMANENT),
    (Inject(status=502), Outcome.RETRY_AFTER),
    (Inject(status=403), Outcome.PERMANENT),
])
async def test_unknown_codes_and_statuses(fake, client, clock, inject, outcome):
    server, url = fake
    server.inject(inject)
    assert await send_one(robot(url, client, clock)) is outcome


async def test_no_connection_is_not_sent_and_a_late_answer_is_unknown(fake, client, clock):
    server, url = fake
    assert await send_one(robot(closed_port(), client, clock)) is Outcome.RETRY_AFTER
    server.inject(Inject(hang=1.0))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        assert await send_one(robot(url, slow, clock)) is Outcome.UNKNOWN
    assert len(server.accepted) == 1


async def test_token_secret_signature_and_mobiles_never_logged(fake, client, clock, caplog):
    all_logs = capture_all(caplog)
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="测试", mentions=[MOBILE]))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    server.inject(Inject(code=310000, message=f"sign not match, access_token={TOKEN}"))
    failed = await ch.send("", payload)
    signature = sign(SECRET, int(clock.now().timestamp() * 1000))
    text = logged(all_logs)
    assert "HTTP Request: POST" in text
    for shown in (text, repr(ch), failed.detail):
        for secret in (TOKEN, SECRET, MOBILE, signature, unquote_plus(signature)):
            assert secret not in shown


async def test_a_captured_signed_url_replayed_after_an_hour_is_refused(fake, client, clock):
    server, url = fake
    assert await send_one(robot(url, client, clock)) is Outcome.DELIVERED
    path, raw = server.last_request
    assert "sign=" in path
    clock.advance(timedelta(hours=1, seconds=1))
    replay = await client.post(url + path, content=raw,
                               headers={"Content-Type": "application/json"})
    assert replay.json()["errcode"] == 310000
    assert len(server.accepted) == 1


async def test_the_webhook_url_form_of_the_credential_works(fake, client, clock):
    """`tierbot channels add` stores a bare value as "webhook": the robot's full URL."""
    server, url = fake
    ch = DingtalkRobot("d", {"webhook": f"{url}/robot/send?access_token={TOKEN}",
                             "secret": SECRET}, client=client, clock=clock)
    assert await send_one(ch) is Outcome.DELIVERED
    assert TOKEN not in repr(ch)
    with pytest.raises(ValueError) as exc:
        DingtalkRobot("d", {"webhook": f"https://oapi.dingtalk.com/robot/send?x={TOKEN}"})
    assert TOKEN not in str(exc.value)
