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
    Role.LIAISON: "企业联络员",
    Role.PROJECT_LEAD: "专班负责人",
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
    NOT_PERMITTED = "「{command}」由{who}使用，您没有权限。"
    ASK_INVITE = "如需开通，请找指挥长要邀请码：绑定 邀请码"
    INTERNAL_ERROR = "抱歉，处理出错了，请稍后再试。"
    FLOOD = "您发送指令过于频繁，{minutes}分钟内不再逐条回复（指令仍会照常登记）。"


TIER_SHORT: dict[int, str] = {1: "街道", 2: "社区", 3: "作战小组", 4: "房东群", 5: "出租房"}


class Permission:
    """Who may use a command, as refusals name it."""

    VERIFIER = "{tier}{role}"
    LANDLORD_FORM_KEYWORD = "房东上报"


class Help:
    """帮助."""

    HEADER = "您在本群可用的命令："
    LINE = "• {usage}"
    FOOTER = "有问题请联系本群指挥长。"


class Bind:
    """绑定 / 绑定群."""

    # A wrong code is never repeated: it may be a number someone typed by mistake.
    UNKNOWN = "邀请码无效，请核对后重发。"
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
    RETURN_NAMED_BY_DISPLAY = "（未写姓名，按微信昵称登记；如不对，请写上姓名重发）"
    RETURN_OK_TEMPERATURE = "，体温 {value:.1f}℃"
    RETURN_TELL_LANDLORD = "\n请房东在 {deadline} 前确认登记（发：租客返回 姓名 手机号 来自地点）"
    RETURN_TELL_LANDLORD_LATE = "，逾期未登记扣 {points} 分"
    RETURN_FEVER = "。体温偏高，已通知房东和网格员，请居家等候联系"
    RETURN_AGAIN = "{name} 已经登记过返回，居家观察至 {until}，无需重复登记。"
    RETURN_CONFIRMED = "已确认 {name} 返回（租客本人已登记），居家观察至 {until}"
    RETURN_FUTURE = "到达时间不能晚于现在，请核对日期后重发。"
    RETURN_BAD_DATE = "到达日期不对，请写成 2月20日 或 2月20日凌晨4点。"
    RETURN_NEEDS_NAME = "请写上租客姓名，例：租客返回 王明 13800138000 来自湖南长沙"
    ORIGIN_UNKNOWN = "未填"
    TEMP_OK = "已记录 {name} 体温 {value:.1f}℃，居家观察至 {until}"
    TEMP_FEVER = "{name} 体温 {value:.1f}℃ 偏高（≥{threshold:.1f}℃），已通知房东和网格员，请保持居家，等候联系。"
    TEMP_NO_STAY = "没有找到您的返回登记，请先发送：租客返回 姓名 手机号 来自哪里"
    TEMP_NEEDS_NAME = "请写上租客姓名，例：体温 王明 36.6"
    TEMP_NAME_UNKNOWN = "没有找到租客「{name}」的居家观察记录。"
    FEVER_TO_TEAM = "【发热提醒】{node} 租客 {name} {when} 体温 {value:.1f}℃，请尽快上门跟进。"
    HEALTH_HINT = "如需报体温，请发：体温 36.5（房东代报：体温 王明 36.5）"
    MAYBE_FEVER = "{name} 可能发热{value}，已告知房东和网格员，请保持居家。请量体温后确认，发送：体温 37.5"
    MAYBE_FEVER_TO_TEAM = "【可能发热】{node} {name} {when} 在群里说可能发热{value}，体温未确认，请尽快联系核实。"
    MAYBE_FEVER_VALUE = "（约{value:.1f}℃，未确认）"
    FEVER_TO_LANDLORD = "房东请注意：租客 {name} 体温 {value:.1f}℃ 偏高，请联系网格员。"
    LIST_EMPTY = "目前没有登记返回的租客。"
    LIST_HEADER = "{node} 租客 {count} 人，居家观察中 {watching} 人："
    LIST_LINE = "{index}. {name} {mobile} 来自{origin}，{status}"
    STATUS_WATCH = "居家观察至{until}"
    STATUS_DONE = "已解除观察"
    STATUS_FEVER = "⚠体温偏高 {value:.1f}℃"
    DATE = "{month}月{day}日"
    DATETIME = "{month}月{day}日{hour:02d}:{minute:02d}"


