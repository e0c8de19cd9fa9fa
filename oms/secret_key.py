"""The key that encrypts operators' TOTP secrets at rest, kept outside the database.

A dump or a backup of the database alone must not give anybody the second factor: each TOTP
secret is stored encrypted with AES-256-GCM (the `cryptography` package), the operator's name as
associated data, so that a ciphertext copied into another operator's row does not decrypt.

Stored form (operators.totp_secret): `v1:<key id>:<base64url(12-byte nonce + ciphertext + tag)>`.
The key id (12 hex digits of a SHA-256 of the key) says which key encrypted a secret, so that a
wrong key is told apart from an altered ciphertext, and rotation can keep two keys for a moment.

Where the key is found, first match wins:
1. TIEOUT_SECRET_KEY: the key itself (base64url of 32 bytes), or several separated by commas
   (the first encrypts, every one decrypts) - for a secret manager or systemd credentials;
2. TIEOUT_KEY_FILE: a key file;
3. the default key file: beside a SQLite database file (`<database file>.key`), else (PostgreSQL,
   in-memory SQLite) `$XDG_CONFIG_HOME/tieout/key-<hash of the URL>` (default ~/.config).
A key file is JSON `{"format": "tieout-key/1", "keys": [{"id", "key", "created_at"}...]}`, the
first key current, created with mode 0600 (its folder 0700 when tieout creates it). tieout
creates the key only when it needs one and none exists: when the first operator is added, or when
migration 0009 encrypts secrets stored in clear. With operators in the database and no key, tieout
refuses (exit 3) and writes nothing. The key is never written to the database, the audit trail,
a backup or a message.

Pure part: `Keyring.encrypt/decrypt`, `parse_key_file`. Edge part: `load`, `create`, `save` (the
environment and files).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import URL, make_url

from oms.errors import BadInput, VerificationFailed
from oms.values import utc_iso

ENV_KEY: Final = "TIEOUT_SECRET_KEY"
ENV_KEY_FILE: Final = "TIEOUT_KEY_FILE"
FORMAT: Final = "tieout-key/1"
PREFIX: Final = "v1"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_STORED_RE = re.compile(r"^v1:([0-9a-f]{12}):([A-Za-z0-9_-]+={0,2})$")


class KeyProblem(BadInput):
    """The key is missing, unreadable or not the one the secrets were encrypted with (exit 3).
    Its message names where the key was looked for, never the key."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"TOTP secret key ({where})", why)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"tieout-totp-key\x00" + key).hexdigest()[:12]


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str, where: str) -> bytes:
    """A key's base64url text, padded or not (Python's secrets.token_urlsafe(32) and most
    tools write it without the `=`)."""
    text = text.strip()
    text += "=" * (-len(text) % 4)
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        raise KeyProblem(where, "not a base64url key") from None
    if len(key) != KEY_BYTES:
        raise KeyProblem(where, f"a key has {KEY_BYTES} bytes (base64url), this one {len(key)}")
    return key


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX + ":")


def stored_key_id(stored: str) -> str | None:
    m = _STORED_RE.match(stored)
    return m.group(1) if m else None


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys that decrypt TOTP secrets (id -> key); the first one encrypts. `source` says
    where they came from (a path or the variable's name): it goes into messages, keys never."""

    keys: tuple[tuple[str, bytes], ...]
    source: str

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.keys)

    def encrypt(self, secret: str, operator: str) -> str:
        kid, key = self.keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, secret.encode(), _aad(operator))
        return f"{PREFIX}:{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def knows(self, stored: str) -> bool:
        kid = stored_key_id(stored)
        return kid is not None and kid in dict(self.keys)

    def check(self, stored: str, operator: str) -> None:
        """Refuse a stored secret this keyring cannot decrypt, saying why (no secret)."""
        if not is_encrypted(stored):
            raise VerificationFailed(
                f"the TOTP secret of operator {operator} is stored in clear: run `tieout init` "
                "(migration 0009 encrypts it)"
            )
        kid = stored_key_id(stored)
        if kid is None:
            raise VerificationFailed(
                f"the stored TOTP secret of operator {operator} is not in tieout's format: it "
                "was altered"
            )
        if kid not in dict(self.keys):
            raise KeyProblem(
                self.source,
                f"the TOTP secrets were encrypted with key {kid}, this key is "
                f"{', '.join(self.ids)}: wrong key (see docs/operations.md, 'The TOTP key')",
            )

    def decrypt(self, stored: str, operator: str) -> str:
        """The clear secret. A wrong key: KeyProblem (exit 3); a ciphertext that is not this
        operator's or was altered: VerificationFailed (exit 7)."""
        self.check(stored, operator)
        m = _STORED_RE.match(stored)
        assert m is not None
        raw = base64.urlsafe_b64decode(m.group(2).encode())
        key = dict(self.keys)[m.group(1)]
        try:
            clear = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(operator))
        except (InvalidTag, ValueError):
            raise VerificationFailed(
                f"the stored TOTP secret of operator {operator} does not decrypt with key "
                f"{m.group(1)}: it was altered or copied from another operator's row"
            ) from None
        return clear.decode()


