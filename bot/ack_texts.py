"""Wording of acknowledgement by link and by WeChat reply, and of how 进度 says acks come."""

from __future__ import annotations

# Appended to a notice in a group whose channel cannot report who wrote 收到.
SUFFIX_LINK = "\n\n本群消息机器人收不到回复，请负责人点击链接确认收到：{url}\n或在微信上向机器人回复“收到 #{id}”。"
SUFFIX_WECHAT = "\n\n本群消息机器人收不到回复，请负责人在微信上向机器人回复“收到 #{id}”确认。"

# The reminder in such a group (its suffix follows).
REMINDER = "{tag}提醒：本群还没有确认收到通知。"

# How acknowledgements come, per tier in 进度.
MODE_CHAT = "群内回复"
MODE_LINK = "点击链接"
MODE_WECHAT = "微信回复"
MODES_JOIN = "、"
PROGRESS_MODES = "（{modes}）"

# The confirm page and its refusals (the link is opened in a phone's browser).
PAGE_TITLE = "确认收到通知"
PAGE_CONFIRM = "请确认「{group}」已收到{tag}："
PAGE_WHO = "确认将记为「{group}」整体已收到（链接发在群里，无法得知是谁点击的，所以不记在任何个人名下）。"
PAGE_BUTTON = "确认收到"
PAGE_DONE = "已确认：「{group}」收到{tag}。"
PAGE_ALREADY = "「{group}」已于 {at} 确认收到{tag}，无需再次确认。"
PAGE_EXPIRES = "链接有效期至 {until}。"
REFUSED_INVALID = "链接无效：签名不符，可能被改动过或不完整，请使用通知中的原始链接。"
REFUSED_EXPIRED = "链接已过期（有效期至 {until}），请在微信上向机器人回复“收到 #{id}”确认。"
REFUSED_NOT_TARGET = "这条通知没有发到该群，无法确认。"
REFUSED_UNKNOWN = "没有找到这条通知。"
REFUSED_FORMAT = "{at:%Y-%m-%d %H:%M}"
