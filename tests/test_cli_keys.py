"""`tierbot keys` and `tierbot people forget|reveal`, run for real: a missing key stops the
start, the demo makes its own, a rotation resumes where it stopped, and what the demo and the
CLI store contains no full number."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from bot import crypto
from tests.dump import FULL_ID, FULL_MOBILE, dump
from tests.test_cli import DEMO_SCRIPT, SMALL_TOML, Cli, _ok


def _fails(result, *needles: str) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return str(result.stderr)


def test_run_without_keys_stops_and_says_what_to_do(tmp_path: Path):
    cli = Cli(tmp_path, keys=False)
    message = _fails(cli("run", "--transport", "memory", "--no-api"),
                     "no encryption keys", "tierbot keys init", "data/tierbot.keys",
                     "$TIERBOT_KEYRING")
    assert len(message.strip().splitlines()) == 1
    assert not cli.db.exists()  # stopped before touching the store
    # The variable the config names works as well as the file.
    ring = crypto.generate()
    _ok(cli("db", "upgrade", TIERBOT_KEYRING=ring.to_json()))


def test_keys_init_writes_an_owner_only_file_once(tmp_path: Path):
    cli = Cli(tmp_path, keys=False)
    result = _ok(cli("keys", "init"))
    assert "data/tierbot.keys" in result.stdout and "back it up" in result.stderr
    assert stat.S_IMODE(cli.keys.stat().st_mode) == 0o600
    before = cli.keys.read_text()
    _fails(cli("keys", "init"), "already exists")
    assert cli.keys.read_text() == before
    _ok(cli("db", "upgrade"))


def test_the_demo_makes_its_key_on_first_start_and_keeps_it(tmp_path: Path):
    cli = Cli(tmp_path, keys=False)
    first = _ok(cli("demo", stdin=DEMO_SCRIPT))
    assert "created key file" in first.stderr and cli.keys.exists()
    assert stat.S_IMODE(cli.keys.stat().st_mode) == 0o600
    key_text = cli.keys.read_text()
    # The demo's scenario leaves no full number in the database file.
    dumped = dump(f"sqlite:///{cli.db}")
    assert "13905791234" not in dumped and "13757912345" not in dumped
    assert not FULL_MOBILE.search(dumped) and not FULL_ID.search(dumped)
    assert "139****1234" in dumped  # the registration is there, masked and sealed
    [(sealed,)] = cli.rows("SELECT mobile_enc FROM person WHERE mobile_mask = '139****1234'")
    assert str(sealed).startswith("v1.k1.")
    # Started again, the demo keeps its key; the key reads what the first run stored.
    again = _ok(cli("demo", stdin="/groups\n"))
    assert "created key file" not in again.stderr and cli.keys.read_text() == key_text
    shown = _ok(cli("people", "reveal", "sim-zhaoli", "--reason", "演示"))
    assert shown.stdout.strip() == "13905791234"


def test_rotation_resumes_where_it_stopped_then_reveals_and_forgets(tmp_path: Path):
    cli = Cli(tmp_path)
    (tmp_path / "chain.toml").write_text(SMALL_TOML, encoding="utf-8")
    _ok(cli("chain", "import", "chain.toml"))
    assert "13611112222" not in dump(f"sqlite:///{cli.db}")
    # A rotation that stopped after writing its new key (the key is on disk before any row).
    ring = crypto.Keyring.from_json(cli.keys.read_text(), source="test")
    crypto.write_file(cli.keys, ring.with_new_key(), replace=True)
    status = _ok(cli("keys", "status")).stdout
    assert "active k2" in status and "rotation unfinished" in status
    assert "older key: 1" in status
    resumed = _ok(cli("keys", "rotate", "--batch", "1"))
    assert "resuming the rotation to key k2" in resumed.stdout and "1 people" in resumed.stdout
    after = json.loads(cli.keys.read_text())
    assert after["active"] == "k2" and set(after["keys"]) == {"k1", "k2"}
    assert after["rotating"] is False
    [(sealed,)] = cli.rows("SELECT mobile_enc FROM person WHERE mobile_bidx IS NOT NULL")
    assert str(sealed).startswith("v1.k2.")
    assert "older key: 0" in _ok(cli("keys", "status")).stdout
    # A new rotation adds k3.
    third = _ok(cli("keys", "rotate"))
    assert "added key k3" in third.stdout and json.loads(cli.keys.read_text())["active"] == "k3"
    # Revealed whole only with a reason, and logged.
    _fails(cli("people", "reveal", "sim-qian"), "--reason")
    shown = _ok(cli("people", "reveal", "sim-qian", "--reason", "电话回访"))
    assert shown.stdout.strip() == "13611112222"
    assert cli.rows("SELECT who, action, field, why FROM access_log") == [
        ("cli", "reveal", "mobile", "电话回访")]
    # Forgotten: no name, no number, no contact; the log says who and why, no number.
    forgot = _ok(cli("people", "forget", "136 1111 2222", "--reason", "本人申请"))
    assert "forgot 1 people" in forgot.stdout
    dumped = dump(f"sqlite:///{cli.db}")
    for trace in ("钱主任", "13611112222", "136****2222", "sim-qian"):
        assert trace not in dumped, trace
    assert cli.rows("SELECT action, why FROM access_log ORDER BY id") == [
        ("reveal", "电话回访"), ("forget", "本人申请")]
    _fails(cli("people", "forget", "13611112222", "--reason", "again"),
           "nobody is registered with 136****2222")
    _fails(cli("people", "forget", "12345", "--reason", "x"), "11-digit")


def test_rotate_refuses_keys_from_the_variable(tmp_path: Path):
    cli = Cli(tmp_path, keys=False)
    _fails(cli("keys", "rotate", TIERBOT_KEYRING=crypto.generate().to_json()),
           "$TIERBOT_KEYRING", "key file")