class Identity:
    """Who is who: mobiles that may not be used, links the landlord confirms, removals."""

    MOBILE_TAKEN = "该手机号已经登记，不能在这里登记。如有疑问，请联系{community}。"
    LINK_ASK = ("房东请确认：这位新成员自称是已登记的租客 {name}（{mobile}），是否为同一人？"
                "请回复“确认 {id}”或“不是 {id}”。确认前按新租客单独登记。")
    LINK_CONFIRMED = "已确认：这位成员就是租客 {name}，登记已合并。"
    LINK_REJECTED = "已记录：这位成员不是租客 {name}，按新租客单独登记。"
    LINK_UNKNOWN = "没有待确认的身份关联 {id}。"
    LINK_STALE = "身份关联 {id} 已失效（该成员或租客的登记已变更），请让租客重新登记。"
    REMOVED = "已移除 {name} 的身份：{roles}。"
    REMOVED_ROLE = "{node}{role}"
    REMOVE_UNKNOWN = "本群没有找到「{name}」，请 @该成员 或写其登记姓名。"
    REMOVE_SEVERAL = "本群有多人名为「{name}」，请 @该成员。"
    REMOVE_SELF = "不能移除自己，请联系上级指挥长。"
    REMOVE_HEAD = "本群指挥长只能由上级指挥长移除。"
    TENANCY_ENDED = "已为 {name} 办理退租，不再列入租客名单。"
    TENANT_UNKNOWN = "本群没有名为「{name}」的租客。"
    REASON_NONE = "未写明"
    PRUNED = "链条文件中已删除"
    MEMBER_LEFT = ("【成员退群】{name}（{roles}）已退出「{group}」。身份未自动移除；"
                   "如需移除，请在该群发送“移除 登记姓名”（租客：退租 姓名）。")


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


class Notice:
    """通知, 收到, 进度, reminders, escalation, pacing alerts."""

    TAG = "【通知#{id}】"
    TAG_URGENT = "【紧急通知#{id}】"
    RESEND = "（补发）"
    QUEUED = "{tag}已发出：{groups} 个群（{tiers}），预计 {eta} 内全部送达。发送“进度 {id}”查看确认情况。"
    QUEUED_TIER = "{tier}级 {n}"
    NO_TARGETS = "下级没有已绑定的群，通知未发出。"
    NOT_BELOW = "「{name}」不在本单元下级，请核对名称。"
    PREVIEW = "预览（未发送）：共 {groups} 个群（{tiers}）；发送账号：{accounts}；按当前发送节奏预计 {eta} 内全部送达。"
    DEFAULT_ACCOUNT = "默认账号"
    ACCOUNT_LINE = "{account} {groups} 个群"
    MORE_GROUPS = " 等{n}个群"
    PROGRESS_HEAD = "{tag}进度：送达 {delivered}/{total}，确认 {acked}/{total}，其他成员已读 {reads} 人次"
    PROGRESS_NOT_YOURS = "「进度」只能查看您发出的或您所指挥单元发出的通知，您没有权限查看这一条。"
    PROGRESS_FAILED = "，发送失败 {failed} 个"
    PROGRESS_TIER = "{tier}级：送达 {delivered}/{total}，确认 {acked}/{total}"
    PROGRESS_MISSING = "，未确认：{names}"
    PROGRESS_NONE = "您还没有发过通知。"
    PROGRESS_UNKNOWN = "没有找到通知#{id}。"
    REMINDER = "{tag}提醒：请回复“收到”确认已收到通知。"
    ESCALATION = "{tag}「{group}」已{duration}未确认收到，请督促落实。"
    STUCK = "{tag}提示：因数据库故障，发送中断了{duration}，现已恢复，未送达的群正在继续发送。"
    PAUSED = "{tag}提示：发送账号“{account}”被平台限制（{error}），暂停发送至 {until}，其余账号继续发送，暂停期间的群稍后补上。"
    FAILED = "{tag}未能送达「{group}」（已尝试 {attempts} 次：{error}），请人工转发。"
    DURATION_SECONDS = "{n}秒"
    DURATION_MINUTES = "{n}分钟"
    DURATION_HOURS = "{n}小时"


def duration(seconds: float) -> str:
    """'40秒', '12分钟', '3小时' for estimates."""
    if seconds < 60:
        return Notice.DURATION_SECONDS.format(n=max(1, round(seconds)))
    if seconds < 3600:
        return Notice.DURATION_MINUTES.format(n=round(seconds / 60))
    hours = round(seconds / 3600, 1)
    return Notice.DURATION_HOURS.format(n=int(hours) if hours == int(hours) else hours)


