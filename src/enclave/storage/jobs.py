"""The durable job queue (`jobs`): enqueue once per idempotency key, claim with a lease, and
the state changes of a job's life (docs/architecture.md, "The job path").

A job is `queued` until its `run_at`; a claim makes it `running` under one owner until
`lease_expires_at` and counts the attempt. Its owner completes it (`done`), fails it (back to
`queued` later, `dead` after `max_attempts`, or `failed` when the error is permanent) or
releases it (back to `queued`, the attempt not spent). A running job whose lease expired (its
node died) is claimed again by anyone. Operators cancel (`cancelled`) and retry (back to
`queued` with fresh attempts).

Claims are atomic on both backends: PostgreSQL locks the rows it takes with `FOR UPDATE SKIP
LOCKED`, so concurrent claimers take different jobs without waiting on each other; SQLite has
one writer at a time (`BEGIN IMMEDIATE`, across processes too), so a claim's read and update
see no other claimer in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enclave import codec
from enclave.domain.ids import OrgId
from enclave.domain.jobs import (
    ACTIVE,
    CANCELLED,
    DEAD,
    DONE,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STATES,
    Job,
)
from enclave.storage.base import Row, Tx

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "DEAD",
    "DONE",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "STATES",
    "Filter",
    "Job",
    "NewJob",
    "cancel",
    "claim",
    "complete",
    "counts",
    "enqueue",
    "fail",
    "get",
    "list_jobs",
    "oldest_queued_at",
    "payload_aad",
    "purge_finished",
    "release",
    "renew",
    "retry",
]

_ERROR_MAX = 2000
"""Characters of a failure's message kept in `last_error`."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """What `enqueue` stores. With `seal_scope` the payload is sealed under that scope's data
    key (`conv:<id>` or `user:<id>`), so shredding the key makes the payload unreadable too."""

    id: str
    kind: str
    org_id: OrgId | None
    payload: dict[str, Any]
    run_at: int
    max_attempts: int
    key: str | None
    now: int
    seal_scope: str | None = None


def payload_aad(job_id: str) -> str:
    return f"jobs.payload|{job_id}"


def _job(tx: Tx, row: Row) -> Job:
    sealed = bool(row["sealed"])
    text: str | None = row["payload"]
    if sealed and text is not None:
        text = tx.sealer.open(tx, payload_aad(row["id"]), text)
    return Job(
        id=row["id"],
        kind=row["kind"],
        org_id=OrgId(row["org_id"]) if row["org_id"] else None,
        payload=codec.loads(text) if text is not None else None,
        sealed=sealed,
        state=row["state"],
        run_at=int(row["run_at"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        key=row["idempotency_key"],
        last_error=row["last_error"],
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        finished_at=row["finished_at"],
    )


def enqueue(tx: Tx, new: NewJob) -> tuple[Job, bool]:
    """Store a queued job; with a key already used, the job stored first and False."""
    text = codec.dumps_text(new.payload)
    if new.seal_scope is not None:
        text = tx.sealer.seal(tx, new.seal_scope, new.now, payload_aad(new.id), text)
    inserted = tx.execute(
        "INSERT INTO jobs (id, kind, org_id, payload, sealed, state, run_at, attempts,"
        " max_attempts, lease_owner, lease_expires_at, idempotency_key, last_error, created_at,"
        " updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, ?, NULL, ?, ?,"
        " NULL) ON CONFLICT (idempotency_key) DO NOTHING",
        (
            new.id,
            new.kind,
            new.org_id,
            text,
            1 if new.seal_scope is not None else 0,
            QUEUED,
            new.run_at,
            new.max_attempts,
            new.key,
            new.now,
            new.now,
        ),
    )
    if inserted:
        found = get(tx, new.id)
    else:
        row = tx.fetchone("SELECT id FROM jobs WHERE idempotency_key = ?", (new.key,))
        found = get(tx, row["id"]) if row is not None else None
    assert found is not None
    return found, bool(inserted)


_EXPIRED_DEAD = (
    "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_expires_at = NULL,"
    " last_error = COALESCE(last_error, 'its worker stopped (lease expired)'),"
    " updated_at = ?, finished_at = ? WHERE id IN (SELECT id FROM jobs WHERE kind = ?"
    " AND state = 'running' AND lease_expires_at <= ? AND attempts >= max_attempts"
)
_DUE = (
    "SELECT id FROM jobs WHERE kind = ? AND ((state = 'queued' AND run_at <= ?)"
    " OR (state = 'running' AND lease_expires_at <= ?)) ORDER BY run_at, id LIMIT ?"
)
# PostgreSQL: rows another claimer holds are skipped, not waited for, and two claimers cannot
# deadlock. SQLite: the claim runs under the database's single write lock.
_LOCKED = " FOR UPDATE SKIP LOCKED"
_STATEMENTS = {
    "postgres": (_EXPIRED_DEAD + _LOCKED + ")", _DUE + _LOCKED),
    "sqlite": (_EXPIRED_DEAD + ")", _DUE),
}


def claim(tx: Tx, kind: str, owner: str, now: int, lease_until: int, limit: int) -> list[Job]:
    """Take up to `limit` jobs of `kind` for `owner` until `lease_until`: due queued jobs, and
    running jobs whose lease expired (their node died), oldest due first. Each claim counts an
    attempt; an expired job that has no attempt left is marked dead instead."""
    if limit <= 0:
        return []
    expired_dead, due = _STATEMENTS[tx.dialect]
    tx.execute(expired_dead, (now, now, kind, now))
    rows = tx.fetchall(due, (kind, now, now, limit))
    taken: list[Job] = []
    for row in rows:
        tx.execute(
            "UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?,"
            " attempts = attempts + 1, updated_at = ? WHERE id = ?",
            (owner, lease_until, now, row["id"]),
        )
        found = get(tx, row["id"])
        assert found is not None
        taken.append(found)
    return taken


def renew(tx: Tx, job_id: str, owner: str, now: int, lease_until: int) -> bool:
    """Extend the lease; False if `owner` no longer holds the job (lost, cancelled)."""
    return (
        tx.execute(
            "UPDATE jobs SET lease_expires_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'running' AND lease_owner = ?",
            (lease_until, now, job_id, owner),
        )
        == 1
    )


def complete(tx: Tx, job_id: str, owner: str, now: int) -> bool:
    """Mark the job done; False if `owner` no longer holds it."""
    return (
        tx.execute(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL,"
            " updated_at = ?, finished_at = ? WHERE id = ? AND state = 'running'"
            " AND lease_owner = ?",
            (now, now, job_id, owner),
        )
        == 1
    )


def fail(tx: Tx, job_id: str, owner: str, now: int, error: str, retry_at: int | None) -> str | None:
    """Record a failure: back to `queued` at `retry_at`, or `dead` when no attempt is left;
    `failed` (for good) when `retry_at` is None. The new state, or None if `owner` no longer
    holds the job."""
    error = error[:_ERROR_MAX]
    if retry_at is None:
        changed = tx.execute(
            "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires_at = NULL,"
            " last_error = ?, updated_at = ?, finished_at = ?"
            " WHERE id = ? AND state = 'running' AND lease_owner = ?",
            (error, now, now, job_id, owner),
        )
        return FAILED if changed else None
    row = tx.fetchone(
        "UPDATE jobs SET"
        " state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,"
        " finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END,"
        " run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE ? END,"
        " lease_owner = NULL, lease_expires_at = NULL, last_error = ?, updated_at = ?"
        " WHERE id = ? AND state = 'running' AND lease_owner = ? RETURNING state",
        (now, retry_at, error, now, job_id, owner),
    )
    return str(row["state"]) if row is not None else None


def release(tx: Tx, job_id: str, owner: str, now: int) -> bool:
    """Give a running job back to the queue without spending its attempt (a clean shutdown);
    False if `owner` no longer holds it."""
    return (
        tx.execute(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL,"
            " lease_expires_at = NULL, run_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'running' AND lease_owner = ?",
            (now, now, job_id, owner),
        )
        == 1
    )


def cancel(tx: Tx, job_id: str, now: int) -> bool:
    """Cancel a queued or running job (a running one's worker loses its lease and stops);
    False if the job has finished already."""
    return (
        tx.execute(
            "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,"
            " updated_at = ?, finished_at = ? WHERE id = ? AND state IN ('queued', 'running')",
            (now, now, job_id),
        )
        == 1
    )


def retry(tx: Tx, job_id: str, now: int) -> bool:
    """Queue a dead, failed or cancelled job again, due now, with all its attempts; its last
    error stays visible until it runs. False in any other state."""
    return (
        tx.execute(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, updated_at = ?,"
            " finished_at = NULL WHERE id = ? AND state IN ('dead', 'failed', 'cancelled')",
            (now, now, job_id),
        )
        == 1
    )


def get(tx: Tx, job_id: str) -> Job | None:
    row = tx.fetchone(
        "SELECT id, kind, org_id, payload, sealed, state, run_at, attempts, max_attempts,"
        " lease_owner, lease_expires_at, idempotency_key, last_error, created_at, updated_at,"
        " finished_at FROM jobs WHERE id = ?",
        (job_id,),
    )
    return _job(tx, row) if row is not None else None


@dataclass(frozen=True, slots=True)
class Filter:
    """Which jobs `list_jobs` returns. `org_id` None lists every organization's and the
    installation's jobs (the operator); `before` is (created_at, id) of the previous page's
    last job."""

    org_id: OrgId | None = None
    kind: str | None = None
    state: str | None = None
    limit: int = 50
    before: tuple[int, str] | None = None


def list_jobs(tx: Tx, where: Filter) -> list[Job]:
    """Jobs newest first. One constant statement: an absent filter is an empty string that
    admits everything."""
    at, last_id = where.before if where.before is not None else (2**62, "")
    rows = tx.fetchall(
        "SELECT id FROM jobs WHERE (created_at < ? OR (created_at = ? AND id > ?))"
        " AND (? = '' OR org_id = ?) AND (? = '' OR kind = ?) AND (? = '' OR state = ?)"
        " ORDER BY created_at DESC, id LIMIT ?",
        (
            at,
            at,
            last_id,
            where.org_id or "",
            where.org_id or "",
            where.kind or "",
            where.kind or "",
            where.state or "",
            where.state or "",
            where.limit,
        ),
    )
    found = [get(tx, r["id"]) for r in rows]
    return [j for j in found if j is not None]


def counts(tx: Tx) -> dict[tuple[str, str], int]:
    """How many jobs there are per (kind, state)."""
    rows = tx.fetchall("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state")
    return {(str(r["kind"]), str(r["state"])): int(r["n"]) for r in rows}


def oldest_queued_at(tx: Tx, now: int) -> int | None:
    """The `run_at` of the job that has waited longest among those due (None: none waits)."""
    row = tx.fetchone(
        "SELECT MIN(run_at) AS at FROM jobs WHERE state = 'queued' AND run_at <= ?", (now,)
    )
    return int(row["at"]) if row is not None and row["at"] is not None else None


def purge_finished(tx: Tx, before: int, limit: int) -> int:
    """Delete up to `limit` done or cancelled jobs that finished before `before` (dead and
    failed jobs stay for an operator to see); returns how many were deleted."""
    rows = tx.fetchall(
        "SELECT id FROM jobs WHERE state IN ('done', 'cancelled') AND finished_at < ?"
        " ORDER BY finished_at LIMIT ?",
        (before, limit),
    )
    for r in rows:
        tx.execute("DELETE FROM jobs WHERE id = ?", (r["id"],))
    return len(rows)
