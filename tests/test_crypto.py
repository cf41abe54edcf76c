"""bot/crypto.py attacked: sealed values bound to their row, tampering and wrong keys refused,
unknown key ids named, blind indexes that ignore spelling but not kind, the key file 0600, and
no module but bot/services/personal.py opening a value."""

from __future__ import annotations

import ast
import base64
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import crypto
from bot.config import KeySettings
from tests.spelling import mobiles, valid_ids

ROOT = Path(__file__).resolve().parent.parent
RING = crypto.generate()


def _seal(value: str, row: int = 7, column: str = "mobile") -> str:
    return crypto.seal(value, table="person", column=column, row=row, keyring=RING)


def _open(token: str, row: int = 7, column: str = "mobile",
          keyring: crypto.Keyring = RING) -> str:
    return crypto.unseal(token, table="person", column=column, row=row, keyring=keyring)


@settings(max_examples=50)
@given(st.one_of(mobiles, valid_ids()), st.integers(min_value=1, max_value=2**62))
def test_a_sealed_value_opens_only_for_its_own_row_and_column(value: str, row: int):
    token = _seal(value, row)
    assert value not in token
    version, key_id, body = token.split(".")
    assert (version, key_id) == ("v1", RING.active)
    assert len(base64.urlsafe_b64decode(body)) == crypto.NONCE_BYTES + len(value) + 16
    assert _open(token, row) == value
    with pytest.raises(crypto.SealedValueError):
        _open(token, row + 1)  # copied to another person
    with pytest.raises(crypto.SealedValueError):
        _open(token, row, column="id_number")  # moved to another column


def test_every_seal_uses_a_fresh_nonce():
    tokens = {_seal("13905791234") for _ in range(200)}
    assert len(tokens) == 200
    assert len({base64.urlsafe_b64decode(t.split(".")[2])[:12] for t in tokens}) == 200


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_a_flipped_bit_anywhere_is_refused(position: int):
    token = _seal("330782199001011234", column="id_number")
    raw = bytearray(base64.urlsafe_b64decode(token.split(".")[2]))
    raw[position] ^= 0x01
    forged = "v1.k1." + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(crypto.SealedValueError):
        _open(forged, column="id_number")


def test_another_keyrings_key_of_the_same_id_does_not_open_it():
    other = crypto.generate()  # also "k1", another key
    with pytest.raises(crypto.SealedValueError, match="does not open under key k1"):
        _open(_seal("13905791234"), keyring=other)


def test_an_unknown_key_id_is_a_clear_error_naming_the_id():
    newer = RING.with_new_key()
    token = crypto.seal("13905791234", table="person", column="mobile", row=3, keyring=newer)
    with pytest.raises(crypto.UnknownKeyError, match="'k2'") as err:
        crypto.unseal(token, table="person", column="mobile", row=3, keyring=RING)
    assert err.value.key_id == "k2" and "backup" in str(err.value)
    # The newer keyring still opens what the older one sealed.
    assert _open(_seal("13905791234"), keyring=newer) == "13905791234"


@pytest.mark.parametrize("token", ["", "v1.k1", "v2.k1.AAAA", "v1.k1.!!!!", "v1.k1.AAAA",
                                   "13905791234"])
def test_malformed_values_are_refused_not_returned(token: str):
    with pytest.raises(crypto.SealedValueError):
        _open(token)


@pytest.mark.parametrize(("a", "b"), [
    ("13905791234", "139 0579 1234"), ("13905791234", "+86 139-0579-1234"),
    ("13905791234", "１３９０５７９１２３４"), ("33078219900101123X", "33078219900101123x"),
])
def test_the_blind_index_ignores_spelling(a: str, b: str):
    kind: crypto.Kind = "mobile" if len(crypto.normalise("mobile", a)) == 11 else "id_number"
    assert crypto.blind_index(kind, a, RING) == crypto.blind_index(kind, b, RING)


def test_the_blind_index_is_keyed_and_per_kind():
    value = "13905791234"
    mine = crypto.blind_index("mobile", value, RING)
    assert value not in mine and len(mine) == 64
    assert crypto.blind_index("mobile", value, crypto.generate()) != mine
    assert crypto.blind_index("id_number", value, RING) != mine
    assert crypto.blind_index("mobile", "13905791235", RING) != mine
    # The index key is not an encryption key: a rotation keeps every index value.
    assert crypto.blind_index("mobile", value, RING.with_new_key()) == mine


