"""Every Chinese text of enterprises and key projects (企业登记, 员工登记, 企业日报, 工作卡,
their reminders and alerts, and their lines in 统计), in one place."""

from __future__ import annotations

from typing import Final

STATUS_NAMES: Final[dict[str, str]] = {
    "closed": "未复工", "filed": "已备案待复工", "reopened": "已复工",
}
HEALTH_NAMES: Final[dict[str, str]] = {
    "normal": "正常", "fever": "发热", "isolated": "隔离",
}


class Enterprise:
    """企业登记 and the enterprise's file."""

    CREATED = "已为「{name}」建档（一企一档）：{summary}"
    UPDATED = "已更新「{name}」企业档案：{summary}"
    SUMMARY = "地址 {address}，联络员 {liaison}，员工 {headcount} 人，{status}"
    GROUPS = "；车间/宿舍：{groups}"
    INVITES = "\n企业群绑定码 {group_code}（在企业群里发：绑定群 {group_code}）；联络员绑定码 {person_code}（联络员发：绑定 {person_code}），{days}天内有效"
    NONE = "未填"
    NEEDS_NAME = "请写上企业名称，例：企业登记 华鑫针织 地址:长春路12号"
    OTHER_NAME = "本群是「{name}」的企业群，只能更新本企业的档案；新企业请在社区群登记"
    STATUS_TO_COMMUNITY = "【企业复工】{name} 联络员将复工状态改为：{status}"


class Worker:
    """员工登记 (一人一卡) and workers' temperatures."""

    REGISTERED = "已为 {name} 建卡（一人一卡）：来自{origin}，{returned}返岗{group}{health}"
    UPDATED = "已更新 {name} 的员工卡：来自{origin}，{returned}返岗{group}{health}"
    GROUP = "，{group}"
    WATCH = "，居家观察至 {until}"
    ISOLATED = "，隔离中"
    LINKED = "（已关联其微信，本人可直接报体温）"
    UNKNOWN_GROUP = "本企业没有「{group}」，现有车间/宿舍：{known}"
    NO_GROUPS = "无"
    CONTACT_TAKEN = "被@的微信已关联其他人员，不能再关联到 {name}"
    MANY_MENTIONS = "一次只能@一位员工"
    TEMP_OK = "已记录员工 {name} 体温 {value:.1f}℃"
    TEMP_FEVER = "员工 {name} 体温 {value:.1f}℃ 偏高（≥{threshold:.1f}℃），已通知企业联络员和社区，请立即停止上岗，等候安排。"
    TEMP_NO_CARD = "没有找到您的员工卡，请企业联络员先登记：员工登记 姓名 手机号 来自哪里"
    TEMP_NAME_UNKNOWN = "本企业没有员工「{name}」的员工卡"
    MAYBE_FEVER = "{name} 可能发热{value}，已告知社区，请暂停上岗。请量体温后确认，发送：体温 37.5"
    FEVER_TO_COMMUNITY = "【发热提醒】{node} 员工 {name} {when} 体温 {value:.1f}℃，请尽快跟进。"


class Report:
    """企业日报."""

    OK = "已收到 {name} {date} 企业日报：在岗{on_duty} 返岗{returned} 隔离{isolated} 异常{anomalies}"
    CORRECTED = "已更正 {name} {date} 企业日报：在岗{on_duty} 返岗{returned} 隔离{isolated} 异常{anomalies}"
    ANOMALY_TOLD = "；异常{anomalies}人已报告社区"
    ANOMALY_TO_COMMUNITY = "【企业异常】{name} {date} 企业日报：异常{anomalies}人（在岗{on_duty} 隔离{isolated}），请跟进。"
    REMIND = "【提醒】{name} 今天（{date}）的企业日报还没有报，请联络员发送：企业日报 在岗N 返岗N 隔离N 异常N"
    ESCALATE = "【未报企业日报】{date} 截至{time}，以下企业还没有报：{names}"


class Card:
    """工作卡 (每日工作卡) of key projects."""

    OK = "已收到 {name} {date} 工作卡：在场{on_site} 新进{arrivals} 异常{anomalies}"
    CORRECTED = "已更正 {name} {date} 工作卡：在场{on_site} 新进{arrivals} 异常{anomalies}"
    TICKETS = "；问题已报社区和街道（反馈#{ids}）"
    TICKET_TEXT = "【工作卡问题】{problems}"
    ANOMALY_TOLD = "；异常{anomalies}人已报告社区"
    ANOMALY_TO_COMMUNITY = "【工程异常】{name} {date} 工作卡：异常{anomalies}人（在场{on_site}），请跟进。"
    REMIND = "【提醒】{name} 今天（{date}）的工作卡还没有报，请专班负责人发送：工作卡 在场N 新进N 异常N [问题:…]"
    ESCALATE = "【未报工作卡】{date} 截至{time}，以下重点工程还没有报：{names}"


# The lines of 统计 for enterprises and key projects.
STATS: Final[dict[str, str]] = {
    "enterprises": "企业数",
    "reopened": "企业已复工",
    "reported": "企业日报今日已报",
    "workers": "员工已建卡",
    "back": "员工已返岗",
    "isolated": "员工隔离/居家观察",
    "fevers": "员工发热",
    "projects": "重点工程数",
    "cards": "工作卡今日已报",
    "on_site": "工程今日在场",
    "anomalies": "工程今日异常",
}
