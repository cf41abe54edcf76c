"""Personal numbers at rest: AES-GCM values under key ids, keyed blind indexes, the key file.

A sealed value reads `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`: the format version,
the id of the key that sealed it and a random 96-bit nonce travel with it; the table, column
and row it belongs to are bound as associated data (a value copied to another row or column
does not open). Look-ups never decrypt: a blind index is HMAC-SHA256 under a separate key over
the normalised number, one per kind (a mobile and an ID number never share an index value).

Keys live outside the database: a JSON key file (0600) or the environment variable the config
names, never a table. Only `bot.services.personal` opens values (`reveal`, which logs who saw
what and why, and key rotation); a source-scan test holds that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.config import ConfigError, KeySettings

FORMAT = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"^k[0-9]{1,6}$")
Kind = Literal["mobile", "id_number"]
KINDS: tuple[Kind, ...] = ("mobile", "id_number")


class KeyringError(ConfigError):
    """The keys cannot be used; the message says which and what to do."""


class MissingKeyError(KeyringError):
    """No key file and no key variable: the bot cannot store personal numbers."""


class UnknownKeyError(KeyringError):
    """A value was sealed under a key id the key file does not hold."""

    def __init__(self, key_id: str):
        super().__init__(f"a stored value is sealed under key id {key_id!r}, which the key "
                         "file does not hold: restore the key file that has it (from your "
                         "backup) before going on")
        self.key_id = key_id


class SealedValueError(ValueError):
    """A stored value is malformed or does not open (wrong row, tampered, wrong key)."""


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by id (one active), the blind-index key, and whether a rotation to the
    active key is still re-encrypting rows."""

    active: str
    keys: dict[str, bytes]
    index_key: bytes
    rotating: bool = False
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyringError(f"key file: active key {self.active!r} is not among its keys")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id) or len(key) != KEY_BYTES:
                raise KeyringError(f"key file: key {key_id!r} is malformed "
                                   f"(ids k1, k2, …; {KEY_BYTES} bytes each)")
        if len(self.index_key) != KEY_BYTES:
            raise KeyringError(f"key file: the index key must be {KEY_BYTES} bytes")

    def cipher(self, key_id: str) -> AESGCM:
        """The AES-GCM of one key id (UnknownKeyError when the key file lacks it)."""
        if key_id not in self.keys:
            raise UnknownKeyError(key_id)
        if key_id not in self._ciphers:
            self._ciphers[key_id] = AESGCM(self.keys[key_id])
        return self._ciphers[key_id]

    def with_new_key(self) -> Keyring:
        """This keyring plus a fresh key that becomes the active one, rotation pending."""
        new_id = f"k{max(int(k[1:]) for k in self.keys) + 1}"
        return Keyring(active=new_id, keys={**self.keys, new_id: secrets.token_bytes(KEY_BYTES)},
                       index_key=self.index_key, rotating=True)

    def rotated(self) -> Keyring:
        """This keyring with the rotation finished (every row under the active key)."""
        return Keyring(active=self.active, keys=dict(self.keys), index_key=self.index_key)

    def to_json(self) -> str:
        """The key file's text."""
        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode()
        return json.dumps({"format": 1, "active": self.active, "rotating": self.rotating,
                           "keys": {k: b64(v) for k, v in sorted(self.keys.items())},
                           "index_key": b64(self.index_key)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Keyring:
        """Read a key file's text; `source` names it in errors."""
        try:
            data = json.loads(text)
            return cls(active=data["active"], rotating=bool(data.get("rotating", False)),
                       keys={k: base64.b64decode(v, validate=True)
                             for k, v in data["keys"].items()},
                       index_key=base64.b64decode(data["index_key"], validate=True))
        except KeyringError as exc:
            raise KeyringError(f"{source}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyringError(f"{source}: not a tierbot key file ({exc!r})") from None


def generate() -> Keyring:
    """A new keyring: one encryption key (k1) and an index key."""
    return Keyring(active="k1", keys={"k1": secrets.token_bytes(KEY_BYTES)},
                   index_key=secrets.token_bytes(KEY_BYTES))


def load(cfg: KeySettings) -> Keyring:
    """The keyring from the variable `keys.env` names (when set), else from `keys.file`."""
    if cfg.env and os.environ.get(cfg.env):
        return Keyring.from_json(os.environ[cfg.env], source=f"${cfg.env}")
    path = Path(cfg.file)
    if not path.is_file():
        raise MissingKeyError(
            f"no encryption keys: ${cfg.env or '(keys.env unset)'} is not set and the key "
            f"file {path} does not exist. Create one with `tierbot keys init` (then back it "
            "up: without it the stored mobiles and ID numbers are lost), or point keys.file "
            "at your existing key file")
    return Keyring.from_json(path.read_text(encoding="utf-8"), source=str(path))


def write_file(path: Path, keyring: Keyring, *, replace: bool = False) -> None:
    """Write the key file readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise KeyringError(f"key file {path} already exists; it is not overwritten")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(keyring.to_json())
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


_active: Keyring | None = None


def use(keyring: Keyring | None) -> None:
    """Make this the process's keyring (build_app does, from the settings)."""
    global _active
    _active = keyring


def current() -> Keyring:
    """The process's keyring."""
    if _active is None:
        raise MissingKeyError("no encryption keys loaded (build_app loads them from the "
                              "config's [keys]; run `tierbot keys init` to create a key file)")
    return _active


_SEPARATORS = re.compile(r"[\s\-()（）]")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


def normalise(kind: Kind, value: str) -> str:
    """The canonical spelling hashed and sealed: digits only (ID numbers: check letter X)."""
    cleaned = _SEPARATORS.sub("", value).upper()
    cleaned = cleaned.translate(_FULL_WIDTH)
    if kind == "mobile" and cleaned.startswith("+86"):
        cleaned = cleaned[3:]
    return cleaned


def blind_index(kind: Kind, value: str, keyring: Keyring | None = None) -> str:
    """The look-up value of a number: HMAC-SHA256 (hex) under the index key, per kind."""
    ring = keyring or current()
    message = f"{kind}\x00{normalise(kind, value)}".encode()
    return hmac.new(ring.index_key, message, hashlib.sha256).hexdigest()


def _aad(table: str, column: str, row: int) -> bytes:
    return f"{FORMAT}|{table}|{column}|{row}".encode()


def seal(value: str, *, table: str, column: str, row: int,
         keyring: Keyring | None = None) -> str:
    """Encrypt a value for one table, column and row under the active key."""
    ring = keyring or current()
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = ring.cipher(ring.active).encrypt(nonce, value.encode(), _aad(table, column, row))
    return f"{FORMAT}.{ring.active}.{base64.urlsafe_b64encode(nonce + body).decode()}"


def key_id_of(token: str) -> str:
    """The key id a sealed value names."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != FORMAT:
        raise SealedValueError(f"not a sealed value of format {FORMAT}")
    return parts[1]


def unseal(token: str, *, table: str, column: str, row: int,
           keyring: Keyring | None = None) -> str:
    """Decrypt a sealed value. Only bot.services.personal calls this (reveal, rotation)."""
    ring = keyring or current()
    key_id = key_id_of(token)
    cipher = ring.cipher(key_id)
    try:
        raw = base64.urlsafe_b64decode(token.split(".")[2])
    except ValueError:
        raise SealedValueError("sealed value: bad base64") from None
    if len(raw) < NONCE_BYTES + 16:
        raise SealedValueError("sealed value: too short")
    try:
        plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(table, column, row))
    except InvalidTag:
        raise SealedValueError(f"sealed value of {table}.{column} #{row} does not open under "
                               f"key {key_id} (tampered, moved from another row, or the "
                               "wrong key)") from None
    return plain.decode()
