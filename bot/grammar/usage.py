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
        "例：租客返回 王明 13800000000 来自湖南长沙 2月20日凌晨4点 体温36.5"
    ),
    "Temperature": "格式：体温 36.5（房东代报：体温 王明 36.5）",
    "LandlordReport": (
        "格式：房东上报 消毒/代办/违规/调解 [说明]，例：房东上报 代办 帮302租客买菜"
    ),
    "MyTenants": "格式：我的租客",
    # notices down the chain
    "SendNotice": "格式：通知 [到3级|节点名|群类型] 内容，例：通知 请各房东今日完成楼道消毒",
    "Ack": "格式：收到（可写通知编号，例：收到 #27）",
    "Relay": "格式：转发带【通知#27】标记的通知原文",
    "Progress": "格式：进度 [通知编号]，例：进度 27",
    "ScheduleNotice": (
        "格式：定时通知 时间 内容，例：定时通知 明天8:00 请各房东完成楼道消毒；"
        "每天 18:00 通知 房东群 请今日完成楼道消毒"
    ),
    "ScheduleList": "格式：定时列表",
    "ScheduleCancel": "格式：取消定时 编号，例：取消定时 5",
    # up the chain
    "Feedback": "格式：反馈 内容，例：反馈 3楼楼道灯坏了，晚上不安全",
    "Answer": "格式：答复 编号 内容，例：答复 12 已安排电工明天上门",
    "Todo": "格式：待办",
    # the landlords' 12-point system
    "AdjustPoints": "格式：加分/扣分 @房东 分值 原因，例：加分 @董宝明 2 帮租客代购",
    "PendingChecks": "格式：待核查",
    "Verify": "格式：核查 编号 通过/驳回 [理由]，例：核查 12 通过；核查 12 驳回 证据不足",
    "Score": "格式：积分（查看自己的积分）",
    "ScoreHistory": "格式：积分明细",
    "Appeal": "格式：申诉 编号 理由，例：申诉 12 当天已消毒，有照片为证",
    "Reward": "格式：奖励（查看奖励）",
    "GoodPersonCandidates": "格式：好人候选（查看好人候选名单）",
}

REPORT_KIND_LABELS: Final[dict[str, str]] = {
    "disinfect": "消毒",
    "errand": "代办",
    "violation": "违规",
    "mediation": "调解",
}

PROBLEMS: Final[dict[str, str]] = {
    "mobile_missing": "缺少手机号，手机号应为11位，例如13800000000",
    "mobile_invalid": "手机号应为11位，例如13800000000",
    "mobile_not_mobile": "这不是手机号（手机号以13到19开头），请核对后重发",
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
    "invalid": "格式不正确",
    "number_invalid": "编号应为正整数",
    "notice_text_missing": "缺少通知内容",
    "notice_glued": "如要发通知，请在“通知”后空一格再写内容",
    "tier_range": "层级应为1到5级，例如：到3级",
    "time_missing": "缺少时间，例如：明天8:00、每天18点",
    "time_invalid": "时间不正确：小时应为0到23，分钟应为0到59，例如：晚上8点、20:00",
    "date_invalid": "日期不正确，例如：3月1日",
    "daily_with_date": "每天定时的通知不能写日期",
    "schedule_id_missing": "缺少定时编号",
    "feedback_missing": "请写明反馈内容",
    "ticket_id_missing": "缺少反馈编号",
    "answer_missing": "请写明答复内容",
    "target_missing": "请@要加分或扣分的房东",
    "points_missing": "缺少分值（1到12分）",
    "points_range": "分值应为1到12分",
    "reason_missing": "请写明原因",
    "event_id_missing": "缺少记录编号",
    "decision_missing": "请写明通过或驳回",
    "reject_reason_missing": "驳回请写明理由",
    "appeal_reason_missing": "请写明申诉理由",
}


def usage(command: str) -> str:
    """The one-line form of a command, by command class name ('' if unknown)."""
    return USAGE.get(command, "")


def hint(command: str, problem: str) -> str:
    """A one-line hint: what is wrong (a PROBLEMS key or text), then the right form."""
    text = PROBLEMS.get(problem, problem)
    form = usage(command)
    return f"{text}。{form}" if form else text
