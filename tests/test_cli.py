"""The `tierbot` console script, run for real in subprocesses on a temporary SQLite file."""

from __future__ import annotations

import os
import pty
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot import crypto, store

ROOT = Path(__file__).parents[1]
DEMO_CHAIN = ROOT / "bot" / "demo" / "chain.toml"
CODE = re.compile(r"[A-HJKMNP-Z2-9]{6}")
FULL_MOBILE = re.compile(r"1[3-9]\d{9}")
TIMEOUT = 120


def _tierbot() -> str:
    beside = Path(sys.executable).parent / "tierbot"
    if beside.exists():
        return str(beside)
    found = shutil.which("tierbot")
    assert found, "the tierbot console script is not installed"
    return found


TIERBOT = _tierbot()


class Cli:
    """Runs `tierbot` in tmp_path with its own SQLite file and no inherited TIERBOT_* setting;
    with keys=True, the key file `tierbot keys init` would write is there."""

    def __init__(self, tmp_path: Path, *, keys: bool = True):
        self.cwd = tmp_path
        self.db = tmp_path / "tierbot.db"
        self.keys = tmp_path / "data" / "tierbot.keys"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIERBOT_")}
        self.env["TIERBOT_DATABASE_URL"] = f"sqlite:///{self.db}"
        if keys:
            crypto.write_file(self.keys, crypto.generate())

    def __call__(self, *args: str, stdin: str = "", **env: str
                 ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TIERBOT, *args], input=stdin, capture_output=True, text=True,
                              cwd=self.cwd, env={**self.env, **env}, timeout=TIMEOUT,
                              check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([TIERBOT, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.cwd, env=self.env)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


SMALL_TOML = """\
transport = "sim"

[[people]]
key = "zhou"
name = "周书记"
contacts = ["sim-zhou"]

[[people]]
key = "qian"
name = "钱主任"
mobile = "13611112222"
contacts = ["sim-qian"]

[[people]]
key = "sun"
name = "孙组长"
contacts = ["sim-sun"]

[[nodes]]
key = "xc"
name = "稠城街道"
kind = "subdistrict"
groups = [{ room = "xc@chatroom", title = "稠城街道指挥群" }]
roles = { commander = ["zhou"] }

[[nodes]]
key = "xm"
name = "下车门社区"
kind = "community"
parent = "xc"
groups = [{ room = "xm@chatroom", title = "下车门社区指挥群" }]
roles = { commander = ["qian"], secretary = ["zhou"] }

[[nodes]]
name = "下车门第三作战小组"
kind = "team"
parent = "xm"
groups = [{ room = "xm3@chatroom", title = "第三作战小组群" }]
roles = { commander = ["sun"] }
"""

SMALL_YAML = """\
transport: sim
people:
  - {key: he, name: 何主任, contacts: [sim-he]}
  - {key: lu, name: 陆组长, contacts: ["sim:sim-lu"]}
nodes:
  - key: jd
    name: 江东街道
    kind: subdistrict
    groups: [{room: jd@chatroom, title: 江东街道指挥群}]
    roles: {commander: [he]}
  - key: qh
    name: 青口社区
    kind: community
    parent: jd
    groups: [{room: qh@chatroom, title: 青口社区指挥群}]
    roles: {commander: [lu]}
"""


def test_db_upgrade_creates_the_schema(cli: Cli):
    result = _ok(cli("db", "upgrade"))
    assert "latest schema" in result.stdout
    head = ScriptDirectory.from_config(store.alembic_config()).get_current_head()
    assert cli.rows("SELECT version_num FROM alembic_version") == [(head,)]
    # Twice is fine.
    _ok(cli("db", "upgrade"))
    assert cli.rows("SELECT version_num FROM alembic_version") == [(head,)]


def test_chain_import_toml_then_show(cli: Cli, tmp_path: Path):
    (tmp_path / "chain.toml").write_text(SMALL_TOML, encoding="utf-8")
    result = _ok(cli("chain", "import", "chain.toml"))
    assert result.stdout.strip() == "imported 3 nodes, 3 groups, 3 people, 4 roles"

    shown = _ok(cli("chain", "show")).stdout
    lines = shown.splitlines()
    [root] = [ln for ln in lines if "稠城街道 [" in ln]
    assert "tier 1" in root and "周书记" in root and not root.startswith(" ")
    [community] = [ln for ln in lines if "下车门社区 [" in ln]
    assert "tier 2" in community and "钱主任" in community and community.startswith("  ")
    [team] = [ln for ln in lines if "下车门第三作战小组 [" in ln]
    assert "tier 3" in team and "孙组长" in team and team.startswith("    ")
    assert "第三作战小组群" in shown and "xm3@chatroom" in shown
    assert "13611112222" not in shown
    assert lines[-1].startswith("3 nodes, 3 groups")

    # A second import changes nothing.
    again = _ok(cli("chain", "import", "chain.toml"))
    assert again.stdout.strip() == "imported 0 nodes, 0 groups, 3 people, 0 roles"
    assert cli.rows("SELECT count(*) FROM node") == [(3,)]


def test_chain_import_yaml_then_show(cli: Cli, tmp_path: Path):
    (tmp_path / "chain.yaml").write_text(SMALL_YAML, encoding="utf-8")
    result = _ok(cli("chain", "import", "chain.yaml"))
    assert result.stdout.strip() == "imported 2 nodes, 2 groups, 2 people, 2 roles"
    shown = _ok(cli("chain", "show")).stdout
    [root] = [ln for ln in shown.splitlines() if "江东街道 [" in ln]
    assert "tier 1" in root and "何主任" in root
    [community] = [ln for ln in shown.splitlines() if "青口社区 [" in ln]
    assert "tier 2" in community and "陆组长" in community
    assert "青口社区指挥群" in shown


def test_chain_import_shows_progress_on_a_terminal_only(cli: Cli, tmp_path: Path):
    # Enough people for a "reading" report (one every 5,000 items), with their nodes.
    people = "".join(f'[[people]]\nkey = "p{i}"\nname = "房东{i}"\nmobile = "139{i:08d}"\n'
                     for i in range(6000))
    nodes = '[[nodes]]\nkey = "fd"\nname = "房东群"\nkind = "team_landlords"\n' \
        'parent = "下车门第三作战小组"\n' + "".join(
            f'[[nodes]]\nname = "出租房{i}"\nkind = "landlord_tenants"\nparent = "fd"\n'
            f'roles = {{ landlord = ["p{i}"] }}\n' for i in range(6000))
    (tmp_path / "city.toml").write_text(SMALL_TOML + people + nodes, encoding="utf-8")
    _ok(cli("db", "upgrade"))
    # Not a terminal: stderr stays plain (nothing but what went wrong would be there).
    piped = _ok(cli("chain", "import", "city.toml"))
    assert piped.stderr == ""
    assert piped.stdout.strip() == "imported 6004 nodes, 3 groups, 6003 people, 6004 roles"
    # On a terminal: one line rewritten in place, stage by stage, cleared at the end.
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([TIERBOT, "chain", "import", "city.toml"], stdout=subprocess.PIPE,
                              stderr=follower, text=True, cwd=cli.cwd, env=cli.env,
                              timeout=TIMEOUT, check=False)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0, shown
    assert done.stdout.strip() == "imported 0 nodes, 0 groups, 6003 people, 0 roles"
    lines = shown.decode().split("\r\x1b[K")
    assert lines[0] == "" and lines[-1] == ""
    assert "reading 5,000" in lines
    assert "people 6,003/6,003" in lines
    assert {ln.split(" ")[0] for ln in lines} >= {"reading", "people", "groups", "roles"}
    assert not FULL_MOBILE.search(shown.decode())


BAD_CHAINS = {
    "unknown parent": (
        SMALL_TOML.replace('parent = "xm"', 'parent = "nowhere"'),
        ["下车门第三作战小组", "nowhere"]),
    "unknown kind": (
        SMALL_TOML.replace('kind = "team"', 'kind = "platoon"'),
        ["nodes.2.kind"]),
    "unknown person key": (
        SMALL_TOML.replace('commander = ["sun"]', 'commander = ["ghost"]'),
        ["下车门第三作战小组", "ghost"]),
}


@pytest.mark.parametrize("problem", BAD_CHAINS)
def test_bad_chain_file_exits_2_naming_the_problem(cli: Cli, tmp_path: Path, problem: str):
    content, words = BAD_CHAINS[problem]
    _ok(cli("db", "upgrade"))
    (tmp_path / "bad.toml").write_text(content, encoding="utf-8")
    result = cli("chain", "import", "bad.toml")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr
    # Nothing of the bad file was written.
    assert cli.rows("SELECT count(*) FROM node") == [(0,)]


def test_invite_prints_a_code(cli: Cli):
    _ok(cli("chain", "import", str(DEMO_CHAIN)))
    result = _ok(cli("invite", "--node", "董宝明出租房", "--role", "房东"))
    code = result.stdout.strip()
    assert CODE.fullmatch(code), result.stdout
    assert cli.rows(
        "SELECT i.role, n.name, i.used_at FROM invite_code i JOIN node n ON n.id = i.node_id "
        f"WHERE i.code = '{code}'") == [("landlord", "董宝明出租房", None)]


def test_invite_for_an_unknown_node_exits_2(cli: Cli):
    _ok(cli("chain", "import", str(DEMO_CHAIN)))
    result = cli("invite", "--node", "nosuch", "--role", "landlord")
    assert result.returncode == 2
    assert "nosuch" in result.stderr
    assert result.stdout == ""
    assert cli.rows("SELECT count(*) FROM invite_code") == [(0,)]


def test_bad_port_in_environment_exits_2_naming_the_key(cli: Cli):
    result = cli("chain", "show", TIERBOT_API__PORT="abc")
    assert result.returncode == 2
    [message] = result.stderr.strip().splitlines()
    assert "api.port" in message and "Traceback" not in message


def test_unknown_key_in_config_file_exits_2_naming_the_key(cli: Cli, tmp_path: Path):
    (tmp_path / "config.toml").write_text('timezone = "Asia/Shanghai"\ncolour = "red"\n',
                                          encoding="utf-8")
    result = cli("chain", "show")
    assert result.returncode == 2
    [message] = result.stderr.strip().splitlines()
    assert "colour" in message and "unknown key" in message


DEMO_SCRIPT = """\
/invite 应天喜出租房 房东
/in 应天喜租客群
/as 应天喜
绑定 $CODE
/as 赵丽
租客返回 赵丽 13905791234 来自江西上饶 昨晚10点 体温36.8
体温 37.8
/as 应天喜
我的租客
"""


def test_scripted_demo(cli: Cli):
    result = _ok(cli("demo", stdin=DEMO_SCRIPT))
    out = result.stdout
    assert "demo chain loaded" in out
    lines = out.splitlines()
    bot_lines = [ln for ln in lines if "🤖" in ln]
    assert bot_lines and not any(FULL_MOBILE.search(ln) for ln in bot_lines)
    [bound] = [ln for ln in lines if "绑定成功" in ln]
    assert "[应天喜租客群]" in bound and "应天喜" in bound and "房东" in bound
    [registered] = [ln for ln in lines if "已登记" in ln]
    assert "[应天喜租客群]" in registered and "赵*" in registered and "江西上饶" in registered
    mentioned = [ln for ln in lines if "[应天喜租客群]" in ln and "@应天喜" in ln]
    # The landlord is mentioned twice: the tenant's own return (the deadline to confirm it),
    # then the fever.
    assert len(mentioned) == 2 and registered in mentioned
    [flag] = [ln for ln in mentioned if ln != registered]
    assert "37.8" in flag
    [team] = [ln for ln in lines if "【发热提醒】" in ln]
    assert team.lstrip().startswith("[第一小组房东群]") and "赵*" in team and "37.8" in team
    listing = out[out.index("> 我的租客"):]
    assert "139****1234" in listing and "赵*" in listing
    # No full number anywhere, not even in the transcript's echo of the typed line.
    assert "13905791234" not in result.stderr
    assert "13905791234" not in out, [ln for ln in lines if "13905791234" in ln]


def test_second_demo_on_the_same_file_refuses_to_start(cli: Cli):
    first = cli.popen("demo")
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert first.stdout is not None
        for line in first.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        seen: list[str] = []
        while not any("demo chain loaded" in ln for ln in seen):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and first.poll() is None, seen
            try:
                seen.append(lines.get(timeout=remaining))
            except queue.Empty:
                pytest.fail(f"the first demo did not start: {seen}")

        second = cli("demo")
        assert second.returncode == 2, (second.stdout, second.stderr)
        assert "another tierbot process" in second.stderr
        assert str(cli.db) in second.stderr
        assert "demo chain loaded" not in second.stdout
    finally:
        assert first.stdin is not None
        first.stdin.close()
        first.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        assert first.stderr is not None
        first.stderr.close()
        first.stdout.close()  # type: ignore[union-attr]
    assert first.returncode == 0


def test_people_remove_unlink_and_chain_import_prune(cli: Cli, tmp_path: Path):
    (tmp_path / "chain.toml").write_text(SMALL_TOML, encoding="utf-8")
    _ok(cli("chain", "import", "chain.toml"))
    # The file drops 钱主任 as the community's commander: --prune removes it, recorded.
    (tmp_path / "chain.toml").write_text(
        SMALL_TOML.replace('roles = { commander = ["qian"], secretary = ["zhou"] }',
                           'roles = { secretary = ["zhou"] }'), encoding="utf-8")
    pruned = _ok(cli("chain", "import", "chain.toml", "--prune"))
    assert pruned.stdout.splitlines()[-1] == "pruned 1 roles, 0 contact ids"
    assert cli.rows("SELECT role FROM membership m JOIN person p ON p.id = m.person_id "
                    "WHERE p.name = '钱主任'") == []
    # 周书记 stops being the community's secretary; 孙组长's WeChat account is lost.
    removed = _ok(cli("people", "remove", "sim-zhou", "--node", "下车门社区", "--role", "书记",
                      "--reason", "调离"))
    assert removed.stdout.strip().startswith("removed 1 roles of person #1: secretary@")
    _ok(cli("people", "unlink", "sim-sun", "--reason", "手机丢失"))
    assert cli.rows("SELECT count(*) FROM contact WHERE contact_id = 'sim-sun'") == [(0,)]
    assert cli.rows("SELECT kind, role, via, reason FROM removal ORDER BY id") == [
        ("role", "commander", "import", "链条文件中已删除"), ("role", "secretary", "cli", "调离"),
        ("contact", None, "cli", "手机丢失")]
    assert cli("people", "unlink", "sim-nobody", "--reason", "x").returncode == 2
    assert cli("people", "remove", "无此人", "--reason", "x").returncode == 2
