"""What the console says to its users that is not a page's own label: messages, errors,
titles. Chinese, kept here in one place."""

from __future__ import annotations

TITLE = "网格作战指挥台"
LOGIN_TITLE = "登录"
LOGIN_FAILED = "用户名或密码错误"
LOGIN_LOCKED = "尝试次数过多，请稍后再试"
CSRF_REFUSED = "页面已过期，请刷新后重试"
LOGGED_OUT = "已退出登录"
SESSION_ENDED = "登录已过期，请重新登录"
INVITE_TITLE = "设置密码"
INVITE_INVALID = "链接无效、已使用或已过期，请联系管理员重新生成"
INVITE_MISMATCH = "两次输入的密码不一致"
INVITE_DONE = "密码已设置，请登录"
NOT_FOUND = "没有这个页面，或者您无权查看"
FORBIDDEN = "您无权进行此操作"

NAV = (
    ("overview", "总览"),
    ("chain", "作战链"),
    ("board", "通知送达"),
    ("watch", "居家观察"),
    ("points", "十二分制"),
    ("access_log", "查阅记录"),
    ("units", "商铺企业"),
    ("exports", "导出导入"),
    ("simulator", "模拟器"),
)

# People under watch: revealing a number.
REVEAL_FIELDS = {"mobile": "手机号", "id_number": "身份证号"}
REVEAL_NEEDS_REASON = "请填写查看原因（至少 2 个字）"
REVEAL_NONE = "未登记"
WATCH_KINDS = {"tenant": "租客", "worker": "企业员工"}

# 12 points: verifying from the console.
VERIFY_NEEDS_REASON = "驳回需填写原因"
VERIFIED_OK = "#{id} {name} 已通过"
VERIFIED_NO = "#{id} {name} 已驳回"

# Chain: invite codes issued from the console.
INVITE_ROLE_UNKNOWN = "请选择角色"
INVITE_PERSON = "邀请码 {code}（{role}）：请本人在群里发送「绑定 {code}」"
INVITE_GROUP = "群邀请码 {code}：请在要绑定的群里发送「绑定群 {code}」"

# Delivery board.
NOTICE_EMPTY = "请填写通知内容"

# Shops, enterprises and projects; exports; the import; the simulator (console-extra).
REVIEW_NEEDS_REASON = "驳回需填写原因"
EXPORT_BAD_DATE = "日期格式应为 2020-02-21"
EXPORT_DAY_OUT_OF_RANGE = "日期超出范围，请填写如 2020-02-21 的日期"
IMPORT_TOO_BIG = "文件超过 {mb} MB，未导入"
IMPORT_BAD_TYPE = "请上传 .xlsx、.toml、.yaml 或 .yml 文件"
SIMULATOR_NEEDS_SIM = "模拟器只在演示模式下可用（tierbot demo --web，或配置 transport = \"sim\"）"
