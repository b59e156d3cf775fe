"""What `enclave keys status` shows: how many data keys each key-encryption key wraps, and how
many data keys were shredded. Read-only; rotation and shredding are in `services.keys`."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.services.context import Context
from enclave.storage import keys as key_store
from enclave.storage.base import Tx

__all__ = ["KeyUsage", "key_usage"]


@dataclass(frozen=True, slots=True)
class KeyUsage:
    wrapped_by: dict[str, int]
    """KEK id -> live data keys it wraps."""
    shredded: int
    """Data keys destroyed (crypto-shredded)."""


async def key_usage(ctx: Context) -> KeyUsage:
    """The data keys per KEK and the shredded ones, read in one snapshot."""

    def work(tx: Tx) -> KeyUsage:
        return KeyUsage(key_store.kek_usage(tx), key_store.count_shredded(tx))

    return await ctx.db.read(work)
