"""Stopping (issue 9, item 7): SIGTERM and SIGINT stop `tierbot run` cleanly, with and without
the API: the send in flight finishes and is marked, nothing is left `sending`, the lock is
released, exit 0 within 10 s. Real subprocesses on a temporary SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_KEYRING
from tests.test_cli import DEMO_CHAIN, TIERBOT

pytestmark = pytest.mark.crash

STOP_WITHIN = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bot:
    """`tierbot run --transport sim` in a subprocess, its stderr collected as it comes."""

    def __init__(self, tmp_path: Path, *args: str, **env: str):
        self.db = tmp_path / "tierbot.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIERBOT_")}
        self.env.update({"TIERBOT_DATABASE_URL": f"sqlite:///{self.db}",
                         "TIERBOT_API__PORT": str(_free_port()), "TIERBOT_API__TOKEN": "t",
                         "TIERBOT_LOG_LEVEL": "INFO",
                         "TIERBOT_KEYRING": TEST_KEYRING.to_json(), **env})
        self.cwd = tmp_path
        self.args = args
        self.lines: list[str] = []

    def cli(self, *args: str) -> None:
        done = subprocess.run([TIERBOT, *args], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr

    def start(self) -> subprocess.Popen[str]:
        self.proc = subprocess.Popen([TIERBOT, "run", "--transport", "sim", *self.args],
                                     cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        return self.proc

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"no {text!r} in:\n" + "".join(self.lines)
            time.sleep(0.05)

    def stop(self, sig: signal.Signals) -> float:
        """Send the signal; the seconds until the process exited (it must exit 0)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=STOP_WITHIN + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.pump.join(timeout=5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()
        took = time.monotonic() - started
        assert code == 0, f"exit {code}:\n" + "".join(self.lines)
        return took

    def statuses(self) -> dict[str, int]:
        with sqlite3.connect(self.db) as conn:
            return dict(conn.execute(
                "SELECT status, count(*) FROM outbox_message WHERE source = 'test' GROUP BY status").fetchall())

    def queue(self, n: int) -> None:
        """n rows waiting in the outbox, one for each of n groups, as a job would write them
        (rows of one kind for one group would go out merged as one message)."""
        with sqlite3.connect(self.db) as conn:
            group_ids = [row[0] for row in conn.execute(
                "SELECT id FROM chat_group ORDER BY id LIMIT ?", (n,))]
            assert len(group_ids) == n, "the demo chain has fewer groups than rows asked for"
            conn.executemany(
                "INSERT INTO outbox_message (group_id, text, account, urgent, mentions, source,"
                " status, attempts, resend, relayed, created_at) VALUES "
                "(?, ?, '', 0, '[]', 'test', 'pending', 0, 0, 0, ?)",
                [(group_id, f"第{i}条", "2020-02-21 02:00:00.000000")
                 for i, group_id in enumerate(group_ids)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("api", [True, False], ids=["api", "no-api"])
def test_a_signal_stops_the_bot_cleanly(tmp_path: Path, sig: signal.Signals, api: bool):
    bot = Bot(tmp_path, *([] if api else ["--no-api"]),
              TIERBOT_PACING__MIN_GAP_SECONDS="2", TIERBOT_PACING__JITTER_SECONDS="0")
    bot.cli("chain", "import", str(DEMO_CHAIN))
    bot.start()
    bot.wait_for("tierbot started")
    if api:
        bot.wait_for("Uvicorn running")
    # Sends paced 2 s apart: the first goes at once, the signal comes while the rest wait.
    bot.queue(5)
    deadline = time.monotonic() + 30
    while bot.statuses().get("sent", 0) < 1:
        assert time.monotonic() < deadline, "".join(bot.lines)
        time.sleep(0.05)
    took = bot.stop(sig)
    assert took < STOP_WITHIN, "".join(bot.lines)
    log = "".join(bot.lines)
    assert f"{sig.name}: stopping" in log and "tierbot stopped" in log
    assert "Traceback" not in log
    statuses = bot.statuses()
    # What went out is marked sent; the rest waits for the next start, nothing half-done.
    assert statuses.get("sending", 0) == 0
    assert 1 <= statuses.get("sent", 0) < 5
    assert statuses.get("sent", 0) + statuses.get("pending", 0) == 5
    # The lock is released: the next start works at once and sends the rest (paced closer
    # now: the pacing was for the stop to come mid-broadcast).
    bot.env["TIERBOT_PACING__MIN_GAP_SECONDS"] = "0.1"
    bot.start()
    bot.wait_for("tierbot started")
    deadline = time.monotonic() + 60
    while bot.statuses().get("sent", 0) < 5:
        assert time.monotonic() < deadline, "".join(bot.lines)
        time.sleep(0.1)
    assert bot.stop(signal.SIGTERM) < STOP_WITHIN


def test_the_scheduler_stops_with_the_bot(tmp_path: Path):
    bot = Bot(tmp_path, "--no-api", TIERBOT_SCHEDULER="true")
    bot.start()
    bot.wait_for("tierbot started")
    assert bot.stop(signal.SIGTERM) < STOP_WITHIN
    assert "tierbot stopped" in "".join(bot.lines)
