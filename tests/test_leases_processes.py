"""Several bot processes on one PostgreSQL database, one of them killed with SIGKILL mid-run.

2 and 4 processes (tests/lease_child.py, real OS processes) drain one notice to 120 groups
spread over 4 sending accounts, paced (a gap of 0.2 s, no jitter) with a 2 s lease. Once a
quarter of the sends are out, the process that has sent most is killed with SIGKILL. Every
process appends each send to its own file before send() returns, so the files are what the
platform received. Checked:

- every group got the notice exactly once, and every outbox row ends `sent`;
- per account, no two consecutive sends (whichever process made them) closer than the gap;
- each account the killed process was sending for is sent from again, by another process,
  within the lease time (plus the renewal interval and one gap) of the kill.

PostgreSQL only (SQLite is one process by its file lock); marked `crash` (about a minute).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import store
from models import OutboxMessage
from tests.conftest import _truncate
from tests.crash_child import NOTICE_TEXT, leaf_room
from tests.lease_child import read_all_sends

pytestmark = pytest.mark.crash

ROOT = Path(__file__).resolve().parent.parent
GROUPS = 120
ACCOUNTS = 4
LEASE = 2.0
GAP = 0.2
TIMEOUT = 150.0
# Scheduling slack on a loaded 2-core machine (a takeover is asserted within the lease time
# plus the renewal interval and one gap, plus this).
SLACK = 2.5


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), e.get("PYTHONPATH")]))
    e.pop("TIERBOT_CONFIG", None)
    e.pop("PYTHONWARNINGS", None)
    return e


def child(url: str, where: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.lease_child", "--url", url, "--dir", str(where),
            "--groups", str(GROUPS), "--accounts", str(ACCOUNTS), "--lease", str(LEASE),
            "--gap", str(GAP), *extra]


async def statuses(url: str) -> dict[str, int]:
    engine = store.create_engine(url)
    try:
        async with engine.connect() as conn:
            return {str(s): n for s, n in await conn.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_share_the_accounts_and_survive_a_kill(pg_migrated: str, tmp_path: Path,
                                                         processes: int) -> None:
    asyncio.run(_truncate(pg_migrated))
    log = tmp_path / "children.log"
    with log.open("ab") as err:
        done = subprocess.run(child(pg_migrated, tmp_path, "--setup"), cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, stderr=err, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert json.loads(done.stdout.decode().splitlines()[-1]) == {"event": "setup",
                                                                 "rows": GROUPS}

    with log.open("ab") as err:
        procs = [subprocess.Popen(child(pg_migrated, tmp_path), cwd=ROOT, env=env(),
                                  stdout=subprocess.PIPE, stderr=err)
                 for _ in range(processes)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(read_all_sends(tmp_path)) < GROUPS // 4:
            assert time.monotonic() < deadline, "no progress"
            assert all(p.poll() is None for p in procs), log.read_text(errors="replace")[-3000:]
            time.sleep(0.02)
        by_pid = Counter(int(s["pid"]) for s in read_all_sends(tmp_path))
        victim = next(p for p in sorted(procs, key=lambda p: -by_pid[p.pid]))
        victim.send_signal(signal.SIGKILL)
        killed_at = datetime.now(UTC)
        victim.wait()
        outputs = {}
        for p in procs:
            if p is victim:
                continue
            out, _ = p.communicate(timeout=TIMEOUT)
            outputs[p.pid] = [json.loads(x) for x in out.decode().splitlines()
                              if x.startswith("{")]
            assert p.returncode == 0, (outputs[p.pid], log.read_text(errors="replace")[-3000:])
            assert outputs[p.pid][-1]["event"] == "done"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()

    sends = [s for s in read_all_sends(tmp_path) if s["text"].endswith(NOTICE_TEXT)]
    # Exactly once per group, nowhere else, every row sent.
    per_room = Counter(s["room"] for s in sends)
    assert set(per_room) == {leaf_room(i) for i in range(GROUPS)}
    assert [room for room, n in per_room.items() if n > 1] == []
    assert asyncio.run(statuses(pg_migrated)) == {"sent": GROUPS}

    # The pace per account holds across processes and across the takeover.
    by_account: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for s in sends:
        by_account[s["account"]].append((datetime.fromisoformat(s["at"]), int(s["pid"])))
    assert len(by_account) == ACCOUNTS
    too_close = []
    for account, times in by_account.items():
        times.sort()
        too_close += [(account, (b - a).total_seconds()) for (a, _), (b, _)
                      in zip(times, times[1:], strict=False)
                      if (b - a).total_seconds() < GAP - 1e-3]
    assert too_close == []

    # Each account the victim drove goes on from another process within the lease time.
    takeovers = {}
    for account, times in by_account.items():
        before = [at for at, pid in times if pid == victim.pid and at <= killed_at]
        after = [at for at, pid in times if pid != victim.pid and at > killed_at]
        assert not [at for at, pid in times if pid == victim.pid and at > killed_at]
        if before and after:
            takeovers[account] = (min(after) - killed_at).total_seconds()
    assert takeovers, (by_pid, victim.pid)
    print(f"\n{processes} processes, victim {victim.pid} ({by_pid[victim.pid]} sends before "
          f"the kill): first send after the kill per account it drove (s): {takeovers}")
    assert all(t <= LEASE + LEASE / 3 + GAP + SLACK for t in takeovers.values()), takeovers
