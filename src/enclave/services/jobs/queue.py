"""Putting jobs on the queue, and what operators and admins do with them (list, show, retry,
cancel): the use cases behind `enclave jobs` and `/api/v1/admin/jobs`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enclave.domain.errors import Conflict, InvalidInput, NotFound
from enclave.domain.ids import OrgId, is_valid_id, new_id
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.services import audit, gates, metrics
from enclave.services.context import Changes, Context, write
from enclave.services.jobs.kinds import Kind
from enclave.storage import jobs as store
from enclave.storage.base import Tx
from enclave.storage.jobs import Job

__all__ = [
    "PAGE_MAX",
    "Page",
    "cancel",
    "enqueue",
    "enqueue_in",
    "get",
    "list_jobs",
    "refresh_metrics",
    "retry",
]

PAGE_MAX = 200
"""Most jobs one page lists."""
KEY_MAX = 200
"""Longest idempotency key."""


def _new_job(
    ctx: Context,
    now: int,
    kind: Kind,
    payload: Mapping[str, Any],
    *,
    org_id: OrgId | None,
    key: str | None,
    run_at: int | None,
    seal_scope: str | None,
) -> store.NewJob:
    if kind.sealed and seal_scope is None:
        raise ValueError(f"job kind {kind.name} is sealed: enqueue it with a seal_scope")
    if not kind.sealed and seal_scope is not None:
        raise ValueError(f"job kind {kind.name} is not sealed: it takes no seal_scope")
    if key is not None and not 1 <= len(key) <= KEY_MAX:
        raise ValueError(f"an idempotency key is 1-{KEY_MAX} characters")
    return store.NewJob(
        id=new_id(),
        kind=kind.name,
        org_id=org_id,
        payload=dict(payload),
        run_at=now if run_at is None else run_at,
        max_attempts=kind.max_attempts or ctx.config.jobs.max_attempts,
        key=key,
        now=now,
        seal_scope=seal_scope,
    )


def enqueue_in(
    ctx: Context,
    target: Changes | Tx,
    kind: Kind,
    payload: Mapping[str, Any],
    *,
    org_id: OrgId | None = None,
    key: str | None = None,
    run_at: int | None = None,
    seal_scope: str | None = None,
) -> Job:
    """Enqueue inside the caller's write transaction, so the job exists exactly when the
    caller's change commits. With a `key` used before, the job stored first comes back (the
    queue holds one job per key). `run_at` (Unix ms) defaults to now."""
    if isinstance(target, Changes):
        tx, now = target.tx, target.now
    else:
        tx, now = target, ctx.clock.now_ms()
    new = _new_job(
        ctx, now, kind, payload, org_id=org_id, key=key, run_at=run_at, seal_scope=seal_scope
    )
    return store.enqueue(tx, new)[0]


async def enqueue(
    ctx: Context,
    kind: Kind,
    payload: Mapping[str, Any],
    *,
    org_id: OrgId | None = None,
    key: str | None = None,
    run_at: int | None = None,
    seal_scope: str | None = None,
) -> Job:
    """Enqueue in a transaction of its own (see `enqueue_in`)."""

    def work(ch: Changes) -> Job:
        return enqueue_in(
            ctx, ch, kind, payload, org_id=org_id, key=key, run_at=run_at, seal_scope=seal_scope
        )

    job = await write(ctx, work)
    if seal_scope is not None:
        await ctx.data_keys.confirm(ctx.db, seal_scope, job.created_at)
    return job


# -- operators and admins -------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_before: tuple[int, str] | None
    """Pass as `before` for the next page; None on the last page."""


def _scope(actor: User | None, action: OrgAction) -> OrgId | None:
    """The organization whose jobs the actor manages; None: the operator, every job."""
    if actor is None:
        return None
    gates.require_org(actor, action)
    return actor.org_id


async def list_jobs(
    ctx: Context,
    actor: User | None,
    *,
    org_id: OrgId | None = None,
    kind: str | None = None,
    state: str | None = None,
    limit: int = 50,
    before: tuple[int, str] | None = None,
) -> Page:
    """Jobs newest first: an admin's organization's, or (actor None: the CLI) every job, or
    `org_id`'s only (the operator's filter; an admin's is always their own organization)."""
    if actor is not None:
        org_id = _scope(actor, OrgAction.MANAGE_JOBS)
    if state is not None and state not in store.STATES:
        raise InvalidInput("invalid_filter", f"state is one of {', '.join(store.STATES)}")
    limit = max(1, min(limit, PAGE_MAX))
    where = store.Filter(org_id=org_id, kind=kind, state=state, limit=limit, before=before)
    found = await ctx.db.read(lambda tx: store.list_jobs(tx, where))
    last = found[-1] if len(found) == limit else None
    return Page(found, (last.created_at, last.id) if last else None)


