"""Every text the account watchdog, failover and `tierbot groups move` show a person, in one
place (chat alerts in Chinese; the console summary in Chinese and English)."""

from __future__ import annotations

# What each machine-readable problem means to an operator.
PROBLEM = {
    "silent": "长时间收不到群消息（平时这个时段有消息）",
    "self_test_failed": "自检消息发出后没有回显",
    "no_echo": "多条已发消息没有回显（可能没有真正发出）",
    "unreachable": "连不上网关（puppet 服务）",
    "token_rejected": "网关拒绝了 token（可能已过期）",
    "banned": "账号疑似被封或被限制登录",
    "paused": "因“操作过于频繁”被长时间暂停发送",
}
HEALTH = {"ok": "正常", "degraded": "异常", "down": "无法发送"}
DEFAULT_ACCOUNT = "默认账号"

# One alert per problem and episode, through another channel than the failing one.
ALERT = "【账号告警】发送账号「{account}」{health}：{problems}。自 {since} 起。{hint}"
HINT_DOWN = "有备用通道的群将自动切换；其余群请尽快处理（见运行手册）。"
HINT_DEGRADED = "请检查该账号是否仍在线、能否正常收发。"
RECOVERED = "【账号恢复】发送账号「{account}」已恢复正常（异常持续 {duration}）。"
FAILOVER = ("【通道切换】发送账号「{account}」无法发送，已将 {groups} 个群切换到备用通道"
            "（{targets}），{rows} 条待发消息随之转移。")
FAILBACK = ("【通道切换】发送账号「{account}」已稳定恢复，{groups} 个群切回原通道，"
            "{rows} 条待发消息随之转移。")
NO_FALLBACK = "{groups} 个群没有可用的备用通道，仍在等待该账号恢复。"
# The self-test's text (the 【】 head makes the pipeline record its echo).
PROBE = "【自检】发送账号「{account}」自检 {token}，请忽略。"

# `tierbot groups move`: the console summary.
MOVED = ("已将 {groups} 个群从「{source}」移到「{target}」，{rows} 条待发消息随之转移。\n"
         "moved {groups} groups from {source} to {target}; {rows} pending messages follow.")
UNKNOWN_ACCOUNT = ("未知的发送账号「{name}」（已知：{known}）。\n"
                   "unknown account {name!r} (known: {known})")
SAME_ACCOUNT = "--from 和 --to 是同一个账号。\n--from and --to name the same account."
NO_NODE = "没有节点「{ref}」。\nno node {ref!r}"


def account_label(name: str) -> str:
    """An account's name as shown (the transport's only account has the empty name)."""
    return name or DEFAULT_ACCOUNT


def problems_text(problems: list[str] | tuple[str, ...]) -> str:
    """The problems, in words, joined."""
    return "；".join(PROBLEM.get(p, p) for p in problems)
