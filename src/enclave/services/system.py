"""The node itself, as the transport needs to know it: does its database answer, and which
failures mean that a dependency is down (503) rather than a bug (500).

The transport (`api`, `ws`) may not import `enclave.storage` (the import contract in
pyproject.toml), so it learns about the storage layer's outages here.
"""

from __future__ import annotations

from enclave.services.context import Context
from enclave.storage.base import StorageUnavailable

__all__ = ["OUTAGES", "database_ready"]

OUTAGES: tuple[type[Exception], ...] = (StorageUnavailable,)
"""Exceptions that mean a dependency cannot be reached: the transport answers them with 503
`unavailable` and logs them without a stack trace. Their text may name hosts or paths, so it
is logged, never sent to a client."""


async def database_ready(ctx: Context) -> bool:
    """True when the database answers (the readiness probe)."""
    try:
        await ctx.db.ping()
    except StorageUnavailable:
        return False
    return True
