"""Encryption at rest: data keys per conversation (or person) and epoch, rotation, shredding.

Envelope encryption. Each sealed field is AES-256-GCM under a data key; data keys are random,
one per scope (`conv:<id>`, `user:<id>`) and time epoch (`encryption.epoch_days`; a person's
key has one epoch), and are stored in `data_keys` only wrapped by a key-encryption key (KEK)
from the keyring, which lives outside the database. A sealed value reads

    e1:<data key id>:<base64 of nonce | ciphertext | tag>

and its associated data is the row identity (for example `messages.text|<message id>`) plus the
data key id, so a value moved to another row or column fails to open.

Rotation re-wraps every data key under a new KEK and retires the old one; no message is
rewritten. Shredding destroys data keys, and (by default) rotates the KEK so that backups made
before the shred, which still hold the old wrapped keys, need a KEK that no longer exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from enclave.crypto import keyring
from enclave.domain.errors import Gone
from enclave.services import audit
from enclave.services.context import Changes, Context
from enclave.storage import keys as store
from enclave.storage.base import Database, Tx

log = logging.getLogger(__name__)

PREFIX = "e1:"
_CACHE_SIZE = 50_000
_REWRAP_BATCH = 500
USER_EPOCH = 0


@runtime_checkable
class RotatableKeys(Protocol):
    """A key provider that can make a new KEK and destroy old ones (`FileKeyring`)."""

    def add_kek(self) -> str: ...

    def retire(self, kek_ids: list[str]) -> None: ...

    def kek_ids(self) -> list[str]: ...

    def active_id(self) -> str: ...


class KeyShredded(Exception):
    """The data key of a sealed value was destroyed."""


def _wrap_context(key_id: str, scope: str, epoch: int) -> bytes:
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
            row.kek_id, row.wrapped, _wrap_context(row.id, row.scope, row.epoch)
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
        kek_id, wrapped = self.provider.wrap(raw, _wrap_context(key_id, scope, epoch))
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


# -- rotation and shredding ---------------------------------------------------------------------


_SWEEPS = 5
_SWEEP_PAUSE_S = 0.2


@dataclass(frozen=True)
class Rotation:
    new_kek_id: str
    rewrapped: int
    retired: list[str]
    remaining: list[str]
    """Old KEKs that still wrap data keys after the final sweep (so were not destroyed): a
    server kept wrapping with one. Empty when the rotation is complete."""

    @property
    def complete(self) -> bool:
        return not self.remaining


class RotationUnsupported(Exception):
    """The key provider cannot make or destroy KEKs (a key from the environment)."""


async def rotate(
    ctx: Context,
    now_ms: int,
    actor: audit.Actor,
    *,
    retire_old: bool = True,
    grace_seconds: float = 2.0,
) -> Rotation:
    """Make a new KEK active, re-wrap every live data key under it, then retire the old KEKs.

    Safe while servers run: they notice the new keyring file before wrapping a new data key, and
    `grace_seconds` after the switch a final sweep catches keys a server wrapped just before."""
    db, keys = ctx.db, ctx.data_keys
    provider = keys.provider
    if not isinstance(provider, RotatableKeys):
        raise RotationUnsupported(
            "the key-encryption key comes from the environment; set a new one with the old one "
            "still readable is not possible in place: move to a keyring file (docs/security.md)"
        )
    old = [k for k in provider.kek_ids() if k]
    new_kek = provider.add_kek()
    old = [k for k in old if k != new_kek]
    rewrapped = await _rewrap_all(db, keys, new_kek)
    if grace_seconds:
        await asyncio.sleep(grace_seconds)
        rewrapped += await _rewrap_all(db, keys, new_kek)
    # A server that read the keyring just before the switch may still wrap a new data key with
    # an old KEK after a sweep; sweep again until no old KEK wraps anything, a few times at most.
    usage = await db.read(store.kek_usage)
    for _ in range(_SWEEPS):
        if not any(usage.get(k, 0) for k in old):
            break
        await asyncio.sleep(_SWEEP_PAUSE_S)
        rewrapped += await _rewrap_all(db, keys, new_kek)
        usage = await db.read(store.kek_usage)
    remaining = [k for k in old if usage.get(k, 0)]
    retired: list[str] = []
    if retire_old:
        retired = [k for k in old if not usage.get(k, 0)]
        if retired:
            provider.retire(retired)
    else:
        remaining = old
    if remaining and retire_old:
        log.warning(
            "key rotation incomplete: %s still wrap data keys; run `enclave keys rotate` again",
            remaining,
        )

    def note(tx: Tx) -> None:
        audit.record(
            ctx,
            Changes(tx, now_ms),
            "keys.rotated",
            actor,
            target=audit.Target("kek", new_kek),
            details={"rewrapped": rewrapped, "retired": retired, "remaining": remaining},
        )

    await db.write(note)
    log.info(
        "key rotation: new KEK %s, %d data keys re-wrapped, retired %s", new_kek, rewrapped, retired
    )
    return Rotation(new_kek, rewrapped, retired, remaining)


async def _rewrap_all(db: Database, keys: DataKeys, new_kek: str) -> int:
    total = 0
    provider = keys.provider
    while True:

        def batch(tx: Tx) -> tuple[int, int]:
            rows = store.wrapped_by_other_keks(tx, new_kek, _REWRAP_BATCH)
            done = 0
            for row in rows:
                assert row.wrapped is not None and row.kek_id is not None
                context = _wrap_context(row.id, row.scope, row.epoch)
                raw = provider.unwrap(row.kek_id, row.wrapped, context)
                kek_id, wrapped = provider.wrap(raw, context)
                if kek_id != new_kek:
                    raise keyring.KeyringError("another rotation started meanwhile")
                done += int(store.rewrap(tx, row.id, row.kek_id, kek_id, wrapped))
            return len(rows), done

        seen, done = await db.write(batch)
        total += done
        if seen == 0:
            return total


@dataclass(frozen=True)
class Shredded:
    key_ids: list[str]
    backups_protected: bool
    """True when the KEK that wrapped these keys in earlier backups was destroyed too."""


async def shred(
    ctx: Context,
    now_ms: int,
    actor: audit.Actor,
    scope: str,
    *,
    before_epoch: int | None = None,
    rotate_kek: bool = True,
    keep_key_ids: Collection[str] = (),
    also: Callable[[Tx, list[str]], None] | None = None,
) -> Shredded:
    """Destroy a scope's data keys (all, or the epochs before `before_epoch`): what they sealed
    can no longer be read. With `rotate_kek`, the KEK is rotated and the old one retired, which
    makes the copies of these keys in earlier backups useless as well.

    `keep_key_ids` are spared (keys something still needs, such as held messages); `also` runs in
    the shredding transaction with the ids shredded (a retention run records its progress)."""
    db, keys = ctx.db, ctx.data_keys

    def work(tx: Tx) -> list[str]:
        live = store.live_in_scope(tx, scope, before_epoch)
        ids = [k.id for k in live if k.id not in keep_key_ids]
        store.shred(tx, ids, now_ms)
        if also is not None:
            also(tx, ids)
        audit.record(
            ctx,
            Changes(tx, now_ms),
            "keys.shredded",
            actor,
            target=audit.Target("scope", scope),
            details={"key_ids": ids, "before_epoch": before_epoch},
        )
        return ids

    ids = await db.write(work)
    keys.forget(set(ids))
    protected = False
    if ids and rotate_kek and isinstance(keys.provider, RotatableKeys):
        rotation = await rotate(ctx, now_ms, actor, grace_seconds=0.0)
        protected = rotation.complete
    return Shredded(ids, protected)


_SEAL_LEGACY = "seal-plaintext-v1"


async def seal_legacy(db: Database, now_ms: int, batch: int = 500) -> int:
    """Encrypt values stored in plaintext by versions before encryption at rest; runs to the end
    once per database (then it is a single lookup), and resumes if interrupted.

    `enclave serve`, `init` and `migrate` run it, so an upgraded database holds no plaintext."""
    if await db.read(lambda tx: store.task_done(tx, _SEAL_LEGACY)):
        return 0
    total = 0
    while True:
        done = await db.write(lambda tx: store.seal_legacy_rows(tx, batch))
        total += done
        if done == 0:
            await db.write(lambda tx: store.mark_task_done(tx, _SEAL_LEGACY, now_ms))
            return total
