"""Encryption at rest: data keys per conversation (or person) and epoch, and the sealer.

Envelope encryption. Each sealed field is AES-256-GCM under a data key; data keys are random,
one per scope (`conv:<id>`, `user:<id>`) and time epoch (`encryption.epoch_days`; a person's
key has one epoch), and are stored in `data_keys` only wrapped by a key-encryption key (KEK)
from the keyring, which lives outside the database. A sealed value reads

    e1:<data key id>:<base64 of nonce | ciphertext | tag>

and its associated data is the row identity (for example `messages.text|<message id>`) plus the
data key id, so a value moved to another row or column fails to open.

`DataKeys` is the `Sealer` every transaction carries; the operations on the keys themselves
(rotation, shredding) are `enclave.services.keys`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections import OrderedDict

from enclave.crypto import keyring
from enclave.domain.errors import Gone
from enclave.storage import keys as store
from enclave.storage.base import Database, Tx

__all__ = ["PREFIX", "USER_EPOCH", "DataKeys", "KeyShredded", "wrap_context"]

PREFIX = "e1:"
_CACHE_SIZE = 50_000
USER_EPOCH = 0


class KeyShredded(Exception):
    """The data key of a sealed value was destroyed."""


def wrap_context(key_id: str, scope: str, epoch: int) -> bytes:
    return f"{key_id}|{scope}|{epoch}".encode()


class DataKeys:
    """The `Sealer` every transaction carries, with an in-memory cache of unwrapped data keys.

    Thread-safe: the storage threads call it concurrently. The cache maps a (scope, epoch) to
    its key id only once that key is known to be committed (`confirm`, called after commit), so
    a transaction that created a key and then rolled back can never leave values sealed under a
    key that was never stored."""

    def __init__(self, provider: keyring.KeyProvider, *, epoch_days: int) -> None:
        self.provider = provider
        self._epoch_ms = epoch_days * 86_400_000
        self._lock = threading.Lock()
        self._raw: OrderedDict[str, bytes] = OrderedDict()
        self._current: dict[tuple[str, int], str] = {}

    def epoch_of(self, scope: str, at_ms: int) -> int:
        if scope.startswith("user:"):
            return USER_EPOCH
        return at_ms // self._epoch_ms

    def epoch_start_ms(self, epoch: int) -> int:
        return epoch * self._epoch_ms

    # -- Sealer -------------------------------------------------------------------------------

    def seal(self, tx: Tx, scope: str, at_ms: int, aad: str, plaintext: str) -> str:
        epoch = self.epoch_of(scope, at_ms)
        key_id = self._current.get((scope, epoch))
        if key_id is None:
            key_id = self._find_or_create(tx, scope, epoch, at_ms)
        try:
            key = self._key(tx, key_id)
        except KeyShredded:
            raise Gone() from None
        blob = keyring.seal(key, plaintext.encode("utf-8"), _aad(aad, key_id))
        return f"{PREFIX}{key_id}:{base64.b64encode(blob).decode('ascii')}"

    def open(self, tx: Tx, aad: str, stored: str) -> str | None:
        if not stored.startswith(PREFIX):
            raise keyring.KeyringError(f"{aad.split('|', 1)[0]} holds a value that is not sealed")
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        try:
            blob = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise keyring.KeyringError("a sealed value is malformed") from None
        try:
            key = self._key(tx, key_id)
        except KeyShredded:
            return None
        return keyring.open_sealed(key, blob, _aad(aad, key_id)).decode("utf-8")

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, tx: Tx, key_id: str) -> bytes:
        raw = self._raw.get(key_id)  # a dict read is atomic: no lock on the hot path
        if raw is not None:
            return raw
        row = store.by_id(tx, key_id)
        if row is None or row.wrapped is None or row.kek_id is None:
            raise KeyShredded(key_id)
        raw = self.provider.unwrap(
            row.kek_id, row.wrapped, wrap_context(row.id, row.scope, row.epoch)
        )
        self._remember(key_id, raw)
        return raw

    def _remember(self, key_id: str, raw: bytes) -> None:
        with self._lock:  # first in, first out: the oldest keys are the least likely used
            self._raw[key_id] = raw
            while len(self._raw) > _CACHE_SIZE:
                self._raw.popitem(last=False)

    def _find_or_create(self, tx: Tx, scope: str, epoch: int, now: int) -> str:
        row = store.by_scope(tx, scope, epoch)
        if row is not None:
            if row.wrapped is None:
                raise Gone()
            return row.id
        key_id = secrets.token_hex(16)
        raw = keyring.new_data_key()
        kek_id, wrapped = self.provider.wrap(raw, wrap_context(key_id, scope, epoch))
        created = store.DataKeyRow(
            id=key_id,
            scope=scope,
            epoch=epoch,
            kek_id=kek_id,
            wrapped=wrapped,
            created_at=now,
            shredded_at=None,
        )
        if store.insert(tx, created):
            self._remember(key_id, raw)
            return key_id
        # Another writer created this scope's key between our lookup and insert.
        row = store.by_scope(tx, scope, epoch)
        if row is None or row.wrapped is None:
            raise Gone()
        return row.id

    async def confirm(self, db: Database, scope: str, at_ms: int) -> None:
        """After a commit that sealed values in `scope`: remember its key for this epoch, read
        back in a transaction of its own (so it is known to be committed), so that later seals
        skip the lookup."""
        epoch = self.epoch_of(scope, at_ms)
        if (scope, epoch) in self._current:
            return
        row = await db.read(lambda tx: store.by_scope(tx, scope, epoch))
        if row is not None and row.wrapped is not None:
            self._current[(scope, epoch)] = row.id

    def forget(self, key_ids: set[str]) -> None:
        """Drop shredded keys from memory."""
        with self._lock:
            for key_id in key_ids:
                self._raw.pop(key_id, None)
            for where, key_id in list(self._current.items()):
                if key_id in key_ids:
                    del self._current[where]


def _aad(aad: str, key_id: str) -> bytes:
    return f"{aad}|{key_id}".encode()
