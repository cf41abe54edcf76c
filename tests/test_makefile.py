"""The operator's Makefile (issue 9): the demo needs no Node, a venv made by the wrong Python is
rebuilt, test-quick leaves out the slow suites. Read with `make -n` (nothing is run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _plan(*args: str) -> str:
    done = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _venv(tmp_path: Path, python: str) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(python)
    return venv


def test_the_demo_needs_no_node(tmp_path: Path):
    venv = _venv(tmp_path, sys.executable)
    plan = _plan(f"VENV={venv}", "demo")
    assert "npm" not in plan and "node_modules" not in plan
    assert "tierbot demo" in plan
    # As on a fresh clone (make -W: as if the lockfile were new), whatever node_modules holds.
    assert "npm ci" in _plan(f"VENV={venv}", "-W", "tests/wechaty_gateway/package-lock.json",
                             "test")


def test_a_venv_of_another_python_is_rebuilt(tmp_path: Path):
    wrong = tmp_path / "python2.7"
    wrong.write_text("#!/bin/sh\nexit 1\n")   # answers no to "are you 3.11?"
    wrong.chmod(0o755)
    venv = _venv(tmp_path, str(wrong))
    plan = _plan(f"VENV={venv}", f"PYTHON={sys.executable}", "install")
    assert f"rm -rf {venv}" in plan and '[ -n "yes" ]' in plan
    good = _venv(tmp_path / "good", sys.executable)
    assert '[ -n "" ]' in _plan(f"VENV={good}", f"PYTHON={sys.executable}", "install")


def test_a_wrong_python_to_build_with_is_refused(tmp_path: Path):
    wrong = tmp_path / "python3.9"
    wrong.write_text("#!/bin/sh\nexit 1\n")
    wrong.chmod(0o755)
    done = subprocess.run(["make", "-C", str(ROOT), f"VENV={tmp_path / 'v'}",
                           f"PYTHON={wrong}", "install"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "is not Python 3.11" in done.stderr
    assert not (tmp_path / "v").exists()


def test_test_quick_leaves_out_the_slow_suites():
    plan = _plan("test-quick")
    assert '-m "not e2e and not crash and not browser"' in plan and "npm" not in plan
    assert "-n 2" in _plan("test")
