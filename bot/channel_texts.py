"""What chat and console users read about official channels (issue 15), in one place."""

from __future__ import annotations


class Channel:
    """Alerts and console lines about sending channels."""

    # To the tier-1 group, through another channel, when a channel refuses for good.
    PERMANENT = ("【渠道告警】发送渠道「{name}」无法发送（{code}）：{detail}。"
                 "涉及群：{group}。请检查机器人配置或密钥，修复前该渠道的消息不会送达。")
    # The notice's sender, when its delivery failed for good on an official channel.
    ADDED = "已保存渠道 {name}（{kind}）的密钥：{mask}"
    REPLACED = "已更新渠道 {name}（{kind}）的密钥：{mask}"
    REMOVED = "已删除渠道 {name} 的密钥"
    NOT_FOUND = "没有渠道 {name} 的密钥"
    NONE = "尚未保存任何渠道密钥"
    LIST_LINE = "{name}\t{kind}\t{mask}\t更新于 {at}"
    NO_SECRET = ("没有读到密钥：请通过标准输入传入（echo … | tierbot channels add …），"
                 "或设置环境变量 {env}；密钥不能写在命令行参数里")
