"""Every sentence a chat user reads (except parse hints, which live in bot/grammar/usage.py).

Kept in one place, one class per feature, so the wording can be reviewed and changed together.
"""

from __future__ import annotations

from models import Role

ROLE_NAMES: dict[str, str] = {
    Role.COMMANDER: "指挥长",
    Role.MEMBER: "作战小组成员",
    Role.SECRETARY: "书记",
    Role.LANDLORD: "房东",
    Role.TENANT: "租客",
    Role.CAPTAIN: "铺长",
}

TIER_NAMES: dict[int, str] = {
    1: "一级作战单元（街道）",
    2: "二级作战单元（社区）",
    3: "三级作战单元（作战小组）",
    4: "作战小组成员+房东群",
    5: "房东+租客群",
}


class General:
    """What the pipeline itself says."""

    GROUP_NOT_BOUND = "本群还没有绑定到作战单元。请找指挥长要群邀请码，在本群发送：绑定群 邀请码"
    WRONG_GROUP = "「{command}」只能在{where}使用。"
    NOT_PERMITTED = "您没有权限使用「{command}」。如需开通，请找指挥长要邀请码：绑定 邀请码"
    INTERNAL_ERROR = "抱歉，处理出错了，请稍后再试。"


class Help:
    """帮助."""

    HEADER = "您在本群可用的命令："
    LINE = "• {usage}"
    FOOTER = "有问题请联系本群指挥长。"


class Bind:
    """绑定 / 绑定群."""

    UNKNOWN = "邀请码「{code}」无效，请核对后重发。"
    USED = "邀请码「{code}」已经用过了，请找指挥长重新发放。"
    EXPIRED = "邀请码「{code}」已过期，请找指挥长重新发放。"
    IS_GROUP_CODE = "这是群邀请码，请在要绑定的群里发送：绑定群 {code}"
    IS_PERSON_CODE = "这是个人邀请码，请发送：绑定 {code}"
    PERSON_OK = "绑定成功：{name}，{node} {role}。发送“帮助”查看可用命令。"
    PERSON_ALREADY = "您已经是{node}的{role}，无需重复绑定。"
    GROUP_OK = "本群已绑定到「{node}」（{tier}）。"
    GROUP_ALREADY = "本群已经绑定到「{node}」，不能再绑定。"


class Tenant:
    """租客返回, 体温, 我的租客."""

    RETURN_OK = "已登记 {name} 返回（来自{origin}，{arrived}到达），居家观察至 {until}"
    RETURN_OK_TEMPERATURE = "，体温 {value:.1f}℃"
    RETURN_FEVER = "。体温偏高，已通知房东和网格员，请居家等候联系"
    RETURN_AGAIN = "{name} 已经登记过返回，居家观察至 {until}，无需重复登记。"
    RETURN_CONFIRMED = "已确认 {name} 返回（租客本人已登记），居家观察至 {until}"
    RETURN_FUTURE = "到达时间不能晚于现在，请核对日期后重发。"
    RETURN_BAD_DATE = "到达日期不对，请写成 2月20日 或 2月20日凌晨4点。"
    RETURN_NEEDS_NAME = "请写上租客姓名，例：租客返回 王明 13800138000 来自湖南长沙"
    RETURN_NOT_YOURS = "该手机号已登记在其他人名下，请核对手机号。"
    ORIGIN_UNKNOWN = "未填"
    TEMP_OK = "已记录 {name} 体温 {value:.1f}℃，居家观察至 {until}"
    TEMP_FEVER = "{name} 体温 {value:.1f}℃ 偏高（≥{threshold:.1f}℃），已通知房东和网格员，请保持居家，等候联系。"
    TEMP_NO_STAY = "没有找到您的返回登记，请先发送：租客返回 姓名 手机号 来自哪里"
    TEMP_NEEDS_NAME = "请写上租客姓名，例：体温 王明 36.6"
    TEMP_NAME_UNKNOWN = "没有找到租客「{name}」的居家观察记录。"
    FEVER_TO_TEAM = "【发热提醒】{node} 租客 {name} {when} 体温 {value:.1f}℃，请尽快上门跟进。"
    FEVER_TO_LANDLORD = "房东请注意：租客 {name} 体温 {value:.1f}℃ 偏高，请联系网格员。"
    LIST_EMPTY = "目前没有登记返回的租客。"
    LIST_HEADER = "{node} 租客 {count} 人，居家观察中 {watching} 人："
    LIST_LINE = "{index}. {name} {mobile} 来自{origin}，{status}"
    STATUS_WATCH = "居家观察至{until}"
    STATUS_DONE = "已解除观察"
    STATUS_FEVER = "⚠体温偏高 {value:.1f}℃"
    DATE = "{month:02d}月{day:02d}日"
    DATETIME = "{month:02d}月{day:02d}日{hour:02d}:{minute:02d}"


class Report:
    """房东上报."""

    OK: dict[str, str] = {
        "disinfect": "已记录：{date} 公共区域消毒。",
        "errand": "已记录代办：{detail}",
        "violation": "已记录租客违规情况：{detail}。网格员会跟进。",
        "mediation": "已记录参与调解：{detail}",
    }
    DISINFECT_AGAIN = "{date} 已经上报过消毒，无需重复上报。"
    NO_DETAIL = "（未写明）"
    WHICH_NODE = "您在多个出租房群担任房东，请到对应的房东+租客群里上报。"