def test_the_key_file_is_owner_only_and_never_overwritten(tmp_path: Path):
    path = tmp_path / "deep" / "tierbot.keys"
    crypto.write_file(path, RING)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(crypto.KeyringError, match="already exists"):
        crypto.write_file(path, crypto.generate())
    loaded = crypto.load(KeySettings(file=str(path), env=""))
    assert loaded == RING and _open(_seal("13905791234"), keyring=loaded) == "13905791234"


def test_the_variable_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "tierbot.keys"
    crypto.write_file(path, crypto.generate())
    monkeypatch.setenv("MY_KEYS", RING.to_json())
    assert crypto.load(KeySettings(file=str(path), env="MY_KEYS")) == RING


def test_no_keys_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MY_KEYS", raising=False)
    with pytest.raises(crypto.MissingKeyError, match="tierbot keys init") as err:
        crypto.load(KeySettings(file=str(tmp_path / "none.keys"), env="MY_KEYS"))
    assert "none.keys" in str(err.value) and "$MY_KEYS" in str(err.value)


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("index_key"),
    lambda d: d.update(active="k9"),
    lambda d: d["keys"].update(k1=base64.b64encode(b"short").decode()),
    lambda d: d["keys"].update({"../k": d["keys"]["k1"]}),
    lambda d: d.update(keys="nope"),
])
def test_a_damaged_key_file_is_refused_by_name(tmp_path: Path, mutate):
    data = json.loads(RING.to_json())
    mutate(data)
    with pytest.raises(crypto.KeyringError, match="the.keys"):
        crypto.Keyring.from_json(json.dumps(data), source="the.keys")


def test_rotation_keeps_old_keys_and_marks_itself_unfinished():
    newer = RING.with_new_key()
    assert newer.active == "k2" and set(newer.keys) == {"k1", "k2"} and newer.rotating
    assert newer.keys["k1"] == RING.keys["k1"] and newer.index_key == RING.index_key
    done = newer.rotated()
    assert not done.rotating and done.keys == newer.keys
    assert crypto.Keyring.from_json(newer.to_json(), source="x") == newer


# --- the one door ------------------------------------------------------------------------
# bot/crypto.py holds the cipher; bot/services/personal.py alone calls `unseal`, and only in
# `reveal` (display, logged), `copy_numbers` and `rotate` (re-sealing, nothing shown).
OPENERS = {"reveal", "copy_numbers", "rotate"}
# Official channels' credentials (issue 15): opened only to hand them to the adapters at start
# (`open_all`) and to re-seal them (`rotate`).
CREDENTIAL_OPENERS = {"open_all", "rotate"}


def _python_files() -> list[Path]:
    return [p for pkg in ("bot", "handlers", "schedules", "models", "migrations")
            for p in (ROOT / pkg).rglob("*.py")]


def test_nothing_but_personal_reveal_and_rotation_opens_a_value():
    offenders = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                name = (node.attr if isinstance(node, ast.Attribute)
                        else node.id if isinstance(node, ast.Name) else None)
                if name in {"unseal", "AESGCM", "decrypt"}:
                    allowed = ((rel == "bot/services/personal.py" and fn.name in OPENERS
                                and name == "unseal")
                               or (rel == "bot/services/credential.py"
                                   and fn.name in CREDENTIAL_OPENERS and name == "unseal")
                               or rel == "bot/crypto.py")
                    if not allowed:
                        offenders.append(f"{rel}:{node.lineno} in {fn.name}: {name}")
        text = path.read_text(encoding="utf-8")
        if rel != "bot/crypto.py" and ("hazmat" in text or "import AESGCM" in text):
            offenders.append(f"{rel}: imports the cipher")
    assert offenders == []


def test_only_personal_writes_sealed_values():
    # A sealed column assigned anywhere else would skip the row binding or the index.
    pattern = ("_enc=", "_enc =", '_enc"', "_enc'")
    offenders = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in {"bot/services/personal.py", "models/person.py",
                   "migrations/versions/0009_pii_at_rest.py",
                   # The channels' credentials: sealed to their row there alone (issue 15).
                   "bot/services/credential.py", "models/credential.py",
                   "migrations/versions/0016_chan_core.py"}:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(p in line for p in pattern):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
