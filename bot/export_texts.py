"""Wording of the exports and of the import preview, as console and CLI users read it."""

from __future__ import annotations


class Export:
    """XLSX reports: names, sheet headers, refusals."""

    NAMES = {"stats": "每日统计", "lists": "红黑榜", "watch": "居家观察人员"}
    FILENAMES = {"stats": "统计-{node}-{key}.xlsx", "lists": "红黑榜-{node}-{key}.xlsx",
                 "watch": "居家观察-{node}-{key}.xlsx"}
    LISTS_TITLE = "{node} 房东十二分制 {week} 周榜"
    LISTS_SHEET = "周榜"
    LISTS_GROUPS = (("评比范围", ("范围",)), ("房东", ("名次", "房东", "所在单元")),
                    ("积分", ("得分", "本周变化", "扣分")), ("榜单", ("红黑榜",)),
                    ("奖励", ("奖励积分", "奖励金额（元）")))
    BOARDS = {"red": "红榜（五好房东）", "black": "黑榜（拖拉机房东）", "": ""}
    WATCH_TITLE = "{node} 居家观察人员 {date}（号码已遮蔽）"
    WATCH_SHEET = "居家观察"
    WATCH_GROUPS = (("人员", ("类别", "单位", "姓名", "手机号")),
                    ("返回", ("来自", "返回日期")),
                    ("观察", ("观察至", "发热", "最近体温")))
    KIND_TENANT = "租客"
    KIND_WORKER = "员工"
    FEVER = {True: "是", False: "否"}
    REFUSED = "无权导出「{name}」：居家观察人员名单仅限指挥长、书记和超级管理员。"
    NOT_CLOSED = "{week} 周还没有结算（每周一自动结算），没有榜单可导出。"
    BAD_WEEK = "周次格式应为 2020-W09，收到「{week}」。"


class Import:
    """The import preview and its result."""

    NEW_NODE = "新单元"
    NEW_GROUP = "新群"
    NEW_PERSON = "新人员"
    NEW_ROLE = "新职务"
    CHANGED = "变更"
    ERROR = "错误"
    ROW = "第 {row} 行"
    NOTHING = "没有变化：文件与现有数据一致。"
    HAS_ERRORS = "文件有 {n} 处错误，未导入任何内容。请改正后重新上传。"
    APPLIED = "已导入：{nodes} 个单元，{groups} 个群，{people} 人，{roles} 个职务。"
    EXPIRED = "预览已失效，请重新上传文件。"
