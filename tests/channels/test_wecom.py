"""WeCom group robot against its fake server: body shape, mentions, the 20/min limit
(45009), the byte limits and their splitting, every mapped error, transport failures, and
the key and mobiles kept out of logs, reprs and details."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.base import OutboundChannel, Outcome, Rendering
from bot.channels.render import defuse
from bot.channels.wecom import CODES, KINDS, MENTION_MARKUP, WecomRobot
from bot.clock import FakeClock
from tests.channels.adapter_checks import assert_rule, capture_all, logged, recovered
from tests.channels.fakes import FakeWecom, Inject, closed_port

KEY = "693a91f6-7xoc-4bc4-97a0-0ec2sifa5aaa"
MOBILE = "13912345678"
TAG = "【通知#7】"
TEXT_CHARS = st.characters(blacklist_categories=("Cs",))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[tuple[FakeWecom, str]]:
    server = FakeWecom(clock, key=KEY)
    with server.serve() as url:
        yield server, url


def robot(url: str, client: httpx.AsyncClient, clock: FakeClock, **kw: object) -> WecomRobot:
    return WecomRobot("wecom-1", {"key": KEY}, base_url=url, client=client, clock=clock,
                      **kw)  # type: ignore[arg-type]


async def send_all(ch: WecomRobot, rendering: Rendering) -> list[Outcome]:
    return [(await ch.send("", p)).outcome for p in ch.render(rendering)]


def test_the_factory_builds_an_outbound_channel():
    ch = KINDS["wecom_robot"]("w", {"key": KEY})
    assert isinstance(ch, OutboundChannel)
    assert (ch.kind, ch.limits.per_minute, ch.capabilities.receive) == ("wecom_robot", 20, False)


async def test_a_text_with_mentions_reaches_the_group(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="明早8点开会", tag=TAG,
                                    mentions=["zhangsan", MOBILE], mention_all=True))
    result = await ch.send("", payload)
    assert result.outcome is Outcome.DELIVERED
    assert server.accepted == [{"msgtype": "text", "text": {
        "content": TAG + "明早8点开会", "mentioned_list": ["zhangsan", "@all"],
        "mentioned_mobile_list": [MOBILE]}}]


async def test_markdown_mentions_by_user_id_inside_the_content(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    assert await send_all(ch, Rendering(text="**请于今日报送**", tag=TAG, markdown=True,
                                        mentions=["lisi"])) == [Outcome.DELIVERED]
    assert server.accepted[-1] == {"msgtype": "markdown",
                                   "markdown": {"content": TAG + "<@lisi>**请于今日报送**"}}
    # Markdown cannot mention a mobile: that message goes as text, with the mention.
    await send_all(ch, Rendering(text="**请回复**", tag=TAG, markdown=True, mentions=[MOBILE]))
    assert server.accepted[-1]["msgtype"] == "text"
    assert server.accepted[-1]["text"]["mentioned_mobile_list"] == [MOBILE]


async def test_the_webhook_url_form_of_the_credential_works(fake, client, clock):
    server, url = fake
    ch = WecomRobot("w", {"webhook": f"{url}/cgi-bin/webhook/send?key={KEY}"}, client=client,
                    clock=clock)
    assert await send_all(ch, Rendering(text="测试", tag=TAG)) == [Outcome.DELIVERED]
    assert len(server.accepted) == 1


async def test_a_wrong_key_is_permanent(fake, client, clock):
    server, url = fake
    ch = WecomRobot("w", {"key": KEY + "x"}, base_url=url, client=client, clock=clock)
    result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "93000")
    assert server.accepted == []


async def test_an_ip_off_the_list_is_permanent(fake, client, clock):
    server, url = fake
    server.ips_allowed = False
    result = await robot(url, client, clock).send("", robot(url, client, clock).render(
        Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "60020")


async def test_the_twenty_first_message_in_a_minute_is_rate_limited(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="测试", tag=TAG))
    for _ in range(20):
        assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    result = await ch.send("", payload)
    assert (result.outcome, result.code, result.rate_limited) == (
        Outcome.RETRY_AFTER, "45009", True)
    assert result.retry_after == ch.limits.penalty_seconds == 60
    clock.advance(timedelta(seconds=60))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    assert len(server.accepted) == 21


async def test_a_long_notice_goes_in_parts_the_server_accepts(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    text = "各位房东请注意，本周六上午九点在社区办公室召开会议。\n" * 120
    payloads = ch.render(Rendering(text=text, tag=TAG, mentions=[MOBILE]))
    assert len(payloads) > 1
    assert all(p.size <= 2048 for p in payloads)
    assert [(await ch.send("", p)).outcome for p in payloads] == (
        [Outcome.DELIVERED] * len(payloads))
    contents = [b["text"]["content"] for b in server.accepted]
    assert recovered(contents, tag=TAG) == text
    # The mention goes with the first part only.
    assert [("mentioned_mobile_list" in b["text"]) for b in server.accepted] == (
        [True] + [False] * (len(payloads) - 1))


async def test_an_oversize_body_is_refused_by_the_fake(fake, client, clock):
    """The fake checks what WeCom checks: a body not split is a 40058."""
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="短"))
    payload.body["text"]["content"] = "长" * 700  # 2,100 bytes
    result = await ch.send("", payload)
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "40058")




@given(text=st.text(TEXT_CHARS, max_size=3000), tag=st.sampled_from(["", TAG, "【紧急通知#123】"]),
       keyword=st.sampled_from(["", "通知", "社区"]), markdown=st.booleans())
def test_every_part_fits_keeps_the_tag_and_gives_the_text_back(text, tag, keyword, markdown):
    ch = WecomRobot("p", {"key": KEY}, keyword=keyword)
    payloads = ch.render(Rendering(text=text, tag=tag, markdown=markdown))
    kind = "markdown" if markdown else "text"
    limit = 4096 if markdown else 2048
    contents = [p.body[kind]["content"] for p in payloads]
    assert all(len(c.encode()) <= limit for c in contents)
    tail = "" if not keyword or keyword in tag else "\n" + keyword
    assert recovered(contents, tag=tag, tail=tail) == (
        defuse(text, MENTION_MARKUP) if markdown else text)
    assert [p.part for p in payloads] == list(range(1, len(payloads) + 1))


@pytest.mark.parametrize("code", sorted(CODES))
async def test_each_mapped_error_is_classified(fake, client, clock, code):
    server, url = fake
    server.inject(Inject(code=code, message="injected"))
    ch = robot(url, client, clock)
    result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert_rule(result, CODES[code], code)


@pytest.mark.parametrize(("inject", "outcome", "code"), [
    (Inject(code=88888), Outcome.PERMANENT, "88888"),
    (Inject(status=500), Outcome.RETRY_AFTER, "http-500"),
    (Inject(status=503, headers={"retry-after": "7"}), Outcome.RETRY_AFTER, "http-503"),
    (Inject(status=404), Outcome.PERMANENT, "http-404"),
    (Inject(status=429, headers={"retry-after": "12"}), Outcome.RETRY_AFTER, "http-429"),
])
async def test_unknown_codes_and_http_statuses(fake, client, clock, inject, outcome, code):
    server, url = fake
    server.inject(inject)
    ch = robot(url, client, clock)
    result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (outcome, code)
    if "retry-after" in inject.headers:
        assert result.retry_after == float(inject.headers["retry-after"])


async def test_no_connection_means_not_sent(client, clock):
    ch = robot(closed_port(), client, clock)
    result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.RETRY_AFTER, "not-sent")


async def test_a_timeout_after_the_request_left_is_unknown(fake, clock):
    server, url = fake
    server.inject(Inject(hang=1.0))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        ch = robot(url, slow, clock)
        result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert result.outcome is Outcome.UNKNOWN
    # ... and indeed the group got it: only an echo could tell.
    assert len(server.accepted) == 1


async def test_the_key_and_mobiles_are_never_logged_or_shown(fake, client, clock, caplog):
    all_logs = capture_all(caplog)
    server, url = fake
    ch = robot(url, client, clock)
    [payload] = ch.render(Rendering(text="测试", mentions=[MOBILE]))
    assert (await ch.send("", payload)).outcome is Outcome.DELIVERED
    server.inject(Inject(code=93000, message=f"invalid webhook url key={KEY}"))
    failed = await ch.send("", payload)
    refused = await robot(closed_port(), client, clock).send("", payload)
    text = logged(all_logs)
    assert "HTTP Request: POST" in text  # httpx did log the request, redacted
    for shown in (text, repr(ch), failed.detail, refused.detail):
        assert KEY not in shown and MOBILE not in shown
    with pytest.raises(ValueError) as exc:
        WecomRobot("w", {"webhook": f"https://example.invalid/x?nokey={KEY}"})
    assert KEY not in str(exc.value)


async def test_a_base_url_that_is_no_url_is_permanent_not_raised(client, clock):
    ch = WecomRobot("w", {"key": KEY}, base_url="qyapi.weixin.qq.com", client=client,
                    clock=clock)
    result = await ch.send("", ch.render(Rendering(text="测试"))[0])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "bad-url")
    assert KEY not in result.detail


async def test_a_markdown_text_cannot_mention_by_its_wording(fake, client, clock):
    server, url = fake
    ch = robot(url, client, clock)
    await send_all(ch, Rendering(text="请<@zhangsan>回复", tag=TAG, markdown=True))
    assert server.accepted[0]["markdown"]["content"] == TAG + "请＜@zhangsan>回复"