def _load(tx: Tx, actor: User | None, job_id: str) -> Job:
    if actor is not None:
        return gates.job(tx, actor, job_id, OrgAction.MANAGE_JOBS)
    found = store.get(tx, job_id) if is_valid_id(job_id) else None
    if found is None:
        raise NotFound("job")
    return found


async def get(ctx: Context, actor: User | None, job_id: str) -> Job:
    """One job; another organization's does not exist for an admin."""
    return await ctx.db.read(lambda tx: _load(tx, actor, job_id))


def _audit_actor(actor: User | None, job: Job, ip: str | None) -> audit.Actor:
    if actor is None:
        return audit.Actor.operator(job.org_id, ip)
    return audit.Actor.of(actor, ip)


async def retry(ctx: Context, actor: User | None, job_id: str, *, ip: str | None = None) -> Job:
    """Queue a dead, failed or cancelled job again, due now and with all its attempts
    (audited as `job.retried`)."""

    def work(ch: Changes) -> Job:
        job = _load(ch.tx, actor, job_id)
        if not store.retry(ch.tx, job.id, ch.now):
            raise Conflict(
                "job_not_retryable",
                f"the job is {job.state}: only dead, failed or cancelled jobs are retried",
            )
        audit.record(
            ctx,
            ch,
            "job.retried",
            _audit_actor(actor, job, ip),
            target=audit.Target("job", job.id),
            details={"kind": job.kind, "state": job.state, "last_error": job.last_error},
        )
        found = store.get(ch.tx, job.id)
        assert found is not None
        return found

    return await write(ctx, work)


async def cancel(ctx: Context, actor: User | None, job_id: str, *, ip: str | None = None) -> Job:
    """Cancel a queued or running job (a running one's worker stops it when it next renews its
    lease); audited as `job.cancelled`."""

    def work(ch: Changes) -> Job:
        job = _load(ch.tx, actor, job_id)
        if not store.cancel(ch.tx, job.id, ch.now):
            raise Conflict(
                "job_finished", f"the job is {job.state}: only queued or running jobs are cancelled"
            )
        audit.record(
            ctx,
            ch,
            "job.cancelled",
            _audit_actor(actor, job, ip),
            target=audit.Target("job", job.id),
            details={"kind": job.kind, "state": job.state},
        )
        found = store.get(ch.tx, job.id)
        assert found is not None
        return found

    return await write(ctx, work)


async def refresh_metrics(ctx: Context) -> None:
    """Set the queue's gauges from the database (the whole cluster's queue, as every node sees
    it): jobs per kind and state, and the age of the oldest due job."""
    now = ctx.clock.now_ms()

    def read(tx: Tx) -> tuple[dict[tuple[str, str], int], int | None]:
        return store.counts(tx), store.oldest_queued_at(tx, now)

    counts, oldest = await ctx.db.read(read)
    metrics.jobs_observed(counts, (now - oldest) / 1000 if oldest is not None else 0.0)
