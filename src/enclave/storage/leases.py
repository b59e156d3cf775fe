"""Cluster-wide leases of periodic and background jobs (`job_leases`): a node runs a job only
while it holds the job's row, so jobs that every node schedules run once per cluster, and a
node that dies frees its jobs when their lease expires."""

from __future__ import annotations

from enclave.storage.base import Tx

__all__ = ["release", "take"]


def take(tx: Tx, name: str, holder: str, now: int, expires_at: int) -> bool:
    """Take (or renew) the named lease unless another holder has it and it has not expired."""
    return (
        tx.execute(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at"
            " WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= ?",
            (name, holder, expires_at, now),
        )
        == 1
    )


def release(tx: Tx, name: str, holder: str) -> None:
    """Give the lease up (only its holder can)."""
    tx.execute("DELETE FROM job_leases WHERE name = ? AND holder = ?", (name, holder))