class Schedule:
    """定时通知, 定时列表, 取消定时."""

    CREATED_ONCE = "已设定定时通知#{id}：{when} 发往 {groups} 个群。内容：{text}"
    CREATED_DAILY = "已设定每日通知#{id}：{when} 发往 {groups} 个群。内容：{text}"
    DAILY_AT = "每天{hour:02d}:{minute:02d}"
    ONCE_AT = "{month}月{day}日{hour:02d}:{minute:02d}"
    LIST_EMPTY = "您没有待发的定时通知。"
    LIST_HEAD = "您的定时通知（取消请发：取消定时 编号）："
    LIST_LINE = "#{id} {when}：{text}"
    CANCELLED = "已取消定时通知#{id}。"
    UNKNOWN = "没有找到定时通知#{id}。"
    NOT_YOURS = "定时通知#{id}不是您设定的，不能取消。"
    IN_THE_PAST = "这个时间已经过去了，请写一个将来的时间。"
    BAD_DATE = "日期不对，请写成 明天8:00 或 3月1日 20:00。"
    MISSED = "【定时通知#{id}】（{text}）因系统停机错过了 {when} 的发送，超过补发时限，未补发。如仍需要，请重新发送。"


class Ticket:
    """反馈, 答复, 待办."""

    OPENED = "已提交反馈#{id}，上级会尽快答复。"
    UP = "【反馈#{id}】{group} {name}：{text}（答复请发：答复 {id} 内容）"
    DOWN = "【答复#{id}】关于“{asked}”：{text}{again}"
    AGAIN = "（补充答复）"
    ANSWERED = "已答复#{id}，已发回原群。"
    UNKNOWN = "没有找到发给本单元的反馈#{id}。"
    NO_PARENT = "本群没有上级群可以接收反馈。"
    TODO_EMPTY = "没有待答复的反馈。"
    TODO_HEAD = "待答复的反馈 {n} 条："
    TODO_LINE = "#{id} {group}：{text}（{when}）"


class Rollup:
    """The daily roll-up to tier-1..3 groups."""

    BODY = ("【每日汇总 {date}】{node}：今日返回 {returned} 人，居家观察 {watching} 人，发热 {fevers} 人；"
            "房东上报 消毒 {disinfect}、代办 {errand}、违规 {violation}、调解 {mediation}；"
            "反馈 新增 {opened}、已答复 {answered}；今日通知：{notices}。")
    NOTICE = "{tag}确认 {acked}/{total}"
    NO_NOTICES = "无"


class Health:
    """Chain health notes to the parent group."""

    LEFT = "【群状态】机器人已不在「{group}」（{node}），该群收不到通知了，请重新把机器人拉进群。"
    RENAMED = "【群状态】「{old}」（{node}）改名为「{new}」。"


