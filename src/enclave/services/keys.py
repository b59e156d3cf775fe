"""Operations on the keys of encryption at rest: rotation, shredding, sealing legacy values.

Rotation re-wraps every data key under a new KEK and retires the old one; no message is
rewritten. Shredding destroys data keys, and (by default) rotates the KEK so that backups made
before the shred, which still hold the old wrapped keys, need a KEK that no longer exists.
The data keys themselves and the sealer are `enclave.services.sealer`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from enclave.crypto import keyring
from enclave.services import audit
from enclave.services.context import Changes, Context
from enclave.services.sealer import DataKeys, wrap_context
from enclave.storage import keys as store
from enclave.storage.base import Database, Tx

log = logging.getLogger(__name__)

_REWRAP_BATCH = 500


@runtime_checkable
class RotatableKeys(Protocol):
    """A key provider that can make a new KEK and destroy old ones (`FileKeyring`)."""

    def add_kek(self) -> str: ...

    def retire(self, kek_ids: list[str]) -> None: ...

    def kek_ids(self) -> list[str]: ...

    def active_id(self) -> str: ...


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
                context = wrap_context(row.id, row.scope, row.epoch)
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
