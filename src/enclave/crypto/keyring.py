"""Key-encryption keys (KEKs): the root of encryption at rest, kept outside the database.

Data keys (one per conversation or person and time epoch, see `enclave.services.sealer`) are
AES-256-GCM keys stored in the database only wrapped by a KEK. A `KeyProvider` holds the KEKs;
two ship here:

- `FileKeyring`: a JSON file (mode 0600) with every live KEK and the audit-log MAC key. It can
  rotate: `add_kek` makes a new active KEK, `retire` destroys old ones once nothing is wrapped by
  them. Other processes notice a changed file and reload it.
- `EnvKeyring`: one KEK given as base64 in `ENCLAVE_ENCRYPTION_KEY`, for orchestrators that
  inject secrets through the environment. It cannot rotate or retire keys by itself.

An external KMS plugs in by implementing `KeyProvider` (see docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = "enclave-keyring-1"


class KeyringError(Exception):
    """The keyring is missing, unreadable, or cannot do what was asked; the message says why."""


class UnknownKey(KeyringError):
    """A wrapped key names a KEK this keyring does not hold (retired, or another keyring)."""


class KeyProvider(Protocol):
    """The interface a KMS adapter implements. `context` is bound into every wrap as AAD."""

    def active_id(self) -> str: ...

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the active KEK; return (KEK id, wrapped bytes)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Decrypt a data key; raise `UnknownKey` if the KEK is gone, `KeyringError` if altered."""
        ...

    def audit_key(self) -> bytes:
        """The secret that keys the audit log's hash chain (HMAC-SHA256)."""
        ...

    def kek_ids(self) -> list[str]: ...


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce; returns nonce + ciphertext + tag."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Reverse `seal`; raise `KeyringError` if the bytes or their associated data were altered."""
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise KeyringError("ciphertext or its associated data was altered") from None


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def mac(key: bytes, message: bytes) -> str:
    """HMAC-SHA256, hex."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"{what} must be {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def _new_kek_id() -> str:
    day = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    return f"kek-{day}-{secrets.token_hex(4)}"


class FileKeyring:
    """KEKs in a JSON file; safe to share between processes on one machine (atomic replace)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, bytes] = {}
        self._active = ""
        self._audit = b""
        self._retired: list[str] = []
        self._load()

    @classmethod
    def create(cls, path: Path) -> FileKeyring:
        """Write a new keyring with one KEK; refuse to overwrite an existing file."""
        if path.exists():
            raise KeyringError(f"{path} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.parent.chmod(0o700)
        kek_id = _new_kek_id()
        _write_atomic(
            path,
            {
                "format": FORMAT,
                "active": kek_id,
                "keys": {kek_id: _b64(new_data_key())},
                "retired": [],
                "audit_key": _b64(new_data_key()),
            },
            exclusive=True,
        )
        return cls(path)

    @classmethod
    def open_or_create(cls, path: Path) -> tuple[FileKeyring, bool]:
        """The keyring at `path`, creating it first if absent; the flag says it was created."""
        if path.exists():
            return cls(path), False
        return cls.create(path), True

    def _load(self) -> None:
        try:
            stat = self.path.stat()
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            raise KeyringError(f"keyring {self.path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise KeyringError(f"cannot read keyring {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KeyringError(f"{self.path} is not an Enclave keyring ({FORMAT})")
        keys_raw = data.get("keys")
        if not isinstance(keys_raw, dict) or data.get("active") not in keys_raw:
            raise KeyringError(f"{self.path}: the active key is missing")
        self._keys = {str(k): _unb64(v, f"key {k}") for k, v in keys_raw.items()}
        self._active = str(data["active"])
        self._audit = _unb64(data.get("audit_key"), "audit_key")
        self._retired = [str(r) for r in data.get("retired", [])]
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def refresh(self) -> None:
        """Reload if another process replaced the file (a rotation)."""
        with self._lock:
            try:
                stat = self.path.stat()
            except OSError:
                return
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self._load()

    def active_id(self) -> str:
        self.refresh()
        return self._active

    def kek_ids(self) -> list[str]:
        return sorted(self._keys)

    def retired_ids(self) -> list[str]:
        return list(self._retired)

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        self.refresh()
        kek_id = self._active
        return kek_id, seal(self._keys[kek_id], key, kek_id.encode() + b"|" + context)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        if kek_id not in self._keys:
            self.refresh()
        kek = self._keys.get(kek_id)
        if kek is None:
            raise UnknownKey(f"key-encryption key {kek_id} is not in this keyring")
        return open_sealed(kek, wrapped, kek_id.encode() + b"|" + context)

    def audit_key(self) -> bytes:
        return self._audit

    def add_kek(self) -> str:
        """Make a new KEK the active one (old ones stay until `retire`); return its id."""
        with self._lock:
            self._load()
            kek_id = _new_kek_id()
            keys = {k: _b64(v) for k, v in self._keys.items()}
            keys[kek_id] = _b64(new_data_key())
            self._save(keys, kek_id, self._retired)
        return kek_id

    def retire(self, kek_ids: list[str]) -> None:
        """Destroy KEKs (never the active one): whatever they still wrap becomes unreadable."""
        with self._lock:
            self._load()
            if self._active in kek_ids:
                raise KeyringError("the active key cannot be retired")
            keys = {k: _b64(v) for k, v in self._keys.items() if k not in kek_ids}
            retired = self._retired + [k for k in kek_ids if k in self._keys]
            self._save(keys, self._active, retired)

    def _save(self, keys: dict[str, str], active: str, retired: list[str]) -> None:
        _write_atomic(
            self.path,
            {
                "format": FORMAT,
                "active": active,
                "keys": keys,
                "retired": retired,
                "audit_key": _b64(self._audit),
            },
            exclusive=False,
        )
        self._load()


def _write_atomic(path: Path, data: dict[str, Any], *, exclusive: bool) -> None:
    """Write to a 0600 temporary file in the same directory, fsync, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process created it first
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class EnvKeyring:
    """One KEK from the environment (base64 of 32 bytes); the audit key is derived from it."""

    def __init__(self, encoded: str) -> None:
        self._key = _unb64(encoded.strip(), "ENCLAVE_ENCRYPTION_KEY")
        digest = hashlib.sha256(b"enclave kek id|" + self._key).hexdigest()[:12]
        self._id = f"env-{digest}"
        self._audit = _derive(self._key, b"enclave audit log v1")

    def active_id(self) -> str:
        return self._id

    def kek_ids(self) -> list[str]:
        return [self._id]

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        return self._id, seal(self._key, key, self._id.encode() + b"|" + context)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        if kek_id != self._id:
            raise UnknownKey(f"key-encryption key {kek_id} is not the one in the environment")
        return open_sealed(self._key, wrapped, kek_id.encode() + b"|" + context)

    def audit_key(self) -> bytes:
        return self._audit


def generate_encoded_key() -> str:
    """A new random KEK in the form `EnvKeyring` reads."""
    return _b64(new_data_key())