class Points:
    """积分, 积分明细, 待核查, 核查, 申诉, 加分/扣分, 奖励, 好人候选 and the weekly lists."""

    STATUS = {"pending": "待核查", "approved": "已生效", "rejected": "已驳回",
              "appealed": "申诉中"}
    EVENT = "#{id} {date} {rule} {delta:+d} {status}"
    SCORE = "{name} 当前 {score} 分（起始 {start} 分），{scope}排名 第 {rank}/{total} 名。"
    SCORE_UNRANKED = "{name} 当前 {score} 分（起始 {start} 分）。"
    WEEK_HEAD = "本周积分记录："
    WEEK_NONE = "本周暂无积分记录。"
    HISTORY_HEAD = "积分明细（最近 {n} 条）："
    HISTORY_NONE = "还没有积分记录，当前 {score} 分。"
    NOT_A_LANDLORD = "只有登记的房东才有积分。"
    PENDING_HEAD = "待核查 {n} 条（回复：核查 编号 通过 / 核查 编号 驳回 原因）："
    PENDING_LINE = "#{id} {name} {rule} {delta:+d}（{date}）：{evidence}"
    PENDING_APPEAL = "#{id} {name} {rule} {delta:+d} 申诉（原{status}）：{reason}"
    PENDING_NONE = "没有待核查的积分记录。"
    PENDING_MORE = "……还有 {n} 条"
    VERIFY_UNKNOWN = "没有找到需要您核查的积分记录#{id}。"
    VERIFY_DONE = "积分记录#{id}已经核查过（{status}）。"
    VERIFIED_OK = "已核查#{id}：{name} {rule} {delta:+d} 通过，当前 {score} 分。"
    VERIFIED_NO = "已核查#{id}：{name} {rule} {delta:+d} 驳回（{reason}）。"
    TOLD_OK = "【积分核查】#{id} {name} {rule} {delta:+d} 已核查通过，当前 {score} 分。"
    TOLD_NO = ("【积分核查】#{id} {name} {rule} {delta:+d} 被驳回：{reason}。"
               "如有异议可发：申诉 {id} 理由")
    TOLD_DEDUCTED = "【积分扣分】#{id} {name} {rule} {delta:+d}：{evidence}。{state}"
    DEDUCTED_PENDING = "待社区核查，核查后如有异议可发：申诉 {id} 理由"
    DEDUCTED_APPROVED = "已生效，当前 {score} 分，如有异议可发：申诉 {id} 理由"
    TOLD_AUTO = "【积分核查】#{id} {name} {rule} {delta:+d} 超过 {days} 天未核查，自动生效，当前 {score} 分。"
    AUTO_REASON = "超过 {days} 天未核查，自动通过"
    APPEAL_UNKNOWN = "没有找到您的积分记录#{id}。"
    APPEAL_NOT_DECIDED = "积分记录#{id}还在核查中，核查后才能申诉。"
    APPEAL_AGAIN = "积分记录#{id}已经申诉过，不能再次申诉。"
    APPEAL_OK = "已提交申诉#{id}，由社区书记重新核查。"
    APPEAL_UP = ("【积分申诉】#{id} {name} {rule} {delta:+d}（原{status}）申诉：{reason}。"
                 "请核查：核查 {id} 通过 / 核查 {id} 驳回 原因")
    ADJUST_NO_TARGET = "没有找到房东「{name}」，请 @房东 或写房东的登记姓名（须是您下级的房东）。"
    ADJUST_AMBIGUOUS = "「{name}」有 {n} 位同名房东，请在群里 @ 该房东。"
    ADJUST_RULE_POINTS = "「{rule}」按规则{sign} {points} 分，请写：{word} @{name} {points} {reason}"
    ADJUST_OK_PENDING = "已记录#{id}：{name} {rule} {delta:+d}（{reason}），待社区书记核查。"
    ADJUST_OK = "已记录#{id}：{name} {rule} {delta:+d}（{reason}），当前 {score} 分。"
    ADJUST_CAPPED = "{name} 本周「{rule}」已达上限 {cap} 分，本次不再计分。"
    REWARD = ("{name} 累计奖励 {total:.2f} 元（已结算 {weeks} 周，加分 {points} 分，每分 {per:.2f} 元）；"
              "本周已核准加分 {week_points} 分，预计 {week_amount:.2f} 元，周结后发放。")
    GOOD_HEAD = "{year}年五好房东上榜 {n} 次及以上的好人候选："
    GOOD_LINE = "{index}. {name}（{node}）上榜 {count} 次"
    GOOD_NONE = "{year}年暂无上榜 {n} 次及以上的房东。"
    WEEK_TITLE = "【积分周榜】{scope} {year}年第{week}周（{start}—{end}）"
    RED = "五好房东（红榜）：{names}"
    BLACK = "拖拉机房东（黑榜）：{names}"
    LIST_NAME = "{name}（{node}）{score}分"
    LIST_EMPTY = "本周无"
    LIST_FOOTER = "房东可发送“积分”查看自己的积分和排名。"
    LATE_RETURN = "租客{tenant} {reported} 自行登记返回，房东 {hours} 小时内未登记（截至 {deadline}）"
    MISSED_DISINFECTION = "{date} {deadline} 前未上报消毒（{node}）"
    MANUAL = "{by}：{reason}"


