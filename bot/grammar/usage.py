"""Every user-facing Chinese hint of the grammar: command forms and what went wrong."""

from __future__ import annotations

from typing import Final

__all__ = ["PROBLEMS", "REPORT_KIND_LABELS", "USAGE", "hint", "usage"]

# One line per command, keyed by the command class name; the help command lists these.
USAGE: Final[dict[str, str]] = {
    "Help": "格式：帮助（查看可用的命令）",
    "BindPerson": "格式：绑定 绑定码，例：绑定 A7K2Q9",
    "BindGroup": "格式：绑定群 绑定码，例：绑定群 A7K2Q9",
    "TenantReturn": (
        "格式：租客返回 姓名 手机号 来自哪里 [到达时间] [体温]，"
        "例：租客返回 王明 13800138000 来自湖南长沙 2月20日凌晨4点 体温36.5"
    ),
    "Temperature": "格式：体温 36.5（房东代报：体温 王明 36.5）",
    "LandlordReport": (
        "格式：房东上报 消毒/代办/违规/调解 [说明]，例：房东上报 代办 帮302租客买菜"
    ),
    "MyTenants": "格式：我的租客",
}

REPORT_KIND_LABELS: Final[dict[str, str]] = {
    "disinfect": "消毒",
    "errand": "代办",
    "violation": "违规",
    "mediation": "调解",
}

PROBLEMS: Final[dict[str, str]] = {
    "mobile_missing": "缺少手机号，手机号应为11位，例如13800138000",
    "mobile_invalid": "手机号应为11位，例如13800138000",
    "id_invalid": "身份证号不正确，应为18位且校验位正确",
    "temperature_missing": "缺少体温数值",
    "temperature_range": "体温应在34.0到43.0℃之间",
    "origin_missing": "缺少来自哪里（例如：来自湖南长沙）",
    "name_missing": "缺少租客姓名",
    "arrival_invalid": "到达时间不正确，例如：2月20日凌晨4点",
    "code_missing": "缺少绑定码",
    "code_invalid": "绑定码应为4到12位字母或数字",
    "kind_unknown": "上报类型应为：" + "、".join(REPORT_KIND_LABELS.values()) + "、返回",
    "detail_missing": "请写明情况",
}


def usage(command: str) -> str:
    """The one-line form of a command, by command class name ('' if unknown)."""
    return USAGE.get(command, "")


def hint(command: str, problem: str) -> str:
    """A one-line hint: what is wrong (a PROBLEMS key or text), then the right form."""
    text = PROBLEMS.get(problem, problem)
    form = usage(command)
    return f"{text}。{form}" if form else text