def _aad(operator: str) -> bytes:
    return b"tieout-totp\x00" + operator.encode()


# ---- key files (pure) ---------------------------------------------------------------------------


def key_file_doc(keys: Sequence[tuple[str, bytes]], created_at: datetime) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "keys": [
            {"id": kid, "key": encode_key(key), "created_at": utc_iso(created_at)}
            for kid, key in keys
        ],
    }


def parse_key_file(text: str, where: str) -> tuple[tuple[str, bytes], ...]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise KeyProblem(where, "not a tieout key file (JSON)") from None
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise KeyProblem(where, f"not a tieout key file (format {FORMAT})")
    items = doc.get("keys")
    if not isinstance(items, list) or not items:
        raise KeyProblem(where, "the key file holds no key")
    keys = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise KeyProblem(where, "a key entry has no key")
        key = decode_key(str(item["key"]), where)
        keys.append((key_id(key), key))
    return tuple(keys)


def keyring_from_env(value: str) -> Keyring:
    keys = [decode_key(part, ENV_KEY) for part in value.split(",") if part.strip()]
    if not keys:
        raise KeyProblem(ENV_KEY, "empty")
    return Keyring(tuple((key_id(k), k) for k in keys), ENV_KEY)


# ---- where the key lives (edge) -----------------------------------------------------------------


def default_key_path(url: str | URL, env: Mapping[str, str] | None = None) -> Path:
    """Beside a SQLite database file; else under the user's config folder, per database."""
    environ = os.environ if env is None else env
    parsed = make_url(url) if isinstance(url, str) else url
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:":
        return Path(db).with_name(Path(db).name + ".key")
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    ident = parsed.render_as_string(hide_password=True)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return Path(config) / "tieout" / f"key-{digest}"


def key_path(url: str | URL, env: Mapping[str, str] | None = None) -> Path | None:
    """The key file tieout reads (None: the key comes from TIEOUT_SECRET_KEY)."""
    environ = os.environ if env is None else env
    if environ.get(ENV_KEY):
        return None
    explicit = environ.get(ENV_KEY_FILE)
    return Path(explicit) if explicit else default_key_path(url, environ)


def where(url: str | URL) -> str:
    path = key_path(url)
    return ENV_KEY if path is None else str(path)


def load(url: str | URL) -> Keyring | None:
    """The keyring for a database, None when there is no key (no variable, no file)."""
    value = os.environ.get(ENV_KEY)
    if value:
        return keyring_from_env(value)
    path = key_path(url)
    assert path is not None
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyProblem(str(path), f"cannot read it: {exc.strerror}") from None
    if mode & 0o027:  # group-readable (0640, a shared book's group) is allowed
        raise KeyProblem(
            str(path),
            f"other users can read or change it (mode {mode & 0o777:04o}): `chmod 600 {path}` "
            "(or 640 for a shared book's group), and rotate the key (`tieout user rotate-key`) "
            "if others may have read it",
        )
    return Keyring(parse_key_file(text, str(path)), str(path))


def require(url: str | URL) -> Keyring:
    found = load(url)
    if found is None:
        raise KeyProblem(
            where(url),
            "no key: the operators' TOTP secrets are encrypted with a key kept outside the "
            f"database; give it ({ENV_KEY} or {ENV_KEY_FILE}) or restore its file "
            "(docs/operations.md, 'The TOTP key'); nothing was written",
        )
    return found


def save(
    path: Path, keys: Sequence[tuple[str, bytes]], now: datetime, *, exclusive: bool = False
) -> None:
    """Write a key file atomically (a new file with mode 0600, fsynced, moved into place);
    `exclusive`: never replace an existing file (FileExistsError)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    text = json.dumps(key_file_doc(keys, now), indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".tieout-key-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process made the file meanwhile
            Path(tmp).unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create(url: str | URL, now: datetime) -> tuple[Keyring, bool]:
    """The keyring, creating a new key file when there is none (True: created)."""
    found = load(url)
    if found is not None:
        return found, False
    path = key_path(url)
    assert path is not None
    key = new_key()
    try:
        save(path, [(key_id(key), key)], now, exclusive=True)
    except FileExistsError:
        return require(url), False
    except OSError as exc:
        raise KeyProblem(str(path), f"cannot create the key file: {exc.strerror}") from None
    return Keyring(((key_id(key), key),), str(path)), True