class Shop:
    """打卡/巡查, 复工登记/确认/审核/列表, and the check-in reminders (shop rows)."""

    DATE = "{month}月{day}日"
    CHECKIN_OK = "已记录 {date} 巡查：{parts}"
    PART_CHECKED = "巡查 {checked}/{total} 家"
    PART_OPEN = "营业 {opened} 家"
    PART_CLOSED = "关门 {closed} 家"
    PART_STAFF = "员工 {staff} 人"
    PART_NORMAL = "体温正常"
    PART_DISINFECTED = "已消毒"
    PART_NOT_DISINFECTED = "未消毒"
    PART_PROBLEMS = "问题：{problems}"
    PART_NO_PROBLEMS = "无异常"
    PART_FEVER = "发热 {n} 人（{who}），已通知作战小组跟进"
    FEVER_WHO = "{shop} {value:.1f}℃"
    PART_UNAPPROVED = "注意：{shops} 未通过复工审核，不得营业"
    SEPARATOR = "，"
    UNKNOWN_SHOPS = "本排没有 {shops}。本排商位：{known}"
    WHICH_ROW = "您负责不止一排商铺，请在该排的商户群里打卡。"
    NO_SHOPS = "本排还没有登记商位，请联系社区在链路文件中添加。"
    FEVER_TO_TEAM = "【发热提醒】{node} {shop} 员工 {when} 体温 {value:.1f}℃，请尽快上门跟进。"
    MAYBE_FEVER_TO_TEAM = "【可能发热】{node} 铺长巡查报告有员工发热（{when}），请尽快核实。"
    REMIND = "【打卡提醒】{date} 商铺巡查还未打卡，请铺长发送，例：巡查 10家 营业3家 无异常"
    ESCALATE = "【未打卡】{node}（铺长 {captain}）{date} 到 {time} 仍未打卡巡查，请跟进。"
    NO_CAPTAIN = "无"
    # reopening
    REGISTERED = ("已登记复工申请 #{id}：{shop}，店主 {owner} {mobile}，员工 {staff} 人"
                  "（外地返回 {elsewhere} 人）。待铺长确认：复工确认 {id}")
    REGISTERED_BY_CAPTAIN = ("已登记并确认复工申请 #{id}：{shop}，店主 {owner} {mobile}，"
                             "员工 {staff} 人（外地返回 {elsewhere} 人），已报社区审核。")
    CONFIRMED = "已确认复工申请 #{id}（{shop}），已报社区审核。"
    TO_REVIEW = ("【复工审核】#{id} {node} {shop}：店主 {owner} {mobile}，员工 {staff} 人"
                 "（外地返回 {elsewhere} 人），消毒用品：{supplies}，已承诺。"
                 "请审核：复工审核 {id} 通过 / 复工审核 {id} 驳回 原因")
    NO_SUPPLIES = "未写明"
    APPROVED = "复工审核 #{id} 已通过：{shop}（{node}）"
    REJECTED = "复工审核 #{id} 已驳回：{shop}（{node}），原因：{reason}"
    APPROVED_DOWN = "【复工审核通过】#{id} {shop} 可以开门营业，请做好每日巡查打卡。"
    REJECTED_DOWN = "【复工审核驳回】#{id} {shop}，原因：{reason}。整改后可重新登记。"
    NOT_FOUND = "没有这个复工申请：#{id}"
    NOT_HERE = "复工申请 #{id} 不属于本群管辖。"
    WRONG_STEP = "复工申请 #{id} 当前状态为「{status}」，不能{action}。"
    ACTION_CONFIRM = "确认"
    ACTION_REVIEW = "审核"
    ALREADY_OPEN = "{shop} 已有复工申请 #{id}（{status}），无需重复登记。"
    STATUS: dict[str, str] = {
        "captain": "待铺长确认", "review": "待社区审核", "approved": "已通过", "rejected": "已驳回",
    }
    LIST_HEADER = "复工列表（{node}）：待确认 {captain}，待审核 {review}，已通过 {approved}"
    LIST_LINE = "#{id} {node} {shop} 店主 {owner} {status}"
    LIST_EMPTY = "暂无复工申请。"


class Stats:
    """统计 and the numbers in the roll-up and the export."""

    HEADER = "【统计 {date}】{node}"
    LINE = "{title}：{items}"
    ITEM = "{label} {value}"
    ITEM_SEPARATOR = "，"
    UNKNOWN_NODE = "本级以下没有「{name}」。"
    AMBIGUOUS_NODE = "「{name}」不止一个，请写全称。"
    EXPORT_TITLE = "{node} 统计 {date}"
    EXPORT_NODE = "单位"
    EXPORT_TIER = "层级"
    REOPENING_SHEET = "复工登记"
    REOPENING_HEADERS = ("编号", "单位", "商位", "店主", "手机号", "员工人数", "外地返回",
                         "消毒用品", "状态", "登记时间")


class Retention:
    """What stays of a record after the campaign's personal data is purged."""

    ERASED_NAME = "（已清除）"
    ERASED_TEXT = "（内容已清除）"
