"""The Wechaty transport's pure parts: message mapping, room events, errors, backoff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.utils import Wrapper

from bot.config import AccountSettings, WechatySettings
from bot.transports.base import TransportError
from bot.transports.wechaty import (
    MessageFields,
    WechatyTransport,
    _Account,
    classify_error,
    members_left_events,
    mention_text,
    reconnect_delay,
    room_left_event,
    room_renamed_event,
    timestamp_to_datetime,
    to_incoming,
)

NOW = datetime(2020, 2, 21, 2, 0, tzinfo=UTC)
# 2020-02-21 01:59:30 UTC in milliseconds, as puppets usually send it.
TS_MS = 1582250370000.0


def fields(**changes: object) -> MessageFields:
    base: dict[str, object] = {
        "message_id": "m1", "room_id": "dong@chatroom", "talker_id": "wx-dong",
        "talker_name": "董宝明", "text": "租客返回 王明 13800138000", "timestamp": TS_MS,
        "self_id": "wx-bot", "mention_ids": (), "room_topic": "董宝明租客群"}
    base.update(changes)
    return MessageFields(**base)  # type: ignore[arg-type]


def test_a_room_text_message_maps_to_the_inbound_model():
    msg = to_incoming(fields(), account="main", received_at=NOW)
    assert msg is not None
    assert (msg.transport, msg.message_id, msg.room_id, msg.sender_id, msg.sender_name) == (
        "wechaty", "m1", "dong@chatroom", "wx-dong", "董宝明")
    assert msg.text == "租客返回 王明 13800138000"
    assert msg.at == datetime(2020, 2, 21, 1, 59, 30, tzinfo=UTC)
    assert msg.account == "main" and msg.room_topic == "董宝明租客群"
    assert not msg.is_self and not msg.mentions_bot


def test_the_bots_own_message_is_marked_self():
    msg = to_incoming(fields(talker_id="wx-bot", talker_name="小助手"), account="a",
                      received_at=NOW)
    assert msg is not None and msg.is_self and msg.account == "a"


def test_a_mention_of_the_bot_comes_from_the_mention_ids_not_the_text():
    mentioned = to_incoming(fields(text="在吗", mention_ids=("wx-bot", "wx-pan")),
                            account="a", received_at=NOW)
    assert mentioned is not None and mentioned.mentions_bot
    assert mentioned.mention_ids == ("wx-bot", "wx-pan")
    by_name_only = to_incoming(fields(text="@小助手 在吗"), account="a", received_at=NOW)
    assert by_name_only is not None and not by_name_only.mentions_bot


def test_before_login_nothing_is_self_or_a_mention():
    msg = to_incoming(fields(self_id="", talker_id="", mention_ids=("",)), account="a",
                      received_at=NOW)
    assert msg is None
    msg = to_incoming(fields(self_id="", mention_ids=("",)), account="a", received_at=NOW)
    assert msg is not None and not msg.is_self and not msg.mentions_bot


def test_direct_and_non_text_messages_are_not_delivered():
    assert to_incoming(fields(room_id=""), account="a", received_at=NOW) is None
    assert to_incoming(fields(type_name="MESSAGE_TYPE_IMAGE"), account="a",
                       received_at=NOW) is None


def test_missing_names_and_texts_have_safe_defaults():
    msg = to_incoming(fields(talker_name="", text=""), account="a", received_at=NOW)
    assert msg is not None and msg.sender_name == "wx-dong" and msg.text == ""


def test_timestamps_in_seconds_milliseconds_or_missing():
    assert timestamp_to_datetime(TS_MS, NOW) == timestamp_to_datetime(TS_MS / 1000, NOW)
    assert timestamp_to_datetime(0, NOW) == NOW
    assert timestamp_to_datetime(None, NOW) == NOW
    assert timestamp_to_datetime(TS_MS, NOW).tzinfo is UTC


def test_room_leave_is_an_event_only_when_the_bot_leaves():
    event = room_left_event(room_id="ying@chatroom", removed_ids=["wx-bot"], self_id="wx-bot",
                            timestamp=TS_MS, account="main", received_at=NOW)
    assert event is not None and (event.kind, event.room_id, event.account) == (
        "left", "ying@chatroom", "main")
    assert room_left_event(room_id="ying@chatroom", removed_ids=["wx-zhao"], self_id="wx-bot",
                           timestamp=TS_MS, account="main", received_at=NOW) is None
    assert room_left_event(room_id="ying@chatroom", removed_ids=["wx-bot"], self_id="",
                           timestamp=TS_MS, account="main", received_at=NOW) is None


def test_room_leave_of_other_members_is_a_member_left_event_each():
    events = members_left_events(room_id="ying@chatroom", removed_ids=["wx-zhao", "wx-bot",
                                                                      "wx-qian", "wx-zhao"],
                                 self_id="wx-bot", timestamp=TS_MS, account="main",
                                 received_at=NOW)
    assert [(e.kind, e.room_id, e.member_id, e.account) for e in events] == [
        ("member_left", "ying@chatroom", "wx-zhao", "main"),
        ("member_left", "ying@chatroom", "wx-qian", "main")]


def test_room_topic_is_a_renamed_event():
    event = room_renamed_event(room_id="ying@chatroom", old_topic="应天喜租客群",
                               new_topic="应天喜租客群(2)", timestamp=None, account="b",
                               received_at=NOW)
    assert (event.kind, event.old_topic, event.new_topic, event.at, event.account) == (
        "renamed", "应天喜租客群", "应天喜租客群(2)", NOW, "b")


def test_mentions_are_written_in_front_as_python_wechaty_does():
    assert mention_text("体温偏高", ["董宝明"]) == "@董宝明 体温偏高"
    assert mention_text("x", ["甲", "乙"]) == "@甲\u2005@乙 x"
    assert mention_text("x", [""]) == "x"
    assert mention_text("x", []) == "x"


@pytest.mark.parametrize("exc", [
    GRPCError(Status.UNKNOWN, "发送消息过于频繁"),
    GRPCError(Status.INTERNAL, "操作过于频繁，请稍后再试"),
    GRPCError(Status.RESOURCE_EXHAUSTED, "quota"),
    GRPCError(Status.RESOURCE_EXHAUSTED, None),
    RuntimeError("发送消息过于频繁"),
    GRPCError(Status.UNKNOWN, "Sending too frequent"),
])
def test_too_frequent_is_rate_limited(exc: BaseException):
    error = classify_error(exc)
    assert error.rate_limited and error.retryable


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(),
    OSError("Network is unreachable"),
    StreamTerminatedError("Connection lost"),
    TimeoutError(),
    GRPCError(Status.UNAVAILABLE, "gateway restarting"),
    GRPCError(Status.DEADLINE_EXCEEDED, None),
    GRPCError(Status.UNKNOWN, "puppet not logged in"),
])
def test_connection_and_transient_errors_are_retryable(exc: BaseException):
    error = classify_error(exc)
    assert error.retryable and not error.rate_limited


@pytest.mark.parametrize("exc", [
    GRPCError(Status.NOT_FOUND, "room not found"),
    GRPCError(Status.PERMISSION_DENIED, "not a member of the room"),
    GRPCError(Status.INVALID_ARGUMENT, "bad id"),
    GRPCError(Status.UNAUTHENTICATED, "bad token"),
    ValueError("a bug"),
])
def test_permanent_errors_are_not_retried(exc: BaseException):
    error = classify_error(exc)
    assert not error.retryable and not error.rate_limited


def test_a_transport_error_is_kept_and_messages_are_short():
    original = TransportError("x", rate_limited=True)
    assert classify_error(original) is original
    assert str(classify_error(GRPCError(Status.NOT_FOUND, "room not found"))) == (
        "NOT_FOUND: room not found")
    assert "ConnectionRefusedError" in str(classify_error(ConnectionRefusedError()))


def test_reconnect_waits_double_up_to_the_longest():
    assert [reconnect_delay(n, 1.0, 60.0) for n in range(8)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert reconnect_delay(0, 0.5, 0.2) == 0.2


def test_accounts_are_required_and_distinct():
    with pytest.raises(ValueError, match="at least one"):
        WechatyTransport(WechatySettings())
    twice = AccountSettings(name="a", endpoint="127.0.0.1:1", token="t")
    with pytest.raises(ValueError, match="differ"):
        WechatyTransport(WechatySettings(accounts=[twice, twice]))


async def test_before_start_every_account_is_disconnected_and_sends_are_retryable():
    transport = WechatyTransport(WechatySettings(accounts=[
        AccountSettings(name="a", endpoint="127.0.0.1:1", token="t1"),
        AccountSettings(name="b", endpoint="127.0.0.1:2", token="t2")]))
    assert [(s.name, s.connected) for s in transport.account_states()] == [
        ("a", False), ("b", False)]
    with pytest.raises(TransportError) as info:
        await transport.send("r@chatroom", "x")
    assert info.value.retryable


class _LostStreamPuppet:
    """A send that ends as grpclib ends a call whose connection is lost: its Wrapper cancels
    the task awaiting the call and raises StreamTerminatedError in place of the cancel."""

    def __init__(self) -> None:
        self.calls = 0

    async def message_send_text(self, **_: object) -> str:
        self.calls += 1
        wrapper = Wrapper()
        asyncio.get_running_loop().call_soon(
            wrapper.cancel, StreamTerminatedError("Connection lost"))
        with wrapper:
            await asyncio.sleep(5)
        return "never"


def _connected(puppet: object) -> WechatyTransport:
    spec = AccountSettings(name="a", endpoint="127.0.0.1:1", token="t")
    transport = WechatyTransport(WechatySettings(accounts=[spec]))
    acc = _Account(spec, bot=None)
    acc.puppet, acc.connected = puppet, True
    transport._accounts = {"a": acc}
    return transport


async def test_a_send_grpclib_ends_by_cancelling_leaves_the_task_not_cancelling():
    # Seen in CI: the cancel grpclib left behind made the sender's worker take itself for
    # stopped in the middle of a broadcast (Task.cancelling() stayed 1), and the rest of the
    # notice never went out after the gateway came back.
    puppet = _LostStreamPuppet()
    transport = _connected(puppet)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    for _ in range(2):
        with pytest.raises(TransportError) as info:
            await transport.send("r@chatroom", "x")
        assert info.value.retryable and "Connection lost" in str(info.value)
        assert task.cancelling() == 0
    assert puppet.calls == 2
    await asyncio.sleep(0.01)  # the task waits normally afterwards


async def test_a_real_cancel_of_a_send_still_cancels():
    class Slow:
        async def message_send_text(self, **_: object) -> str:
            await asyncio.sleep(5)
            return "never"

    transport = _connected(Slow())
    sending = asyncio.create_task(transport.send("r@chatroom", "x"))
    await asyncio.sleep(0.01)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert sending.cancelled()
